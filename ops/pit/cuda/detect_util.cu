// CUDA helpers around detection: micro-tile counts for the planner (every candidate shape from
// one read of the tensor) and the scatter of an index's values back to a dense matrix.
#include <algorithm>
#include <numeric>
#include <tuple>

#include "ops/pit/cuda/detect.h"
#include "ops/pit/cuda/detect_common.cuh"

namespace pit::sparse::cuda {
namespace {

// Micro-tile counts for several candidate shapes in one read of the pattern. A block covers a
// region of `band` rows (a multiple of every candidate's rows) by `strip` columns (a multiple of
// every candidate's columns and of the 16-byte chunk), so each candidate tile lies in one region.
// Pass 1 marks, per group of g rows (g divides every candidate's rows) and per column, whether
// the group holds a non-zero (16-byte loads where the rows allow); pass 2 counts each candidate's
// tiles from those marks, one atomic per candidate and block.
constexpr int kMaxCandidates = 8;
struct CountGeom {
  int rows, cols, g, band, strip, num;
  bool vec;  // 16-byte loads: base aligned and cols a multiple of the chunk
  int tr[kMaxCandidates], tc[kMaxCandidates];
};

template <typename T>
__global__ void __launch_bounds__(kDetectThreads)
    count_candidates_kernel(const T* __restrict__ p, const CountGeom g, unsigned long long* counts) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  extern __shared__ uint8_t marks[];  // [band / g][strip]
  const int groups = g.band / g.g, chunks = g.strip / V;
  const int r0 = blockIdx.y * g.band, c0 = blockIdx.x * g.strip;
  for (int item = threadIdx.x; item < groups * chunks; item += blockDim.x) {
    const int grp = item / chunks, cc = item % chunks, c = c0 + cc * V;
    bool any[V] = {};
    const int ra = r0 + grp * g.g, rb = min(g.rows, ra + g.g);
    if (g.vec && c + V <= g.cols) {
      // kUnroll rows' loads in flight before any is tested. (The planner's count + read-back
      // measured 44 us for 4096^2 bf16 on an H200 with and without this: the time is elsewhere,
      // not yet profiled.)
      constexpr int kUnroll = 8;
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
#pragma unroll
    for (int e = 0; e < V; ++e) marks[grp * g.strip + cc * V + e] = any[e];
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
            for (int x = tx * tc; x < (tx + 1) * tc; ++x)
              if (marks[y * g.strip + x]) {
                any = true;
                break;
              }
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
      const int64_t strip = cl * std::max<int64_t>(1, 256 / cl);
      return std::tuple{g, band, strip};
    };
    const auto fits = [&](int64_t g, int64_t band, int64_t strip) {
      return band <= 1024 && strip <= 16384 && band / g * strip <= 32768;
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
      count_candidates_kernel<T><<<grid, kDetectThreads, static_cast<size_t>(band / g * strip), native(stream)>>>(
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
                  " is too large to count on a ", rows, " x ", cols, " operand (at most 1024 rows and 16384 columns)");
        launch(q, q + 1);
      }
    }
  });
  return counts;
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
