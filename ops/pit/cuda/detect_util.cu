// CUDA helpers around detection: micro-tile counts for the planner (every candidate shape from
// one read of the tensor) and the scatter of an index's values back to a dense matrix.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
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
// column: whether the group holds a non-zero there. A thread takes a (group, chunk) item: it ORs
// the group's rows of one 16-byte chunk, sign bits cleared (-0 is zero), all loads in flight
// together, and sets the chunk's bits once. Pass 2 counts each candidate's tiles from those bits
// a word (32 columns) at a time and adds one sum per candidate and block.
// Sampling (stride s > 1): band y looks at strips s x + y % s only (a diagonal pattern: every band
// and every strip is looked at, 1 / s of the regions); the host works out how many tiles that is.
constexpr int kMaxCandidates = 8;
static_assert(kMaxCandidates <= kDetectThreads / 32, "a warp counts a candidate (and finish_counts moves one a thread)");
constexpr int64_t kMaxBands = 65535;  // gridDim.y
struct CountGeom {
  int rows, cols, g, band, strip, num;
  int stride;  // 1: every region; s: 1 / s of them
  bool vec;    // 16-byte loads: base aligned and cols a multiple of the chunk
  int tr[kMaxCandidates], tc[kMaxCandidates];
  // Pass 2 by words (tc a power of two up to 32, or a multiple of 32): the lowest bit of every
  // tc-bit field of a word (1 for tc >= 32); 0: bit by bit.
  uint32_t starts[kMaxCandidates];
};

// The planner's fast read-back (count_for_planner): the blocks add into this device workspace,
// the last block to finish moves the sums into host-mapped memory, resets the workspace and then
// publishes `seq`, on which the host spins (no copy, no stream synchronisation).
struct CountWs {
  unsigned long long counts[kMaxCandidates];
  unsigned int done;  // blocks finished
};
struct CountOut {
  unsigned long long counts[kMaxCandidates];
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

// Every thread of every block, after the block's adds (each adding thread fenced them, then the
// block synchronised): the last block moves the sums to the host, a candidate a thread (eight
// serial atomic round trips in one thread took about 4 us), and resets the workspace for the next
// call.
__device__ void finish_counts(const CountSink& sink) {
  __shared__ bool last;
  if (threadIdx.x == 0) last = atomicAdd(&sink.ws->done, 1u) == gridDim.x * gridDim.y - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();  // every block's adds are visible to the last one
  if (threadIdx.x < kMaxCandidates) {
    sink.out->counts[threadIdx.x] = atomicExch(&sink.ws->counts[threadIdx.x], 0ull);
    __threadfence_system();  // the sums reach the host before the sequence number does
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  sink.ws->done = 0;
  __threadfence_system();
  *reinterpret_cast<volatile unsigned long long*>(&sink.out->seq) = sink.seq;
}

// A 16-byte chunk with the sign bits of floating-point elements cleared: an element is non-zero
// when its bits then are (NaN is non-zero, -0 is zero, as nz()).
template <typename T>
__device__ __forceinline__ uint4 magnitude_bits(uint4 w) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return make_uint4(w.x & 0x7fff7fffu, w.y & 0x7fff7fffu, w.z & 0x7fff7fffu, w.w & 0x7fff7fffu);
  } else if constexpr (std::is_same_v<T, float>) {
    return make_uint4(w.x & 0x7fffffffu, w.y & 0x7fffffffu, w.z & 0x7fffffffu, w.w & 0x7fffffffu);
  } else if constexpr (std::is_same_v<T, double>) {
    return make_uint4(w.x, w.y & 0x7fffffffu, w.z, w.w & 0x7fffffffu);  // little-endian: sign in the high word
  } else {
    static_assert(!std::is_floating_point_v<T>, "magnitude_bits: a floating-point type without its case");
    return w;
  }
}
__device__ __forceinline__ void or_into(uint4& a, uint4 b) {
  a.x |= b.x;
  a.y |= b.y;
  a.z |= b.z;
  a.w |= b.w;
}
// Bit e set when element e of the chunk (from magnitude_bits) is non-zero.
template <typename T>
__device__ __forceinline__ uint32_t chunk_bits(uint4 a) {
  const uint32_t w[4] = {a.x, a.y, a.z, a.w};
  constexpr int kBytes = sizeof(T), V = 16 / kBytes;
  uint32_t bits = 0;
#pragma unroll
  for (int e = 0; e < V; ++e) {
    bool any;
    if constexpr (kBytes == 8) {
      any = (w[2 * e] | w[2 * e + 1]) != 0;
    } else {
      constexpr int kPerWord = 4 / kBytes;
      constexpr uint32_t kMask = kBytes == 4 ? ~0u : (1u << (8 * kBytes)) - 1;
      any = ((w[e / kPerWord] >> (8 * kBytes * (e % kPerWord))) & kMask) != 0;
    }
    bits |= static_cast<uint32_t>(any) << e;
  }
  return bits;
}

