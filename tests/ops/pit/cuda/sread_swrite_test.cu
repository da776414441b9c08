// SRead and SWrite (ops/pit/cuda/sread.cuh, swrite.cuh) on their own, against host loops:
// SRead gathers named rows (16-byte cp.async when aligned, the element path when a row start is
// not 16-byte aligned or the source is strided), zero-fills ragged tails and absent rows; SWrite
// stores with bias and activation, accumulates, and adds atomically where rows repeat.
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "ops/pit/cuda/sread.cuh"
#include "ops/pit/cuda/swrite.cuh"
#include "tests/gpu.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/sparse_data.h"

using namespace pit;
namespace dev = pit::sparse::cuda::dev;

namespace {

constexpr int kRows = 16, kCols = 64, kLd = kCols + 8, kThreads = 128;

// Tile row r <- source row rows[r] (or nothing when < 0), columns [c0, c0 + kCols) of a [R, C]
// matrix; strided: tile row r <- column rows[r] of the matrix, rows [c0, c0 + kCols).
template <typename T>
__global__ void sread_kernel(const T* src, int64_t nrows, int64_t ncols, const int32_t* rows, int64_t c0,
                             bool strided, T* out) {
  __shared__ uint4 raw[kRows * kLd * sizeof(T) / 16];
  T* tile = reinterpret_cast<T*>(raw);
  dev::sread_tile<T, kRows, kCols, kLd, kThreads>(tile, threadIdx.x, [&](int r, int c) {
    const int64_t named = rows[r];
    if (strided) {
      const int n = named < 0 ? 0 : dev::valid_n(nrows - c0 - c, kCols);
      return dev::Src<T>{src + (c0 + c) * ncols + named, n, ncols};
    }
    const int n = named < 0 ? 0 : dev::valid_n(ncols - c0 - c, kCols);
    return dev::Src<T>{src + named * ncols + c0 + c, n};
  });
  dev::cp_async_commit();
  dev::cp_async_wait<0>();
  __syncthreads();
  for (int i = threadIdx.x; i < kRows * kCols; i += kThreads) out[i] = tile[(i / kCols) * kLd + i % kCols];
}

// Thread t writes the pair (t / 32, 2 (t % 32)) with values v(row, col) = row - col / 64 to row
// rows[t / 32] of C.
template <typename T>
__global__ void swrite_kernel(T* c, int64_t ncols, const int32_t* rows, dev::EpiArgs e) {
  const int r = threadIdx.x / 32, col = 2 * (threadIdx.x % 32);
  const float v0 = r - col / 64.f, v1 = r - (col + 1) / 64.f;
  dev::swrite_pair<T>(c + int64_t{rows[r]} * ncols, col, ncols, v0, v1, e);
}

template <typename T>
void check_sread(DType dt, int64_t nrows, int64_t ncols, int64_t c0, bool strided, const std::string& what) {
  const Device gpu = Device::cuda();
  const Tensor src = test::dense_random({nrows, ncols}, 7 + ncols + c0, dt, gpu);
  std::vector<int32_t> rows(kRows);
  for (int r = 0; r < kRows; ++r) rows[r] = r % 5 == 3 ? -1 : static_cast<int32_t>((r * 7) % (strided ? ncols : nrows));
  const Tensor rows_t = from_vector(rows, {kRows}).to(gpu);
  Tensor out = test::poisoned({kRows, kCols}, dt, gpu);
  sread_kernel<T><<<1, kThreads>>>(src.data<T>(), nrows, ncols, rows_t.data<int32_t>(), c0, strided, out.data<T>());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  const std::vector<double> s = test::values(src);
  std::vector<double> want(kRows * kCols, 0.0);
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) {
      if (rows[r] < 0) continue;
      const int64_t x = c0 + c;
      if (strided && x < nrows) want[r * kCols + c] = s[static_cast<size_t>(x * ncols + rows[r])];
      if (!strided && x < ncols) want[r * kCols + c] = s[static_cast<size_t>(rows[r] * ncols + x)];
    }
  test::expect_close(out, from_vector(want, {kRows, kCols}), 0, 0, what);
}

}  // namespace

TEST(PitSReadCuda, GatherAlignedRaggedStrided) {
  PIT_REQUIRE_CUDA();
  // Aligned rows (128 columns), a ragged tail (c0 = 96: 32 valid columns), odd leading dimension
  // (the element path), a strided column gather, f32 and bf16.
  check_sread<BFloat16>(DType::bf16, 40, 128, 0, false, "bf16 aligned");
  check_sread<BFloat16>(DType::bf16, 40, 128, 96, false, "bf16 ragged tail");
  check_sread<BFloat16>(DType::bf16, 40, 101, 8, false, "bf16 unaligned rows");
  check_sread<BFloat16>(DType::bf16, 90, 33, 40, true, "bf16 strided");
  check_sread<float>(DType::f32, 40, 128, 64, false, "f32 aligned, tail");
  check_sread<float>(DType::f32, 40, 77, 4, false, "f32 unaligned rows");
  check_sread<float>(DType::f32, 70, 21, 0, true, "f32 strided");
}

TEST(PitSWriteCuda, StoreAccumulateAtomic) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const int64_t nrows = 10, ncols = 63;  // odd: the last pair is cut, rows unaligned for pairs
  // Rows of the 8 warps' tiles: two pairs of repeats for the atomic case.
  const std::vector<int32_t> rows = {1, 4, 4, 9, 0, 7, 7, 2};
  const Tensor rows_t = from_vector(rows, {8}).to(gpu);
  for (const DType dt : {DType::f32, DType::bf16, DType::f16}) {
    dispatch<DType::f32, DType::bf16, DType::f16>(dt, "swrite test", [&]<typename T>() {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>) {
        const double tol = dt == DType::f32 ? 1e-6 : dt == DType::f16 ? 2e-3 : 1e-2;
        const Tensor bias = test::dense_random({ncols}, 3, dt, gpu);
        const Tensor c0 = test::dense_random({nrows, ncols}, 4, dt, gpu);
        const std::vector<double> b = test::values(bias), base = test::values(c0);
        const auto v = [](int r, int64_t col) { return r - col / 64.0; };
        for (const auto mode : {dev::WriteMode::store, dev::WriteMode::accumulate, dev::WriteMode::atomic}) {
          dev::EpiArgs e;
          e.mode = mode;
          if (mode == dev::WriteMode::store) {
            e.bias = bias.data_ptr();
            e.act = dev::Act::relu;
          }
          Tensor c = c0.clone();
          // Store and accumulate own their elements: only the first of each repeated row.
          std::vector<int32_t> used = rows;
          if (mode != dev::WriteMode::atomic) used = {1, 4, 3, 9, 0, 7, 5, 2};
          const Tensor used_t = from_vector(used, {8}).to(gpu);
          swrite_kernel<T><<<1, 256>>>(c.data<T>(), ncols, used_t.data<int32_t>(), e);
          ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
          std::vector<double> want = base;
          for (int r = 0; r < 8; ++r)
            for (int64_t col = 0; col < ncols; ++col) {
              double& w = want[static_cast<size_t>(used[r] * ncols + col)];
              if (mode == dev::WriteMode::store) w = std::max(0.0, v(r, col) + b[static_cast<size_t>(col)]);
              else w += v(r, col);
            }
          test::expect_close(c, from_vector(want, {nrows, ncols}), tol, tol,
                             std::string("swrite ") + dtype_name(dt) + " mode " + std::to_string(static_cast<int>(mode)));
        }
      }
    });
  }
}
