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

// Copies one chunk (kVec<T> elements) into dst (16-byte aligned shared memory).
template <typename T>
__device__ __forceinline__ void sread_chunk(T* dst, Src<T> s) {
  constexpr int V = kVec<T>;
  if (s.n <= 0) {
    *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
  } else if (s.stride == 1 && (reinterpret_cast<uintptr_t>(s.p) & 15) == 0) {
    cp_async_16(dst, s.p, (s.n >= V ? V : s.n) * static_cast<int>(sizeof(T)));
  } else {
#pragma unroll
    for (int e = 0; e < V; ++e) dst[e] = e < s.n ? s.p[e * s.stride] : T{};
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

}  // namespace pit::sparse::cuda::dev
