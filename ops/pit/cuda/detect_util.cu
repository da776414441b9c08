// CUDA helpers around detection: micro-tile counts for the planner (every candidate shape from
// one read of the tensor) and the scatter of an index's values back to a dense matrix.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
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
// Sampling (stride s > 1): band y looks at strips s x + y % s only (a diagonal pattern: every band
// and every strip is looked at, 1 / s of the regions), and the kernel also counts the tiles it
// looked at.
constexpr int kMaxCandidates = 8;
constexpr int64_t kMaxBands = 65535;  // gridDim.y
struct CountGeom {
  int rows, cols, g, band, strip, num;
  int stride;  // 1: every region; s: 1 / s of them
  bool vec;    // 16-byte loads: base aligned and cols a multiple of the chunk
  int tr[kMaxCandidates], tc[kMaxCandidates];
};

// The planner's fast read-back (count_for_planner): the blocks add into this device workspace,
// the last block to finish moves the sums into host-mapped memory, resets the workspace and then
// publishes `seq`, on which the host spins (no copy, no stream synchronisation).
struct CountWs {
  unsigned long long counts[kMaxCandidates], looked[kMaxCandidates];
  unsigned int done;  // blocks finished
};
struct CountOut {
  unsigned long long counts[kMaxCandidates], looked[kMaxCandidates];
  unsigned long long seq;
};
struct CountSink {
  unsigned long long* counts;  // i64 [num] on the device (count_micro_tiles), or null
  CountWs* ws;                 // else the workspace ...
  CountOut* out;               // ... and the host-mapped output (device pointer)
  unsigned long long seq;
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

// Thread 0 of every block, after its adds: the last block moves the sums to the host and resets
// the workspace for the next call.
__device__ void finish_counts(const CountSink& sink) {
  __threadfence();  // this block's adds before its arrival
  const unsigned int blocks = gridDim.x * gridDim.y;
  if (atomicAdd(&sink.ws->done, 1u) != blocks - 1) return;
  __threadfence();  // every block's adds are visible to the last one
  for (int q = 0; q < kMaxCandidates; ++q) {
    sink.out->counts[q] = atomicExch(&sink.ws->counts[q], 0ull);
    sink.out->looked[q] = atomicExch(&sink.ws->looked[q], 0ull);
  }
  sink.ws->done = 0;
  __threadfence_system();  // the sums reach the host before the sequence number does
  *reinterpret_cast<volatile unsigned long long*>(&sink.out->seq) = sink.seq;
}

template <typename T>
__global__ void __launch_bounds__(kDetectThreads)
    count_candidates_kernel(const T* __restrict__ p, const CountGeom g, const CountSink sink) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  static_assert(32 % V == 0, "a chunk's bits lie in one word");
  extern __shared__ uint32_t marks[];  // [band / g][strip / 32]
  const int groups = g.band / g.g, chunks = g.strip / V, words = g.strip / 32;
  const int r0 = blockIdx.y * g.band;
  const int c0 = (blockIdx.x * g.stride + blockIdx.y % g.stride) * g.strip;
  if (c0 >= g.cols) {  // a sampled strip past the last one
    if (sink.ws != nullptr && threadIdx.x == 0) finish_counts(sink);
    return;
  }
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
    if (threadIdx.x != 0) continue;
    if (sink.ws == nullptr) {
      if (total > 0) atomicAdd(sink.counts + q, static_cast<unsigned long long>(total));
      continue;
    }
    const int in_y = min(nty, (g.rows - r0 + tr - 1) / tr), in_x = min(ntx, (g.cols - c0 + tc - 1) / tc);
    if (total > 0) atomicAdd(&sink.ws->counts[q], static_cast<unsigned long long>(total));
    atomicAdd(&sink.ws->looked[q], static_cast<unsigned long long>(in_y) * in_x);
  }
  if (sink.ws != nullptr && threadIdx.x == 0) finish_counts(sink);
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

