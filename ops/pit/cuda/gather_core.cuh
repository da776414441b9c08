#pragma once
// What the M-gather kernels share (gather_gemm.cu: the wgmma and mma.sync engines with split K;
// gather_ws.cu: the persistent, warp-specialised engine): their parameters, the tile prefix over
// the segments and where a work tile lies.
//
// Work tiles: the row tiles of every segment (ceil(count_s / BM) each, in segment order) times
// the n_tiles column tiles, numbered row tile major, so that the blocks running at one time share
// a segment's rows of A and its B.
#include <cstdint>

#include "core/device.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda {

template <typename T>
struct GatherParams {
  const T* a;
  const T* b;
  T* c;
  const int32_t* rows;
  const int32_t* offsets;
  const float* weights;  // null unless use_weights
  int64_t k, n;
  int64_t b_seg_stride;     // elements between B_s and B_{s+1}; 0 when B is shared
  int64_t seg_cols;         // K-chunk width w, 0 for expert segments
  int64_t bias_seg_stride;  // N for a per-segment bias [S, N], else 0
  int segments;
  int n_tiles;
  bool a_gathered, c_scattered;
  bool a_fast, b_fast;  // every SRead chunk of A / B 16-byte aligned (dev::chunks_aligned)
  dev::EpiArgs epi;
  // Split K (null: never; the wgmma and mma.sync engines only): where the tiles are fewer than the
  // grid, each tile's k-steps are split over up to gridDim.x / tiles blocks, which write f32
  // partial tiles [tile][split][BM x BN] to split_ws; the last to finish (split_count[tile], zero
  // at launch, reset by it) adds them in split order and runs the epilogue.
  float* split_ws;
  int* split_count;
};

// The persistent, warp-specialised M-gather (gather_ws.cu), f16/bf16: every SRead chunk of A and
// B must be 16-byte aligned (p.a_fast and p.b_fast); no split K. capacity: the index's entries.
// Throws (allow_smem, launch.cuh) if the segments' tile prefix does not fit in shared memory
// beside the stage ring (it does up to kWsMaxSegments on an sm_90 GPU: 227 KB a block).
inline constexpr int kWsMaxSegments = 4096;
// kPp: the ping-pong variant (pp_core.cuh). kTma: stages loaded by TMA (expert segments only;
// a_rows: the rows of A).
template <typename T, bool kBTrans, bool kPp = false, bool kTma = false>
void launch_gather_ws(const GatherParams<T>& p, int64_t capacity, int64_t a_rows, StreamRef stream);

// The wide M-gather (gather_wide.cu): 128 x 256 tiles, the warpgroups cooperating on each, B by
// TMA and a compact A too (expert segments or one shared B, not K-chunks). gather_wide_takes: the
// cases it takes (f16/bf16 rows 16-byte aligned, 32-bit TMA coordinates, at most
// kWideMaxSegments segments: their tile prefix shares its shared memory with a 192 KB ring).
inline constexpr int kWideMaxSegments = 2048;
template <typename T>
bool gather_wide_takes(const GatherParams<T>& p, int64_t a_rows);
// Whether its tiles over `capacity` entries (a lower bound: capacity / 128 row tiles) and N columns
// fill the SMs: it has no split K.
bool gather_wide_fills(int64_t capacity, int64_t n);
template <typename T, bool kBTrans>
void launch_gather_wide(const GatherParams<T>& p, int64_t capacity, int64_t a_rows, StreamRef stream);

// B's TMA map for the engines that load it so: the experts' matrices as a rank-3 stack (one
// matrix when B is shared), [N, K] (b_trans: boxes of box_rows rows of n x 64 of k) or [K, N]
// (boxes of box_rows rows of k x 64 of n).
template <typename T>
CUtensorMap expert_b_map(const GatherParams<T>& p, bool b_trans, int box_rows) {
  constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
  const int64_t mats = p.b_seg_stride != 0 ? p.segments : 1;
  const int64_t mat_stride = p.b_seg_stride != 0 ? p.b_seg_stride : p.k * p.n;  // one matrix: any
  if (b_trans) return pit::cuda::tensor_map_3d(kType, p.b, mats, p.n, p.k, p.k, mat_stride, box_rows, "gather_gemm's B");
  return pit::cuda::tensor_map_3d(kType, p.b, mats, p.k, p.n, p.n, mat_stride, box_rows, "gather_gemm's B");
}