// This lane's share of the non-zero tr x tc tiles of a block's marks (pass 2 below; every lane
// of the warp calls it). A tile is non-zero when a mark is set in its group rows and columns;
// marks past the operand's last row or column are zero, so tiles there count as zero.
//   By words (starts != 0): `lanes` lanes a tile OR every lanes-th of its group rows one word (32
//   columns) at a time and meet by shuffles; a tile narrower than a word is a bit field of it,
//   counted by folding each field into its lowest bit and a popcount; a wider one spans tc / 32
//   words.
//   Other widths (a tile clamped to a narrow operand, or a caller's odd shape): a lane a tile, bit
//   by bit.
__device__ int count_tiles(const uint32_t* marks, const CountGeom& g, int tr, int tc, uint32_t starts) {
  const int lane = threadIdx.x % 32, groups = g.band / g.g, words = g.strip / 32, per = tr / g.g;
  int total = 0;
  if (starts != 0) {
    const int span = tc < 32 ? 1 : tc / 32, ntx = words / span, tiles = groups / per * ntx;
    int lanes = 1;  // a power of two: every lane busy where the tiles are few and tall
    while (lanes * 2 <= per && lanes * 2 * tiles <= 32) lanes *= 2;
    for (int base = 0; base < tiles * lanes; base += 32) {  // the same trip count in every lane
      const int t = (base + lane) / lanes, sub = (base + lane) % lanes;
      uint32_t m = 0;
      if (t < tiles) {
        const int ty = t / ntx, tx = t % ntx;
        for (int y = ty * per + sub; y < (ty + 1) * per; y += lanes)
          for (int w = tx * span; w < (tx + 1) * span; ++w) m |= marks[y * words + w];
      }
      for (int off = 1; off < lanes; off *= 2) m |= __shfl_xor_sync(0xffffffffu, m, off);
      for (int sh = 1; sh < tc && sh < 32; sh *= 2) m |= m >> sh;
      if (t < tiles && sub == 0) total += __popc(m & starts);
    }
  } else {
    const int nty = g.band / tr, ntx = g.strip / tc;
    for (int t = lane; t < nty * ntx; t += 32) {
      const int ty = t / ntx, tx = t % ntx;
      bool any = false;
      for (int y = ty * per; y < (ty + 1) * per && !any; ++y) any = any_bits(marks + y * words, tx * tc, tc);
      total += any;
    }
  }
  return total;
}

