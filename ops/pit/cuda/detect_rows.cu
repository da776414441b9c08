// CUDA row-set detection (M-gather): rows of a pattern per segment, and MoE routing to
// per-expert token lists. Both are one kernel over tiles (segment, row group) in segment-major
// order: each CTA flags its rows (or counts its tokens' assignments), compacts them with a block
// scan and takes its global offset from the chained scan (scan.cuh): one read, no host sync.
#include <algorithm>

#include "ops/pit/cuda/detect.h"
#include "ops/pit/cuda/detect_common.cuh"
#include "ops/pit/cuda/scan.cuh"

namespace pit::sparse::cuda {
namespace {

// Rows per CTA: 8 warps x rows_per_warp (1 to 8); a warp streams one row's segment with 16-byte
// loads. Long segments (whole rows) aim at about kTargetCtas CTAs: enough loads in flight to
// approach the copy bandwidth, and a short chain for the scan. Measured on an H200: 4096 rows of
// 4096 at 8 rows per warp (64 CTAs) took 3.6x one read, at 1 (512 CTAs) 2.9x; 16384 rows of 1024
// at 8 (256 CTAs) 1.6x, at 1 (2048 CTAs) 1.8x, at 4 (512 CTAs, the rule below) 1.55x. Short
// segments (K-chunks of 64) keep 8 rows per warp, so that a CTA still reads a useful amount.
constexpr int kMaxRowGroup = 64;
constexpr int kWarps = kDetectThreads / 32;
constexpr int64_t kTargetCtas = 512;
// Tokens per CTA in the routing kernel: one per thread.
constexpr int kTokenGroup = kDetectThreads;

struct RowGeom {
  int rows, pcols, width, nseg, groups, tiles;
  int rows_per_warp;  // 1 to 8: the CTA covers kWarps * rows_per_warp rows
  bool row_mask;
};

template <typename T, bool kVec>
__global__ void __launch_bounds__(kDetectThreads)
    detect_rows_kernel(const T* __restrict__ p, RowGeom g, unsigned long long* state, int* offsets, int* out_rows) {
  __shared__ int flag[kMaxRowGroup];
  __shared__ int scan_smem[kScanWarp + 1];
  __shared__ int s_base;
  // The tile is the block's index: no ticket's round trip before the loads (blocks start in index
  // order, which the look-back relies on, as in detect_tiles.cu).
  const int group = kWarps * g.rows_per_warp;
  const int tile = static_cast<int>(blockIdx.x), s = tile / g.groups, r0 = (tile % g.groups) * group;
  const int lane = threadIdx.x % kScanWarp, warp = threadIdx.x / kScanWarp;
  if (g.row_mask) {
    if (static_cast<int>(threadIdx.x) < group) {
      const int r = r0 + threadIdx.x;
      flag[threadIdx.x] = r < g.rows && nz(p[r]);
    }
  } else if (kVec && g.width <= kScanWarp / 2 * (16 / static_cast<int>(sizeof(T)))) {
    // Short segments (a K-chunk of 64 bf16 is 8 packs): `per_row` lanes a row, several rows a
    // load, and every row of the warp loaded before any is tested (one row at a time with 8 of
    // 32 lanes loading took 8 serial round trips a warp: 1x64 detection was 9x one read).
    constexpr int V = 16 / sizeof(T), kMaxLoads = kMaxRowGroup / kWarps;
    const int c0 = s * g.width, c1 = min(g.pcols, c0 + g.width);
    int per_row = 1;
    while (per_row * V < g.width) per_row *= 2;
    const int rows_at_once = kScanWarp / per_row, sub = lane / per_row, at = lane % per_row;
    pit::cuda::Pack<T> v[kMaxLoads];
    unsigned in = 0;  // bit i: load i is inside (a mask, not a bool array: 8 would not fit the predicates)
#pragma unroll
    for (int i = 0; i < kMaxLoads; ++i) {
      const int q = i * rows_at_once + sub, r = r0 + warp * g.rows_per_warp + q, c = c0 + at * V;
      if (q < g.rows_per_warp && r < g.rows && c < c1) {
        in |= 1u << i;
        v[i] = *reinterpret_cast<const pit::cuda::Pack<T>*>(p + static_cast<int64_t>(r) * g.pcols + c);
      }
    }
#pragma unroll
    for (int i = 0; i < kMaxLoads; ++i) {
      if (i * rows_at_once >= g.rows_per_warp) break;  // the same in every lane
      bool any = false;
      if (in >> i & 1u)
#pragma unroll
        for (int e = 0; e < V; ++e) any |= nz(v[i].v[e]);
      const unsigned mine = (__ballot_sync(0xffffffffu, any) >> (sub * per_row)) &
                            (per_row == kScanWarp ? ~0u : (1u << per_row) - 1u);
      const int q = i * rows_at_once + sub;
      if (at == 0 && q < g.rows_per_warp) flag[warp * g.rows_per_warp + q] = mine != 0;
    }
  } else {
    const int c0 = s * g.width, c1 = min(g.pcols, c0 + g.width);
    for (int q = 0; q < g.rows_per_warp; ++q) {
      const int y = warp * g.rows_per_warp + q, r = r0 + y;
      bool any = false;
      if (r < g.rows) {
        const T* row = p + static_cast<int64_t>(r) * g.pcols;
        if constexpr (kVec) {
          constexpr int V = 16 / sizeof(T);
          // No short-circuit: the loads of several iterations stay in flight together.
#pragma unroll 4
          for (int c = c0 + lane * V; c < c1; c += kScanWarp * V) {
            const pit::cuda::Pack<T> v = *reinterpret_cast<const pit::cuda::Pack<T>*>(row + c);
#pragma unroll
            for (int e = 0; e < V; ++e) any |= nz(v.v[e]);
          }
        } else {
#pragma unroll 4
          for (int c = c0 + lane; c < c1; c += kScanWarp) any |= nz(row[c]);
        }
      }
      any = __any_sync(0xffffffffu, any);
      if (lane == 0) flag[y] = any;
    }
  }
  __syncthreads();
  const int f = static_cast<int>(threadIdx.x) < group ? flag[threadIdx.x] : 0;
  int count;
  const int ex = block_exclusive_scan(f, scan_smem, &count);
  if (threadIdx.x < kScanWarp) {  // warp 0 looks back
    const int base = chained_prefix(state, tile, count);
    if (threadIdx.x == 0) {
      s_base = base;
      if (r0 == 0) offsets[s] = base;
      if (tile == g.tiles - 1) offsets[g.nseg] = base + count;
    }
  }
  __syncthreads();
  if (f) out_rows[s_base + ex] = r0 + static_cast<int>(threadIdx.x);
}

__global__ void __launch_bounds__(kDetectThreads)
    routing_kernel(const int* __restrict__ ids, const float* __restrict__ gates, int t_count, int k, int experts,
                   int groups, int tiles, unsigned long long* state, int* offsets, int* rows, float* weights) {
  __shared__ int scan_smem[kScanWarp + 1];
  __shared__ int s_tile, s_base;
  if (threadIdx.x == 0) s_tile = take_ticket(state);
  __syncthreads();
  const int tile = s_tile, e = tile / groups, t0 = (tile % groups) * kTokenGroup;
  const int t = t0 + static_cast<int>(threadIdx.x);
  int n = 0;
  if (t < t_count)
    for (int j = 0; j < k; ++j) n += ids[static_cast<int64_t>(t) * k + j] == e;
  int count;
  const int ex = block_exclusive_scan(n, scan_smem, &count);
  if (threadIdx.x < kScanWarp) {  // warp 0 looks back
    const int base = chained_prefix(state, tile, count);
    if (threadIdx.x == 0) {
      s_base = base;
      if (t0 == 0) offsets[e] = base;
      if (tile == tiles - 1) offsets[experts] = base + count;
    }
  }
  __syncthreads();
  if (n == 0) return;
  int q = s_base + ex;
  for (int j = 0; j < k; ++j) {
    if (ids[static_cast<int64_t>(t) * k + j] != e) continue;
    rows[q] = t;
    if (weights) weights[q] = gates[static_cast<int64_t>(t) * k + j];
    ++q;
  }
}

}  // namespace

RowSetIndex detect_rows(const Tensor& pattern, int64_t cols, int64_t w, StreamRef stream) {
  pit::cuda::DeviceGuard guard(pattern.device().index);
  const int64_t rows = pattern.size(0), pcols = pattern.size(1);
  const bool row_mask = pcols == 1 && cols != 1;
  const int64_t nseg = w > 0 ? std::max<int64_t>(1, (cols + w - 1) / w) : 1;
  RowSetIndex idx;
  idx.offsets = Tensor::empty({nseg + 1}, DType::i32, pattern.device());
  idx.rows = Tensor::empty({rows * nseg}, DType::i32, pattern.device());
  idx.num_rows = rows;
  idx.num_segments = nseg;
  idx.segment_cols = w;
  const int64_t width = w > 0 ? w : std::max<int64_t>(pcols, 1);
  // Segments of at least 512 elements (16 loads of 16 bytes and more): rows per warp for about
  // kTargetCtas CTAs.
  const int per_warp = row_mask || width < 512
                           ? kMaxRowGroup / kWarps
                           : static_cast<int>(std::clamp<int64_t>((rows + kWarps * kTargetCtas - 1) / (kWarps * kTargetCtas),
                                                                  1, kMaxRowGroup / kWarps));
  const int64_t group = int64_t{kWarps} * per_warp;
  RowGeom g{static_cast<int>(rows), static_cast<int>(pcols), static_cast<int>(width), static_cast<int>(nseg),
            static_cast<int>((rows + group - 1) / group), 0, per_warp, row_mask};
  g.tiles = g.nseg * g.groups;
  if (g.tiles == 0) {
    fill_bytes(idx.offsets, 0, stream);
    return idx;
  }
  const Tensor state = chain_state(g.tiles, pattern.device(), stream);
  dispatch(pattern.dtype(), "detect_rows (CUDA)", [&]<typename T>() {
    const int64_t elem = sizeof(T);
    const bool vec = !row_mask && elem <= 8 && (pcols * elem) % 16 == 0 && (g.width * elem) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(pattern.data_ptr()) % 16 == 0;
    const T* p = static_cast<const T*>(pattern.data_ptr());
    if (vec)
      detect_rows_kernel<T, true><<<g.tiles, kDetectThreads, 0, native(stream)>>>(
          p, g, state_ptr(state), idx.offsets.data<int32_t>(), idx.rows.data<int32_t>());
    else
      detect_rows_kernel<T, false><<<g.tiles, kDetectThreads, 0, native(stream)>>>(
          p, g, state_ptr(state), idx.offsets.data<int32_t>(), idx.rows.data<int32_t>());
  });
  PIT_CUDA_CHECK(cudaGetLastError());
  return idx;
}

RowSetIndex rows_from_routing(const Tensor& expert_of, int64_t num_experts, const Tensor& gates, StreamRef stream) {
  pit::cuda::DeviceGuard guard(expert_of.device().index);
  const int64_t t_count = expert_of.size(0), k = expert_of.size(1);
  RowSetIndex idx;
  idx.offsets = Tensor::empty({num_experts + 1}, DType::i32, expert_of.device());
  idx.rows = Tensor::empty({t_count * k}, DType::i32, expert_of.device());
  if (gates.defined()) idx.weights = Tensor::empty({t_count * k}, DType::f32, expert_of.device());
  idx.num_rows = t_count;
  idx.num_segments = num_experts;
  const int64_t groups = (t_count + kTokenGroup - 1) / kTokenGroup, tiles = groups * num_experts;
  if (tiles == 0) {
    fill_bytes(idx.offsets, 0, stream);
    return idx;
  }
  const Tensor state = chain_state(tiles, expert_of.device(), stream);
  routing_kernel<<<static_cast<unsigned>(tiles), kDetectThreads, 0, native(stream)>>>(
      expert_of.data<int32_t>(), gates.defined() ? gates.data<float>() : nullptr, static_cast<int>(t_count),
      static_cast<int>(k), static_cast<int>(num_experts), static_cast<int>(groups), static_cast<int>(tiles),
      state_ptr(state), idx.offsets.data<int32_t>(), idx.rows.data<int32_t>(),
      gates.defined() ? idx.weights.data<float>() : nullptr);
  PIT_CUDA_CHECK(cudaGetLastError());
  return idx;
}

}  // namespace pit::sparse::cuda