namespace dev {

// Prefix over the segments of their items into out[0 .. segments]: out[s] is segment s's first
// item, items(count_s) of them a segment. Warp 0 scans, 32 segments at a time; the caller
// synchronises after.
template <typename Items>
__device__ __forceinline__ void segment_prefix(const int32_t* offsets, int segments, int32_t* out, Items items) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane >= 32) return;
  int carry = 0;
  if (lane == 0) out[0] = 0;
  for (int base = 0; base < segments; base += 32) {
    const int s = base + lane;
    int v = s < segments ? items(offsets[s + 1] - offsets[s]) : 0;
#pragma unroll
    for (int off = 1; off < 32; off *= 2) {
      const int u = __shfl_up_sync(pit::cuda::kFullMask, v, off);
      if (lane >= off) v += u;
    }
    if (s < segments) out[s + 1] = carry + v;
    carry += __shfl_sync(pit::cuda::kFullMask, v, 31);
  }
}

// Tile prefix: tiles[s] is segment s's first row tile (ceil(count_s / BM) a segment).
template <int BM>
__device__ __forceinline__ void tile_prefix(const int32_t* offsets, int segments, int32_t* tiles) {
  segment_prefix(offsets, segments, tiles, [](int count) { return (count + BM - 1) / BM; });
}

// Work tile `tile`: its segment, first entry, entries (at most BM) and column tile.
struct TileAt {
  int s, e0, count, nt;
  bool shared = false;  // (cluster_unit) the two blocks' tiles share B
};

// The last segment whose first item (row tile, or cluster unit) is <= m, over a prefix of items.
__host__ __device__ __forceinline__ int segment_at(const int32_t* prefix, int segments, int m) {
  int lo = 0, hi = segments - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (prefix[mid] <= m) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

template <int BM>
__device__ __forceinline__ TileAt locate(const int32_t* tiles, const int32_t* offsets, int segments, int n_tiles,
                                         int tile) {
  const int mt = tile / n_tiles;
  const int lo = segment_at(tiles, segments, mt);
  const int e0 = offsets[lo] + (mt - tiles[lo]) * BM;
  return {lo, e0, min(BM, offsets[lo + 1] - e0), tile % n_tiles};
}

// The work units of the wide engine's clusters of two blocks (gather_wide.cu), ranks 0 and 1.
// Segment s's T = ceil(count_s / BM) row tiles make floor(T / 2) pairs; pair i at each of the
// n_tiles column tiles is a shared unit (rank r takes row tile 2i + r; both need the same B). An
// odd last row tile makes ceil(n_tiles / 2) split units (both ranks on that row tile, rank r at
// column tile 2j + r; each loads its own B), so no block idles beside a pair's missing second tile.
// Units are numbered segment by segment, pairs (column tile minor) before splits. (Host and
// device: tests/ops/pit/cuda/wide_units_test.cu checks the walk covers every tile once.)
template <int BM>
__host__ __device__ __forceinline__ int cluster_units(int count, int n_tiles) {
  const int tiles = (count + BM - 1) / BM;
  return (tiles / 2) * n_tiles + (tiles % 2) * ((n_tiles + 1) / 2);
}

// Block `rank`'s tile of unit `unit`, over the prefix of cluster_units (segment_prefix). Where a
// split unit's column tile 2j + 1 is past the last (n_tiles odd), rank 1's tile is empty: count <= 0,
// e0 one row tile past the segment's last, and column tile 2j (its loads stay in bounds).
template <int BM>
__host__ __device__ __forceinline__ TileAt cluster_unit(const int32_t* units, const int32_t* offsets,
                                                        int segments, int n_tiles, int unit, int rank) {
  const int s = segment_at(units, segments, unit);
  const int local = unit - units[s], end = offsets[s + 1];
  const int pairs = (end - offsets[s] + BM - 1) / BM / 2;
  if (local < pairs * n_tiles) {
    const int e0 = offsets[s] + (2 * (local / n_tiles) + rank) * BM;
    return {s, e0, end - e0 < BM ? end - e0 : BM, local % n_tiles, true};
  }
  const int j = local - pairs * n_tiles, past = 2 * j + rank >= n_tiles;
  const int e0 = offsets[s] + (2 * pairs + past) * BM;
  return {s, e0, end - e0 < BM ? end - e0 : BM, 2 * j + rank - past, false};
}

}  // namespace dev
}  // namespace pit::sparse::cuda
