// TMA loads on their own (ops/cuda/tma_ptx.cuh, tensor_map.h), as the PIT engines' TMA producers
// use them: boxes of one row written at a row's place in a 128-byte-swizzled tile (the gather of
// an index's rows), boxes of 64 rows, rank-3 boxes over a stack of matrices, and coordinates
// past the tensor (rows and columns: zeros, and bytes that still complete the mbarrier). The
// shared tiles are read back through the layouts the wgmma engines read (sread.cuh Sw128KMajor),
// against the values the host expects. A stage that never completes (bytes not counted) fails
// the test after a bounded wait instead of hanging it.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/pit/cuda/sread.cuh"
#include "tests/gpu.h"

using namespace pit;
namespace dev = pit::sparse::cuda::dev;

namespace {

constexpr int kRows = 300, kCols = 200;        // the 2-D matrix
constexpr int kMats = 3, kMatRows = 70;        // the stack [3][70][200]
constexpr int kTile = 64;                      // tiles of 64 rows x 64 columns (8 KB of bf16)
constexpr int kTiles = 4;                      // row gather, row gather at a ragged column, 64-row box, 3-D box

// An exact value of element (m, r, c) in bf16 and f16 (integers within 8 bits of mantissa).
__host__ __device__ float value(int m, int r, int c) { return static_cast<float>((m * 31 + r * 13 + c * 7) % 251 - 125); }

struct Maps {
  CUtensorMap row, box, stack;
};

// Row gather: tile 0 rows i from matrix rows `rows[i]` at columns [64, 128), tile 1 the same at
// [192, 256) (past column 200: zeros); tile 2 the 64-row box at (64, 250) (rows 300+: zeros);
// tile 3 the stack's matrix 1 at (168, 40) (rows 70+ and columns 200+: zeros, not matrix 2's).
// out: the four tiles as read through Sw128KMajor, [kTiles][64][64] floats; done: 1 if the stage
// completed.
__global__ void probe(const __grid_constant__ Maps maps, const int* rows, float* out, int* done) {
  extern __shared__ uint4 raw[];  // the tiles from its first 1024-byte boundary (the swizzle's atom)
  __shared__ alignas(8) uint64_t bar;
  const uintptr_t at = reinterpret_cast<uintptr_t>(raw);
  auto* tiles = reinterpret_cast<__nv_bfloat16*>((at + 1023) & ~uintptr_t{1023});
  const int lane = threadIdx.x;
  if (lane == 0) {
    pit::cuda::mbar::init(&bar, 1);
    pit::cuda::mbar::fence_init();
  }
  __syncthreads();
  const uint32_t base = pit::cuda::ptx::smem_u32(tiles), b = pit::cuda::ptx::smem_u32(&bar);
  constexpr uint32_t kTileBytes = kTile * kTile * 2;
  if (lane == 0) pit::cuda::mbar::arrive_expect_tx(&bar, kTiles * kTileBytes);
  for (int i = lane; i < kTile; i += 32) {
    pit::cuda::tma::load_2d(base + i * 128, &maps.row, 64, rows[i], b);
    pit::cuda::tma::load_2d(base + kTileBytes + i * 128, &maps.row, 192, rows[i], b);
  }
  if (lane == 0) pit::cuda::tma::load_2d(base + 2 * kTileBytes, &maps.box, 64, 250, b);
  if (lane == 1) pit::cuda::tma::load_3d(base + 3 * kTileBytes, &maps.stack, 168, 40, 1, b);
  // A bounded wait: about a second of polling.
  bool ok = false;
  const long long start = clock64();
  while (!ok && clock64() - start < 2000000000LL) {
    uint32_t d = 0;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(d) : "r"(b) : "memory");
    ok = d != 0;
  }
  if (lane == 0) *done = ok ? 1 : 0;
  if (!ok) return;
  for (int t = 0; t < kTiles; ++t)
    for (int i = lane; i < kTile * kTile; i += 32) {
      const int r = i / kTile, c = i % kTile;  // at() names the 16-byte chunk; c & 7 the element in it
      out[t * kTile * kTile + i] = __bfloat162float(tiles[t * kTile * kTile + dev::Sw128KMajor::at(r, c & ~7) + (c & 7)]);
    }
}

