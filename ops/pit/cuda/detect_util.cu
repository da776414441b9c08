// CUDA helpers around detection: micro-tile counts for the planner (every candidate shape from
// one read of the tensor) and the scatter of an index's values back to a dense matrix.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <tuple>

#include "core/cuda/backend.h"
#include "ops/pit/cuda/detect.h"
#include "ops/pit/cuda/detect_common.cuh"

namespace pit::sparse::cuda {
namespace {

// Micro-tile counts for several candidate shapes in one read of the pattern. A block covers a
// region of `band` rows (a multiple of every candidate's rows) by `strip` columns (a multiple of
// every candidate's columns, of the 16-byte chunk and of 32), so each candidate tile lies in one
// region. Pass 1 marks, per group of g rows (g divides every candidate's rows), one bit per
// column: whether the group holds a non-zero there (16-byte loads where the rows allow). Pass 2
// counts each candidate's tiles from those bits, a word (32 columns) at a time, one atomic per
// candidate and block.
constexpr int kMaxCandidates = 8;
constexpr int64_t kMaxBands = 65535;  // gridDim.y
struct CountGeom {
  int rows, cols, g, band, strip, num;
  bool vec;  // 16-byte loads: base aligned and cols a multiple of the chunk
  int tr[kMaxCandidates], tc[kMaxCandidates];
};

// Whether any of bits [c, c + n) of a row of words is set.
__device__ __forceinline__ bool any_bits(const uint32_t* row, int c, int n) {
  const int w0 = c / 32, w1 = (c + n - 1) / 32;
  for (int w = w0; w <= w1; ++w) {
    uint32_t mask = ~0u;
    if (w == w0) mask &= ~0u << (c % 32);
    if (w == w1) mask &= ~0u >> (31 - (c + n - 1) % 32);
    if (row[w] & mask) return true;
  }
  return false;
}

template <typename T>
__global__ void __launch_bounds__(kDetectThreads)
    count_candidates_kernel(const T* __restrict__ p, const CountGeom g, unsigned long long* counts) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  static_assert(32 % V == 0, "a chunk's bits lie in one word");
  extern __shared__ uint32_t marks[];  // [band / g][strip / 32]
  const int groups = g.band / g.g, chunks = g.strip / V, words = g.strip / 32;
  const int r0 = blockIdx.y * g.band, c0 = blockIdx.x * g.strip;
  for (int i = threadIdx.x; i < groups * words; i += blockDim.x) marks[i] = 0;
  __syncthreads();
  for (int item = threadIdx.x; item < groups * chunks; item += blockDim.x) {
    const int grp = item / chunks, cc = item % chunks, c = c0 + cc * V;
    bool any[V] = {};
    const int ra = r0 + grp * g.g, rb = min(g.rows, ra + g.g);
    if (g.vec && c + V <= g.cols) {
      constexpr int kUnroll = 8;  // loads in flight before any is tested
      for (int r = ra; r < rb; r += kUnroll) {
        uint4 w[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
          w[u] = r + u < rb ? *reinterpret_cast<const uint4*>(p + static_cast<int64_t>(r + u) * g.cols + c)
                            : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const T* v = reinterpret_cast<const T*>(&w[u]);
#pragma unroll
          for (int e = 0; e < V; ++e) any[e] = any[e] || nz(v[e]);
        }
      }
    } else {
      for (int r = ra; r < rb; ++r)
#pragma unroll
        for (int e = 0; e < V; ++e)
          if (c + e < g.cols) any[e] = any[e] || nz(p[static_cast<int64_t>(r) * g.cols + c + e]);
    }
    uint32_t bits = 0;
#pragma unroll
    for (int e = 0; e < V; ++e) bits |= static_cast<uint32_t>(any[e]) << e;
    if (bits) atomicOr(&marks[grp * words + cc * V / 32], bits << (cc * V % 32));
  }
  __syncthreads();
  for (int q = 0; q < g.num; ++q) {
    const int tr = g.tr[q], tc = g.tc[q], nty = g.band / tr, ntx = g.strip / tc;
    int total = 0;
    for (int base = 0; base < nty * ntx; base += blockDim.x) {
      const int t = base + threadIdx.x;
      bool any = false;
      if (t < nty * ntx) {
        const int ty = t / ntx, tx = t % ntx;
        if (r0 + ty * tr < g.rows && c0 + tx * tc < g.cols)
          for (int y = ty * (tr / g.g); y < (ty + 1) * (tr / g.g) && !any; ++y)
            any = any_bits(marks + y * words, tx * tc, tc);
      }
      total += __syncthreads_count(any);
    }
    if (threadIdx.x == 0 && total > 0) atomicAdd(counts + q, static_cast<unsigned long long>(total));
  }
}

template <typename T>
__global__ void to_dense_kernel(const int* offsets, const int* cols, const T* values, int rows, int ncols, int tr,
                                int tc, T* out) {
  const int i = blockIdx.x;
  const int te = tr * tc;
  for (int j = offsets[i]; j < offsets[i + 1]; ++j)
    for (int e = threadIdx.x; e < te; e += blockDim.x) {
      const int r = i * tr + e / tc, c = cols[j] * tc + e % tc;
      if (r < rows && c < ncols) out[static_cast<int64_t>(r) * ncols + c] = values[static_cast<int64_t>(j) * te + e];
    }
}

}  // namespace