// The warp of candidate q adds its lanes' counts into the candidate's sum (every lane calls it).
__device__ __forceinline__ void add_count(const CountSink& sink, int q, int v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  if (threadIdx.x % 32 != 0) return;
  unsigned long long* to = sink.ws != nullptr ? &sink.ws->counts[q] : sink.counts + q;
  if (v > 0) atomicAdd(to, static_cast<unsigned long long>(v));
  __threadfence();  // before the block's arrival (finish_counts)
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
    if (sink.ws != nullptr) finish_counts(sink);
    return;
  }
  for (int i = threadIdx.x; i < groups * words; i += blockDim.x) marks[i] = 0;
  __syncthreads();
  // Pass 1. An item is up to kInFlight rows of a group in one chunk, all loaded before any is used;
  // the items of one group meet in its marks (atomicOr). On a 4096 x 4096 bf16 operand: 16-row
  // groups, two items each, two items a thread.
  constexpr int kInFlight = 8;
  const int band_rows = min(g.band, g.rows - r0), parts = (g.g + kInFlight - 1) / kInFlight;
  for (int i = threadIdx.x; i < groups * parts * chunks; i += blockDim.x) {
    const int gp = i / chunks, cc = i % chunks, c = c0 + cc * V, grp = gp / parts;
    const int y0 = grp * g.g + gp % parts * kInFlight, y1 = min(min(y0 + kInFlight, (grp + 1) * g.g), band_rows);
    uint4 acc = make_uint4(0, 0, 0, 0);
    if (c < g.cols) {
      const T* src = p + static_cast<int64_t>(r0) * g.cols + c;
      uint4 w[kInFlight];
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        const T* row = src + static_cast<int64_t>(y0 + u) * g.cols;
        if (y0 + u >= y1) {
          w[u] = make_uint4(0, 0, 0, 0);
        } else if (g.vec && c + V <= g.cols) {
          w[u] = *reinterpret_cast<const uint4*>(row);
        } else {
          T v[V];
#pragma unroll
          for (int e = 0; e < V; ++e) v[e] = c + e < g.cols ? row[e] : T{};
          memcpy(&w[u], v, sizeof w[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) or_into(acc, magnitude_bits<T>(w[u]));
    }
    const uint32_t bits = chunk_bits<T>(acc);
    if (bits) atomicOr(&marks[grp * words + cc * V / 32], bits << (cc * V % 32));
  }
  __syncthreads();
  // Pass 2: warp q counts candidate q's tiles (count_tiles), all candidates at once. The
  // candidate's shape is picked with constant indices (a runtime index copied the whole CountGeom
  // to local memory).
  const int warp = threadIdx.x / 32;
  int tr = 1, tc = 1;
  uint32_t starts = 0;
#pragma unroll
  for (int q = 0; q < kMaxCandidates; ++q) {
    if (q == warp) {
      tr = g.tr[q];
      tc = g.tc[q];
      starts = g.starts[q];
    }
  }
  if (warp < g.num) add_count(sink, warp, count_tiles(marks, g, tr, tc, starts));
  if (sink.ws == nullptr) return;
  __syncthreads();
  finish_counts(sink);
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
// words of marks, about 128 columns: a 4 MiB sample of a 4096 x 4096 bf16 operand is 128 blocks
// of 32 KiB).
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
  const int64_t strip = cl * std::max<int64_t>(1, 128 / cl);
  // At most kMaxBands bands (gridDim.y): taller bands for very tall operands.
  const int64_t bands = (rows + band - 1) / band;
  if (bands > kMaxBands) band *= (bands + kMaxBands - 1) / kMaxBands;
  return {g, band, strip};
}
bool count_fits(const CountPlan& c, int64_t rows) {
  return c.band / c.g * (c.strip / 8) <= 32768 && (rows + c.band - 1) / c.band <= kMaxBands;
}

// How many micro-tiles of shape tr x tc (clamped to the operand) the counting kernel looks at with
// sampling stride s: band y looks at strips s x + y % s; a region counts its tiles that start
// inside the operand.
int64_t looked_tiles(const CountPlan& c, int64_t stride, int64_t rows, int64_t cols, const MicroTile& tile) {
  const int64_t tr = std::min(tile.rows, rows), tc = std::min(tile.cols, cols);
  const int64_t strips = (cols + c.strip - 1) / c.strip, bands = (rows + c.band - 1) / c.band;
  const int64_t full_x = c.strip / tc, last_x = std::min(full_x, (cols - (strips - 1) * c.strip + tc - 1) / tc);
  int64_t total = 0;
  for (int64_t y = 0; y < bands; ++y) {
    const int64_t phase = y % stride;  // < stride <= strips
    const int64_t seen = (strips - 1 - phase) / stride + 1;  // strips phase, phase + s, ... below strips
    const bool has_last = (strips - 1 - phase) % stride == 0;
    const int64_t in_x = (seen - (has_last ? 1 : 0)) * full_x + (has_last ? last_x : 0);
    const int64_t in_y = std::min(c.band / tr, (rows - y * c.band + tr - 1) / tr);
    total += in_y * in_x;
  }
  return total;
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
      const int tr = static_cast<int>(std::min(tiles[q].rows, rows)), tc = static_cast<int>(std::min(tiles[q].cols, cols));
      cg.tr[q - first] = tr;
      cg.tc[q - first] = tc;
      const bool pow2 = (tc & (tc - 1)) == 0;
      cg.starts[q - first] = tc % 32 == 0 ? 1u : pow2 && tc < 32 ? 0xffffffffu / ((1u << tc) - 1u) : 0u;
    }
    const int64_t strips = (cols + c.strip - 1) / c.strip;
    const dim3 grid(static_cast<unsigned>((strips + stride - 1) / stride),
                    static_cast<unsigned>((rows + c.band - 1) / c.band));
    count_candidates_kernel<T><<<grid, kDetectThreads, static_cast<size_t>(c.band / c.g * (c.strip / 8)), native(stream)>>>(
        static_cast<const T*>(pattern.data_ptr()), cg, sink);
    PIT_CUDA_CHECK(cudaGetLastError());
  });
}

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