TEST(TmaCuda, RowGatherBoxesAndOutOfBoundsZeros) {
  PIT_REQUIRE_CUDA();
  std::vector<__nv_bfloat16> mat(size_t{kRows} * kCols), stack(size_t{kMats} * kMatRows * kCols);
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) mat[static_cast<size_t>(r) * kCols + c] = __float2bfloat16(value(0, r, c));
  for (int m = 0; m < kMats; ++m)
    for (int r = 0; r < kMatRows; ++r)
      for (int c = 0; c < kCols; ++c)
        stack[(static_cast<size_t>(m) * kMatRows + r) * kCols + c] = __float2bfloat16(value(m, r, c));
  // Gathered rows: scattered, repeated, the first and last, and two past the end (300, 1000).
  std::vector<int> rows(kTile);
  for (int i = 0; i < kTile; ++i) rows[static_cast<size_t>(i)] = (i * 37 + 11) % kRows;
  rows[3] = 0;
  rows[4] = kRows - 1;
  rows[5] = kRows;
  rows[6] = 1000;
  rows[7] = rows[8];
  __nv_bfloat16 *dm = nullptr, *ds = nullptr;
  int *drows = nullptr, *ddone = nullptr;
  float* dout = nullptr;
  ASSERT_EQ(cudaMalloc(&dm, mat.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&ds, stack.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&drows, rows.size() * sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&ddone, sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dout, sizeof(float) * kTiles * kTile * kTile), cudaSuccess);
  cudaMemcpy(dm, mat.data(), mat.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(ds, stack.data(), stack.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(drows, rows.data(), rows.size() * sizeof(int), cudaMemcpyHostToDevice);
  Maps maps{};
  maps.row = pit::cuda::tensor_map_2d(DType::bf16, dm, kRows, kCols, kCols, 1, "probe");
  maps.box = pit::cuda::tensor_map_2d(DType::bf16, dm, kRows, kCols, kCols, kTile, "probe");
  maps.stack = pit::cuda::tensor_map_3d(DType::bf16, ds, kMats, kMatRows, kCols, kCols, int64_t{kMatRows} * kCols,
                                        kTile, "probe");
  probe<<<1, 32, kTiles * kTile * kTile * 2 + 1024>>>(maps, drows, dout, ddone);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  int done = 0;
  std::vector<float> out(size_t{kTiles} * kTile * kTile);
  cudaMemcpy(&done, ddone, sizeof(int), cudaMemcpyDeviceToHost);
  cudaMemcpy(out.data(), dout, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(dm);
  cudaFree(ds);
  cudaFree(drows);
  cudaFree(ddone);
  cudaFree(dout);
  ASSERT_EQ(done, 1) << "the stage's bytes never all arrived: boxes past the tensor did not count";
  const auto want = [&](int t, int r, int c) -> float {
    if (t <= 1) {  // gathered row rows[r], columns from 64 or 192
      const int row = rows[static_cast<size_t>(r)], col = (t == 0 ? 64 : 192) + c;
      return row < kRows && col < kCols ? value(0, row, col) : 0.f;
    }
    if (t == 2) return 250 + r < kRows ? value(0, 250 + r, 64 + c) : 0.f;
    return 40 + r < kMatRows && 168 + c < kCols ? value(1, 40 + r, 168 + c) : 0.f;
  };
  int bad = 0;
  for (int t = 0; t < kTiles; ++t)
    for (int r = 0; r < kTile; ++r)
      for (int c = 0; c < kTile; ++c) {
        const float got = out[(static_cast<size_t>(t) * kTile + r) * kTile + c];
        if (got != want(t, r, c) && ++bad <= 10)
          ADD_FAILURE() << "tile " << t << " row " << r << " column " << c << ": " << got << ", want " << want(t, r, c);
      }
  EXPECT_EQ(bad, 0) << "elements wrong of " << kTiles * kTile * kTile;
}

}  // namespace