namespace {

// The launch geometry of one counting kernel for candidates [first, last) on a rows x cols
// operand of elements of `elem` bytes: row gcd and band (row lcm), strip (column lcm, whole
// words of marks, about 256 columns).
struct CountPlan {
  int64_t g, band, strip;
};
CountPlan count_plan(const std::vector<MicroTile>& tiles, size_t first, size_t last, int64_t rows, int64_t cols,
                     int64_t elem) {
  int64_t g = 0, band = 1, cl = 16 / elem;
  for (size_t q = first; q < last; ++q) {
    // A micro-tile taller or wider than the matrix counts like one exactly as tall or wide.
    g = std::gcd(g, std::min(tiles[q].rows, rows));
    band = std::lcm(band, std::min(tiles[q].rows, rows));
    cl = std::lcm(cl, std::min(tiles[q].cols, cols));
  }
  cl = std::lcm(cl, int64_t{32});  // whole words of marks
  const int64_t strip = cl * std::max<int64_t>(1, 256 / cl);
  // At most kMaxBands bands (gridDim.y): taller bands for very tall operands.
  const int64_t bands = (rows + band - 1) / band;
  if (bands > kMaxBands) band *= (bands + kMaxBands - 1) / kMaxBands;
  return {g, band, strip};
}
bool count_fits(const CountPlan& c, int64_t rows) {
  return c.band / c.g * (c.strip / 8) <= 32768 && (rows + c.band - 1) / c.band <= kMaxBands;
}

// Launches the counting of candidates [first, last) with sampling stride `stride` into `sink`.
void launch_count(const Tensor& pattern, const std::vector<MicroTile>& tiles, size_t first, size_t last,
                  const CountPlan& c, int64_t stride, const CountSink& sink, StreamRef stream) {
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  dispatch(pattern.dtype(), "count_micro_tiles (CUDA)", [&]<typename T>() {
    constexpr int64_t V = 16 / sizeof(T);
    CountGeom cg{};
    cg.rows = static_cast<int>(rows);
    cg.cols = static_cast<int>(cols);
    cg.g = static_cast<int>(c.g);
    cg.band = static_cast<int>(c.band);
    cg.strip = static_cast<int>(c.strip);
    cg.num = static_cast<int>(last - first);
    cg.stride = static_cast<int>(stride);
    cg.vec = cols % V == 0 && reinterpret_cast<uintptr_t>(pattern.data_ptr()) % 16 == 0;
    for (size_t q = first; q < last; ++q) {
      cg.tr[q - first] = static_cast<int>(std::min(tiles[q].rows, rows));
      cg.tc[q - first] = static_cast<int>(std::min(tiles[q].cols, cols));
    }
    const int64_t strips = (cols + c.strip - 1) / c.strip;
    const dim3 grid(static_cast<unsigned>((strips + stride - 1) / stride),
                    static_cast<unsigned>((rows + c.band - 1) / c.band));
    count_candidates_kernel<T><<<grid, kDetectThreads, static_cast<size_t>(c.band / c.g * (c.strip / 8)), native(stream)>>>(
        static_cast<const T*>(pattern.data_ptr()), cg, sink);
    PIT_CUDA_CHECK(cudaGetLastError());
  });
}

// Per device: the workspace (zeroed once; each call leaves it zeroed) and the host-mapped output.
struct PlannerCounts {
  CountWs* ws = nullptr;
  CountOut* out = nullptr;      // host address
  CountOut* out_dev = nullptr;  // its device address
  unsigned long long seq = 0;
};

}  // namespace

Tensor count_micro_tiles(const Tensor& pattern, const std::vector<MicroTile>& tiles, StreamRef stream) {
  pit::cuda::DeviceGuard guard(pattern.device().index);
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  Tensor counts = Tensor::empty({static_cast<int64_t>(tiles.size())}, DType::i64, pattern.device());
  fill_bytes(counts, 0, stream);
  if (tiles.empty() || rows == 0 || cols == 0) return counts;
  auto* out = reinterpret_cast<unsigned long long*>(counts.data<int64_t>());
  const int64_t elem = static_cast<int64_t>(dtype_size(pattern.dtype()));
  const size_t n = tiles.size();
  const CountPlan all = count_plan(tiles, 0, n, rows, cols, elem);
  if (n <= static_cast<size_t>(kMaxCandidates) && count_fits(all, rows)) {
    launch_count(pattern, tiles, 0, n, all, 1, CountSink{out, nullptr, nullptr, 0}, stream);  // one read
    return counts;
  }
  for (size_t q = 0; q < n; ++q) {
    const CountPlan one = count_plan(tiles, q, q + 1, rows, cols, elem);
    PIT_CHECK(count_fits(one, rows), "count_micro_tiles: micro-tile ", tiles[q].str(), " cannot be counted on a ",
              rows, " x ", cols, " operand (its marks for one block would exceed 32 KiB of shared memory)");
    launch_count(pattern, tiles, q, q + 1, one, 1, CountSink{out + q, nullptr, nullptr, 0}, stream);
  }
  return counts;
}