// A planner's counts in flight: the device workspace (zeroed once; every launch leaves it zeroed)
// and two host-mapped outputs, launch `seq` writing output seq % 2, so that the host may read one
// launch's counts while the next is running.
struct CountSlots {
  struct Launch {
    unsigned long long seq = 0;
    int64_t stride = 1;
    std::vector<int64_t> looked;     // micro-tiles looked at, per candidate (the host works them out)
    std::optional<TileCounts> done;  // counts back (or taken at once on the exact path)
  };
  int device = -1;
  CountWs* ws = nullptr;
  CountOut* out = nullptr;      // host address of the two outputs
  CountOut* out_dev = nullptr;  // their device address
  unsigned long long seq = 0;   // of the latest launch
  Launch launch[2];

  explicit CountSlots(int dev) : device(dev) {
    pit::cuda::DeviceGuard guard(device);
    PIT_CUDA_CHECK(cudaMalloc(&ws, sizeof(CountWs)));
    PIT_CUDA_CHECK(cudaMemset(ws, 0, sizeof(CountWs)));
    PIT_CUDA_CHECK(cudaHostAlloc(&out, 2 * sizeof(CountOut), cudaHostAllocMapped));
    std::memset(out, 0, 2 * sizeof(CountOut));
    PIT_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&out_dev), out, 0));
    PIT_CUDA_CHECK(cudaDeviceSynchronize());  // the workspace is zero before the first kernel
  }
  ~CountSlots() {  // on its device; at exit the runtime may be gone already: errors ignored
    int current = -1;
    const bool switched = cudaGetDevice(&current) == cudaSuccess && current != device &&
                          cudaSetDevice(device) == cudaSuccess;
    (void)cudaFree(ws);
    (void)cudaFreeHost(out);
    if (switched) (void)cudaSetDevice(current);
  }
  CountSlots(const CountSlots&) = delete;
  CountSlots& operator=(const CountSlots&) = delete;
};

std::shared_ptr<CountSlots> make_count_slots(int device) { return std::make_shared<CountSlots>(device); }

