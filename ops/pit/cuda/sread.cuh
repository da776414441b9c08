#pragma once
// SRead: fill a dense shared-memory tile from the places an index names. The tile is a
// [kRows][kCols] array (row stride kLd elements) whose row r, columns [c, c + V) (V = 16 bytes
// of T) come from a source that the caller computes from the index: a pointer and how many
// valid elements start there (0..V). Rows of the tile are whole 16-byte runs of global memory
// (a gathered row of A, a row of B named by a k list, a condensed micro-tile, ...), so every
// access is one 16-byte cp.async when the source is 16-byte aligned; the tail of a ragged edge is
// zero-filled by the copy itself (src-size < 16). Sources that are not 16-byte aligned (odd
// leading dimensions) fall back to element loads and shared stores, correct but slower.
//
// All threads of the block call sread_tile with the same arguments; each handles the chunks
// i = tid, tid + kThreads, ... (consecutive threads take consecutive 16-byte chunks of a row,
// so a warp reads whole rows: coalesced). Completion: cp_async_commit / cp_async_wait, then a
// barrier, as for any cp.async pipeline stage; the element fallback is complete at return.
#include <cstdint>

#include "ops/pit/cuda/mma.cuh"

namespace pit::sparse::cuda::dev {

template <typename T>
inline constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk

// Where one chunk of the tile comes from: `n` valid elements from `p` (n <= 0: all zero), element
// e at p[e * stride]. stride != 1 (a column of a row-major matrix) takes the element path: correct
// for layouts whose contiguous axis is not the tile row's, slow.
template <typename T>
struct Src {
  const T* p;
  int n;
  int64_t stride = 1;
};

// Valid elements of a chunk: `avail` elements remain in the source row (may be <= 0), at most
// `cap` are wanted.
__device__ __forceinline__ int valid_n(int64_t avail, int cap) {
  return avail <= 0 ? 0 : (avail < cap ? static_cast<int>(avail) : cap);
}

// The element path of a chunk: kept out of line, so that the kernels' main loops stay small.
template <typename T>
__device__ __noinline__ void sread_elems(T* dst, Src<T> s) {
#pragma unroll
  for (int e = 0; e < kVec<T>; ++e) dst[e] = e < s.n ? s.p[e * s.stride] : T{};
}

// Copies one chunk (kVec<T> elements) into dst (16-byte aligned shared memory).
template <typename T>
__device__ __forceinline__ void sread_chunk(T* dst, Src<T> s) {
  constexpr int V = kVec<T>;
  if (s.n <= 0) {
    *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
  } else if (s.stride == 1 && (reinterpret_cast<uintptr_t>(s.p) & 15) == 0) {
    cp_async_16(dst, s.p, (s.n >= V ? V : s.n) * static_cast<int>(sizeof(T)));
  } else {
    sread_elems<T>(dst, s);
  }
}

// The walk of sread_tile without copying: fn(r, c, pointer to the chunk) for this thread's
// chunks, e.g. to scale the rows it copied once its copies are complete (cp_async_wait), before
// the barrier.
template <typename T, int kRows, int kCols, int kLd, int kThreads, class Fn>
__device__ __forceinline__ void for_own_chunks(T* tile, int tid, Fn&& fn) {
  constexpr int V = kVec<T>;
  static_assert(kCols % V == 0, "whole 16-byte chunks per tile row");
  constexpr int kPerRow = kCols / V;
  constexpr int kChunks = kRows * kPerRow;
#pragma unroll
  for (int i0 = 0; i0 < kChunks; i0 += kThreads) {
    const int i = i0 + tid;
    if (kChunks % kThreads == 0 || i < kChunks) {
      const int r = i / kPerRow, c = (i % kPerRow) * V;
      fn(r, c, tile + r * kLd + c);
    }
  }
}

// Fills the [kRows][kCols] tile at `tile` (row stride kLd): chunk (r, c) from src(r, c), where
// c is the column (a multiple of kVec<T>) within the tile.
template <typename T, int kRows, int kCols, int kLd, int kThreads, class SrcFn>
__device__ __forceinline__ void sread_tile(T* tile, int tid, SrcFn&& src) {
  for_own_chunks<T, kRows, kCols, kLd, kThreads>(
      tile, tid, [&](int r, int c, T* dst) { sread_chunk<T>(dst, src(r, c)); });
}

// Where element (r, c) of a shared-memory tile lives, in elements from the tile's start.
// Padded rows (the mma.sync tiles): row stride kLd.
template <int kLd>
struct PaddedLayout {
  static __device__ __forceinline__ int at(int r, int c) { return r * kLd + c; }
};
// The 128-byte-swizzled layouts of wgmma (ops/cuda/wgmma_ptx.cuh), 16-bit elements, c a multiple
// of 8 (one 16-byte chunk). K-major: tile [rows][64] (a row is one m or n, its 64 k values); the
// chunk c / 8 of row r sits at chunk (c / 8) ^ (r % 8).
struct Sw128KMajor {
  static __device__ __forceinline__ int at(int r, int c) { return r * 64 + ((((c >> 3) ^ r) & 7) << 3); }
};
// MN-major: tile [kRows k][cols] (a row is one k, contiguous along m or n) in atoms of 8 k rows x
// 64 columns; the kRows / 8 atoms of a 64-column strip follow each other.
template <int kRows>
struct Sw128MNMajor {
  static __device__ __forceinline__ int at(int r, int c) {
    return (c >> 6) * (kRows * 64) + (r >> 3) * 512 + (r & 7) * 64 + ((((c >> 3) ^ r) & 7) << 3);
  }
};

// SRead cursors: the fills of sread_tile with this thread's part of the walk (which chunk of which
// tile row) and its source pointers worked out once per output tile rather than at every k-stage,
// so that a stage costs a pointer offset, a bound check and one cp.async per chunk. (The per-stage
// src(r, c) walk spent most of the PIT GEMMs' issue slots on address arithmetic: under ncu on an
// H200 the integer pipe was the busiest one, at 1.7 instructions per cycle.)
//
// fast: every source chunk is 16-byte aligned (the launcher decides from base pointers and
// leading dimensions), so each chunk is one cp.async; otherwise the element path of sread_chunk.
// A chunk with nothing to read is zero-filled by a 0-byte cp.async from `safe`, a valid address.
// (Under ncu on an H200 the 128x1 K-condense kernel at 90 % sparsity executed 31.6 M warp
// instructions, 1.4 % of them cp.async, with the branch on `fast` and the byte address taken per
// chunk; 27.1 M with fill below and swrite_staged's column runs together.)
template <typename T, int kRows, int kCols, int kThreads>
struct ChunkWalk {
  static constexpr int V = kVec<T>;
  static_assert(kCols % V == 0, "whole 16-byte chunks per tile row");
  static constexpr int kPerRow = kCols / V, kChunks = kRows * kPerRow;
  static constexpr int kPer = (kChunks + kThreads - 1) / kThreads;  // chunks per thread
  static __device__ __forceinline__ bool owns(int t, int tid) {
    return kChunks % kThreads == 0 || tid + t * kThreads < kChunks;
  }
  // Unsigned, so that the compiler sees chunks t of one thread share their column when kThreads is
  // a multiple of kPerRow.
  static __device__ __forceinline__ int row(int t, int tid) {
    return static_cast<int>((static_cast<unsigned>(tid) + t * kThreads) / kPerRow);
  }
  static __device__ __forceinline__ int col(int t, int tid) {
    return static_cast<int>((static_cast<unsigned>(tid) + t * kThreads) % kPerRow) * V;
  }
};

// Per chunk of this thread: a source pointer and its valid elements (0..V), from src(r, c) once.
template <typename T, int kRows, int kCols, int kThreads>
struct ChunkSources {
  using W = ChunkWalk<T, kRows, kCols, kThreads>;
  const T* src[W::kPer];
  int n[W::kPer];
  template <class SrcFn>
  __device__ __forceinline__ void init(int tid, SrcFn&& f) {
#pragma unroll
    for (int t = 0; t < W::kPer; ++t) {
      const Src<T> s = W::owns(t, tid) ? f(W::row(t, tid), W::col(t, tid)) : Src<T>{nullptr, 0};
      src[t] = s.p;
      n[t] = s.n <= 0 ? 0 : (s.n < W::V ? s.n : W::V);
    }
  }
  // Fills this thread's chunks of the tile at `tile` (layout Layout): chunk(t, r, c) gives chunk
  // t's source and valid elements for the stage (0: zeros). The branch on `fast` is taken once a
  // stage, not per chunk: a fast chunk costs its source, its byte count and one cp.async into the
  // tile's shared-memory base converted once.
  template <class Layout, class ChunkFn>
  __device__ __forceinline__ void fill(T* tile, int tid, bool fast, const T* safe, ChunkFn&& chunk) const {
    const auto each = [&]<bool kFast>() {
      const uint32_t base = smem_u32(tile);
#pragma unroll
      for (int t = 0; t < W::kPer; ++t) {
        if (!W::owns(t, tid)) continue;
        const int r = W::row(t, tid), c = W::col(t, tid);
        const Src<T> s = chunk(t, r, c);
        if constexpr (kFast) {
          cp_async_16(base + static_cast<uint32_t>(Layout::at(r, c) * sizeof(T)), s.n > 0 ? s.p : safe,
                      s.n * static_cast<int>(sizeof(T)));
        } else {
          sread_chunk<T>(tile + Layout::at(r, c), s);
        }
      }
    };
    if (fast) each.template operator()<true>();
    else each.template operator()<false>();
  }
};

// Sources that all move by one offset per stage (rows of A walked along k, rows of B walked down
// k, condensed values): init takes src(r, c), the stage-0 source of chunk (r, c) and how many of its
// elements exist apart from the k bound; load fills the stage whose sources lie `offset` elements
// on, with k_left elements of k left from the stage's first (along tile columns when kKCols, else
// along tile rows).
template <typename T, int kRows, int kCols, class Layout, int kThreads, bool kKCols>
struct StridedReader : ChunkSources<T, kRows, kCols, kThreads> {
  using ChunkSources<T, kRows, kCols, kThreads>::src;
  using ChunkSources<T, kRows, kCols, kThreads>::n;
  __device__ __forceinline__ void load(T* tile, int tid, int64_t offset, int k_left, bool fast,
                                       const T* safe) const {
    this->template fill<Layout>(tile, tid, fast, safe, [&](int t, int r, int c) {
      const int avail = k_left - (kKCols ? c : r);
      return Src<T>{src[t] + offset, avail <= 0 ? 0 : (kKCols && avail < n[t] ? avail : n[t])};
    });
  }
};

// Tile rows gathered anew at every stage (rows of B named by a k list): init takes src(r, c), the
// column part of chunk (r, c)'s source and its valid elements; load takes row_off(r), the element
// offset of tile row r's source row for this stage (negative: a zero row).
template <typename T, int kRows, int kCols, class Layout, int kThreads>
struct RowGatherReader : ChunkSources<T, kRows, kCols, kThreads> {
  using ChunkSources<T, kRows, kCols, kThreads>::src;
  using ChunkSources<T, kRows, kCols, kThreads>::n;
  template <class RowOff>
  __device__ __forceinline__ void load(T* tile, int tid, RowOff&& row_off, bool fast, const T* safe) const {
    this->template fill<Layout>(tile, tid, fast, safe, [&](int t, int r, int) {
      const int64_t off = row_off(r);
      return Src<T>{src[t] + (off < 0 ? 0 : off), off < 0 ? 0 : n[t]};
    });
  }
  // The same with the offsets given per chunk of this thread (off[t]: chunk t's source row, as the
  // caller worked it out ahead, e.g. from row ids it loaded a stage early).
  __device__ __forceinline__ void load_chunks(T* tile, int tid, const int64_t (&off)[ChunkWalk<T, kRows, kCols, kThreads>::kPer],
                                              bool fast, const T* safe) const {
    this->template fill<Layout>(tile, tid, fast, safe, [&](int t, int, int) {
      return Src<T>{src[t] + (off[t] < 0 ? 0 : off[t]), off[t] < 0 ? 0 : n[t]};
    });
  }
};

// Whether a 16-byte cp.async can read every chunk: base 16-byte aligned and every row start too
// (leading dimension a multiple of 16 bytes). Host side.
template <typename T>
inline bool chunks_aligned(const T* base, int64_t ld) {
  return (reinterpret_cast<uintptr_t>(base) % 16) == 0 && (ld * static_cast<int64_t>(sizeof(T))) % 16 == 0;
}

}  // namespace pit::sparse::cuda::dev