TileCounts count_for_planner(const Tensor& pattern, const std::vector<MicroTile>& tiles, int64_t sample_bytes,
                             StreamRef stream) {
  const int device = pattern.device().index;
  pit::cuda::DeviceGuard guard(device);
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  const size_t n = tiles.size();
  TileCounts r;
  r.nonzero.assign(n, 0);
  r.looked.assign(n, 0);
  if (n == 0 || rows == 0 || cols == 0) return r;
  const int64_t elem = static_cast<int64_t>(dtype_size(pattern.dtype()));
  const CountPlan c = count_plan(tiles, 0, n, rows, cols, elem);
  if (n > static_cast<size_t>(kMaxCandidates) || !count_fits(c, rows)) {
    // Not one launch: the exact counts through the copy path.
    r.nonzero = read_back_i64(count_micro_tiles(pattern, tiles, stream), stream);
    for (size_t q = 0; q < n; ++q) r.looked[q] = tiles[q].count_in(rows, cols);
    return r;
  }
  // Sampling stride: about sample_bytes read, 1 / 32 of the regions at least, 64 regions at least.
  const int64_t strips = (cols + c.strip - 1) / c.strip, bands = (rows + c.band - 1) / c.band;
  int64_t stride = 1;
  if (sample_bytes > 0) {
    stride = std::clamp<int64_t>(pattern.nbytes() / sample_bytes, 1, 32);
    stride = std::min(stride, std::max<int64_t>(1, strips * bands / 64));
    stride = std::min(stride, strips);  // every band looks at one strip at least
  }
  r.stride = stride;
  static std::mutex mu;
  static std::map<int, PlannerCounts> states;
  const std::lock_guard<std::mutex> lock(mu);
  PlannerCounts& st = states[device];
  if (st.ws == nullptr) {
    PIT_CUDA_CHECK(cudaMalloc(&st.ws, sizeof(CountWs)));
    PIT_CUDA_CHECK(cudaMemset(st.ws, 0, sizeof(CountWs)));
    PIT_CUDA_CHECK(cudaHostAlloc(&st.out, sizeof(CountOut), cudaHostAllocMapped));
    std::memset(st.out, 0, sizeof(CountOut));
    PIT_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&st.out_dev), st.out, 0));
    PIT_CUDA_CHECK(cudaDeviceSynchronize());  // the workspace is zero before the first kernel
  }
  const unsigned long long seq = ++st.seq;
  launch_count(pattern, tiles, 0, n, c, stride, CountSink{nullptr, st.ws, st.out_dev, seq}, stream);
  // Spin on the sequence number; now and then ask the stream whether the kernel failed (it then
  // never publishes).
  const auto published = [&] { return std::atomic_ref<unsigned long long>(st.out->seq).load(std::memory_order_acquire) == seq; };
  for (uint64_t spins = 1; !published(); ++spins) {
    if (spins % 1024 != 0) continue;
    const cudaError_t e = cudaStreamQuery(native(stream));
    if (e == cudaErrorNotReady) continue;
    PIT_CUDA_CHECK(e);
    PIT_CHECK(published(), "count_for_planner: the counting kernel finished without publishing its counts");
  }
  for (size_t q = 0; q < n; ++q) {
    r.nonzero[q] = static_cast<int64_t>(st.out->counts[q]);
    r.looked[q] = static_cast<int64_t>(st.out->looked[q]);
  }
  pit::cuda::check_device_errors(device);
  return r;
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
