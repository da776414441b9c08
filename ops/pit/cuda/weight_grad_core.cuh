#pragma once
// What the weight-gradient kernels of the M-gather share (weight_grad.cu: the wgmma and mma.sync
// engines, one block a tile; weight_grad_lean.cu: the common case with fewer instructions;
// weight_grad_wide.cu: the same with 128 x 256 tiles, persistent, warp-specialised; weight_grad_ws.cu: the
// persistent, warp-specialised engine): their parameters and the gate
// scaling of a thread's own chunks of the Y tile.
//
// Work tiles: (segment s, row tile mt, column tile nt) numbered column tile fastest, then row
// tile, then segment, so that the blocks running at one time share a segment's entries.
#include <cstdint>

#include "core/device.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda {

template <typename T>
struct WgradParams {
  const T* x;
  const T* y;
  T* out;
  const int32_t* rows;
  const int32_t* offsets;
  const float* weights;
  int64_t p, q;           // out [S, P, Q]
  int64_t ldx, ldy;       // row lengths of X and Y
  int64_t x_rows, y_rows;  // rows of the X and Y matrices (the TMA producer's tensor maps)
  bool x_gathered, y_gathered;
  bool x_fast, y_fast;  // every SRead chunk of X / Y 16-byte aligned
  int segments;
  int m_tiles, n_tiles;
  dev::EpiArgs epi;
};

// The weight gradient on the persistent, warp-specialised engine (weight_grad_ws.cu), f16/bf16:
// every SRead chunk of X and Y must be 16-byte aligned (p.x_fast and p.y_fast). kPp: its ping-pong
// variant (pp_core.cuh). kTma: its stages loaded by TMA (Engine::wgmma_tma / wgmma_tma_pingpong;
// no entry weights).
template <typename T, bool kPp = false, bool kTma = false>
void launch_weight_grad_ws(const WgradParams<T>& p, StreamRef stream);

// The weight gradient's lean kernel (weight_grad_lean.cu), f16/bf16, for what lean_takes says.
template <typename T>
void launch_weight_grad_lean(const WgradParams<T>& p, StreamRef stream);

// Whether the lean kernel takes a weight gradient: rows of X and Y 16-byte aligned, no entry
// weights, dB stored and 16-byte aligned (with Q a multiple of 8, so are its rows); row tiles and
// segments within a grid's y and z (65535), row numbers and row lengths in bytes within 32 bits.
template <typename T>
bool lean_takes(const WgradParams<T>& p) {
  constexpr int64_t kGridYZ = 65535;
  constexpr int64_t kU32 = UINT32_MAX;
  const int64_t item = static_cast<int64_t>(sizeof(T));
  return p.x_fast && p.y_fast && p.weights == nullptr && p.epi.mode == dev::WriteMode::store &&
         reinterpret_cast<uintptr_t>(p.out) % 16 == 0 && p.q % 8 == 0 && p.m_tiles <= kGridYZ &&
         p.segments <= kGridYZ && p.x_rows <= kU32 && p.y_rows <= kU32 && p.ldx * item <= kU32 && p.ldy * item <= kU32;
}

// The weight gradient's wide kernel (weight_grad_wide.cu: 128 x 256 tiles, persistent, a producer
// warpgroup, TMA stores), f16/bf16,
// for what wide_takes says: lean_takes' cases with Q over 128 (narrower outputs fill half a tile).
template <typename T>
bool wide_takes(const WgradParams<T>& p);
template <typename T>
void launch_weight_grad_wide(const WgradParams<T>& p, StreamRef stream);

namespace dev {

// Multiplies this thread's chunks (Walk: the chunk walk of the tile's SRead) of the tile at `tile`
// (layout Layout), wherever the layout put them, by scale[t] (chunk t's entry weight), with
// 16-byte shared-memory accesses. For the chunks this thread copied, once its copies are complete.
template <typename T, class Walk, class Layout>
__device__ __forceinline__ void scale_own_chunks(T* tile, int tid, const float (&scale)[Walk::kPer]) {
  using Pack = pit::cuda::Pack<T>;
  constexpr int N = Pack::kN;
#pragma unroll
  for (int t = 0; t < Walk::kPer; ++t) {
    if (!Walk::owns(t, tid)) continue;
    Pack* chunk = reinterpret_cast<Pack*>(tile + Layout::at(Walk::row(t, tid), Walk::col(t, tid)));
    Pack v = *chunk;
    float f[N];
    pit::cuda::widen_pack(v.v, f);
#pragma unroll
    for (int i = 0; i < N; ++i) f[i] *= scale[t];
    pit::cuda::narrow_pack<T, N>(f, v.v);
    *chunk = v;
  }
}

}  // namespace dev
}  // namespace pit::sparse::cuda