Tensor count_micro_tiles(const Tensor& pattern, const std::vector<MicroTile>& tiles, StreamRef stream) {
  pit::cuda::DeviceGuard guard(pattern.device().index);
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  Tensor counts = Tensor::empty({static_cast<int64_t>(tiles.size())}, DType::i64, pattern.device());
  fill_bytes(counts, 0, stream);
  if (tiles.empty() || rows == 0 || cols == 0) return counts;
  auto* out = reinterpret_cast<unsigned long long*>(counts.data<int64_t>());
  dispatch(pattern.dtype(), "count_micro_tiles (CUDA)", [&]<typename T>() {
    constexpr int64_t V = 16 / sizeof(T);
    // A micro-tile taller or wider than the matrix counts like one exactly as tall or wide.
    const auto tr = [&](size_t q) { return std::min(tiles[q].rows, rows); };
    const auto tc = [&](size_t q) { return std::min(tiles[q].cols, cols); };
    // One launch for candidates [first, last): geometry from their row gcd / lcm and column lcm.
    const auto geom = [&](size_t first, size_t last) {
      int64_t g = 0, band = 1, cl = V;
      for (size_t q = first; q < last; ++q) {
        g = std::gcd(g, tr(q));
        band = std::lcm(band, tr(q));
        cl = std::lcm(cl, tc(q));
      }
      cl = std::lcm(cl, int64_t{32});  // whole words of marks
      const int64_t strip = cl * std::max<int64_t>(1, 256 / cl);
      // At most kMaxBands bands (gridDim.y): taller bands for very tall operands.
      const int64_t bands = (rows + band - 1) / band;
      if (bands > kMaxBands) band *= (bands + kMaxBands - 1) / kMaxBands;
      return std::tuple{g, band, strip};
    };
    const auto fits = [&](int64_t g, int64_t band, int64_t strip) {
      return band / g * (strip / 8) <= 32768 && (rows + band - 1) / band <= kMaxBands;
    };
    const auto launch = [&](size_t first, size_t last) {
      const auto [g, band, strip] = geom(first, last);
      CountGeom cg{};
      cg.rows = static_cast<int>(rows);
      cg.cols = static_cast<int>(cols);
      cg.g = static_cast<int>(g);
      cg.band = static_cast<int>(band);
      cg.strip = static_cast<int>(strip);
      cg.num = static_cast<int>(last - first);
      cg.vec = cols % V == 0 && reinterpret_cast<uintptr_t>(pattern.data_ptr()) % 16 == 0;
      for (size_t q = first; q < last; ++q) {
        cg.tr[q - first] = static_cast<int>(tr(q));
        cg.tc[q - first] = static_cast<int>(tc(q));
      }
      const dim3 grid(static_cast<unsigned>((cols + strip - 1) / strip), static_cast<unsigned>((rows + band - 1) / band));
      count_candidates_kernel<T><<<grid, kDetectThreads, static_cast<size_t>(band / g * (strip / 8)), native(stream)>>>(
          static_cast<const T*>(pattern.data_ptr()), cg, out + first);
      PIT_CUDA_CHECK(cudaGetLastError());
    };
    const size_t n = tiles.size();
    const auto [g, band, strip] = geom(0, n);
    if (n <= static_cast<size_t>(kMaxCandidates) && fits(g, band, strip)) {
      launch(0, n);  // the planner's candidates: one read of the pattern
    } else {
      for (size_t q = 0; q < n; ++q) {
        const auto [g1, band1, strip1] = geom(q, q + 1);
        PIT_CHECK(fits(g1, band1, strip1), "count_micro_tiles: micro-tile ", tiles[q].str(),
                  " cannot be counted on a ", rows, " x ", cols,
                  " operand (its marks for one block would exceed 32 KiB of shared memory)");
        launch(q, q + 1);
      }
    }
  });
  return counts;
}

std::vector<int64_t> read_back_i64(const Tensor& t, StreamRef stream) {
  pit::cuda::DeviceGuard guard(t.device().index);
  // A copy to pageable memory goes through a driver staging buffer; one to pinned memory is a
  // single DMA. The buffer lives as long as the thread.
  struct Pinned {
    void* p = nullptr;
    size_t bytes = 0;
    ~Pinned() {
      if (p != nullptr) (void)cudaFreeHost(p);  // at exit the runtime may be gone already
    }
  };
  thread_local Pinned buf;
  const size_t bytes = t.nbytes();
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  if (bytes == 0) return out;
  if (buf.bytes < bytes) {
    if (buf.p != nullptr) PIT_CUDA_CHECK(cudaFreeHost(buf.p));
    buf.p = nullptr;
    buf.bytes = 0;
    PIT_CUDA_CHECK(cudaMallocHost(&buf.p, bytes));
    buf.bytes = bytes;
  }
  PIT_CUDA_CHECK(cudaMemcpyAsync(buf.p, t.data_ptr(), bytes, cudaMemcpyDeviceToHost, native(stream)));
  pit::cuda::stream_synchronize(stream);
  std::memcpy(out.data(), buf.p, bytes);
  return out;
}

Tensor tiles_to_dense(const Tensor& offsets, const Tensor& cols, const Tensor& values, int64_t rows, int64_t ncols,
                      int64_t tr, int64_t tc, StreamRef stream) {
  pit::cuda::DeviceGuard guard(values.device().index);
  Tensor out = Tensor::empty({rows, ncols}, values.dtype(), values.device());
  fill_bytes(out, 0, stream);
  const int64_t nbr = (rows + tr - 1) / tr;
  if (nbr == 0 || ncols == 0) return out;
  dispatch_floating(values.dtype(), "to_dense (CUDA)", [&]<typename T>() {
    to_dense_kernel<T><<<static_cast<unsigned>(nbr), 128, 0, native(stream)>>>(
        offsets.data<int32_t>(), cols.data<int32_t>(), static_cast<const T*>(values.data_ptr()),
        static_cast<int>(rows), static_cast<int>(ncols), static_cast<int>(tr), static_cast<int>(tc), out.data<T>());
  });
  PIT_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace pit::sparse::cuda