void launch_planner_counts(CountSlots& slots, const Tensor& pattern, const std::vector<MicroTile>& tiles,
                           int64_t sample_bytes, StreamRef stream) {
  PIT_CHECK(pattern.device().index == slots.device, "launch_planner_counts: the operand is on ",
            pattern.device().str(), " but the planner's counts were made for cuda:", slots.device,
            " (use one PlanSite per device)");
  pit::cuda::DeviceGuard guard(slots.device);
  const unsigned long long seq = ++slots.seq;
  CountSlots::Launch& l = slots.launch[seq % 2];
  l = {};
  l.seq = seq;
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  const size_t n = tiles.size();
  TileCounts r;
  r.nonzero.assign(n, 0);
  r.looked.assign(n, 0);
  if (n == 0 || rows == 0 || cols == 0) {
    l.done = r;
    return;
  }
  const int64_t elem = static_cast<int64_t>(dtype_size(pattern.dtype()));
  const CountPlan c = count_plan(tiles, 0, n, rows, cols, elem);
  if (n > static_cast<size_t>(kMaxCandidates) || !count_fits(c, rows)) {
    // Not one launch: the exact counts through the copy path, taken now.
    r.nonzero = read_back_i64(count_micro_tiles(pattern, tiles, stream), stream);
    for (size_t q = 0; q < n; ++q) r.looked[q] = tiles[q].count_in(rows, cols);
    l.done = r;
    return;
  }
  // Sampling stride: about sample_bytes read, 1 / 32 of the regions at least, 64 regions at least.
  const int64_t strips = (cols + c.strip - 1) / c.strip, bands = (rows + c.band - 1) / c.band;
  int64_t stride = 1;
  if (sample_bytes > 0) {
    stride = std::clamp<int64_t>(pattern.nbytes() / sample_bytes, 1, 32);
    stride = std::min(stride, std::max<int64_t>(1, strips * bands / 64));
    stride = std::min(stride, strips);  // every band looks at one strip at least
  }
  l.stride = stride;
  for (const MicroTile& t : tiles) l.looked.push_back(looked_tiles(c, stride, rows, cols, t));
  launch_count(pattern, tiles, 0, n, c, stride, CountSink{nullptr, slots.ws, slots.out_dev + seq % 2, seq}, stream);
}

std::optional<TileCounts> planner_counts_back(CountSlots& slots, bool wait, StreamRef stream) {
  const unsigned long long seq = wait ? slots.seq : slots.seq - 1;
  if (seq == 0) return std::nullopt;
  CountSlots::Launch& l = slots.launch[seq % 2];
  if (l.done || l.seq != seq) return l.done;
  const CountOut* o = slots.out + seq % 2;
  const auto published = [&] {
    return std::atomic_ref<const unsigned long long>(o->seq).load(std::memory_order_acquire) == seq;
  };
  if (!wait && !published()) return std::nullopt;
  // Spin on the sequence number; now and then ask the stream whether the kernel failed (it then
  // never publishes).
  for (uint64_t spins = 1; !published(); ++spins) {
    if (spins % 1024 != 0) continue;
    const cudaError_t e = cudaStreamQuery(native(stream));
    if (e == cudaErrorNotReady) continue;
    PIT_CUDA_CHECK(e);
    PIT_CHECK(published(), "count_for_planner: the counting kernel finished without publishing its counts");
  }
  TileCounts r;
  r.stride = l.stride;
  r.looked = l.looked;
  for (size_t q = 0; q < l.looked.size(); ++q) r.nonzero.push_back(static_cast<int64_t>(o->counts[q]));
  pit::cuda::check_device_errors(slots.device);
  l.done = r;
  return r;
}

TileCounts count_for_planner(const Tensor& pattern, const std::vector<MicroTile>& tiles, int64_t sample_bytes,
                             StreamRef stream) {
  const int device = pattern.device().index;
  static std::mutex mu;
  static auto* per_device = new std::map<int, std::shared_ptr<CountSlots>>;  // kept to the end
  const std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<CountSlots>& slots = (*per_device)[device];
  if (!slots) slots = make_count_slots(device);
  launch_planner_counts(*slots, pattern, tiles, sample_bytes, stream);
  return *planner_counts_back(*slots, true, stream);
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
