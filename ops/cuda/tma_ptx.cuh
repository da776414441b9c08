#pragma once
// The Tensor Memory Accelerator (TMA, sm_90) from device code: tile loads global -> shared
// described by a tensor map (ops/cuda/tensor_map.h builds it on the host), completing on an
// mbarrier by bytes (mbarrier_ptx.cuh arrive_expect_tx), also multicast into several blocks of a
// cluster, and tile stores shared -> global in bulk groups. Device-only.
//
// One instruction moves a box of the map (box_rows x 64 16-bit elements here) into shared memory
// at `dst`, 128-byte swizzled: the swizzle is a function of the destination's shared-memory
// address (its bits 7-9, the row within a 1024-byte atom, XORed into bits 4-6), so a box of one
// row written at `atom + r * 128` lands exactly where a box of 8 rows would have put its row r.
// That is what lets a producer gather single rows (an index's rows of A) into the wgmma layouts
// (sread.cuh Sw128KMajor, Sw128MNMajor) one TMA each, correctly but slowly: a one-row box costs
// the TMA unit about as much as a whole one (H100: the weight gradient gathering its rows so ran
// 4-6x slower than with the same rows by cp.async, weight_grad_wide.cu), so gathered rows are
// better copied by cp.async and whole tiles by TMA. Elements outside the tensor (coordinates past
// its rows or columns, also negative ones) arrive as zeros and count towards the bytes.
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/mma_ptx.cuh"

namespace pit::cuda::tma {

// Loads the box at (column c0, row c1) of `map` (a kernel parameter: __grid_constant__) into the
// shared-memory address `dst` (1024-byte aligned for a box of whole atoms, 128 for a box of one
// row), completing `bytes of the box` on the mbarrier at shared address `bar`. c0 must be a
// multiple of 8 (16 bytes): on an H200 a box starting at column 150 stopped the kernel with an
// illegal instruction (tests/ops/pit/cuda/tma_test.cu); the engines start boxes at multiples of 64.
__device__ __forceinline__ void load_2d(uint32_t dst, const CUtensorMap* map, int32_t c0, int32_t c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

// The same for a rank-3 map (tensor_map_3d): the box at (column c0, row c1, matrix c2).
__device__ __forceinline__ void load_3d(uint32_t dst, const CUtensorMap* map, int32_t c0, int32_t c1, int32_t c2,
                                        uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

// Multicast (a kernel launched in clusters): the box at (column c0, row c1) of `map` into every
// block of the cluster whose bit is set in cta_mask (bit r: the block of rank r), at the same
// shared-memory offset `dst` in each (dst is this block's address), completing the box's bytes on
// the mbarrier at bar's offset in each of those blocks. One load from the L2 for all of them.
__device__ __forceinline__ void load_2d_multicast(uint32_t dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                                                  uint32_t bar, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3}], [%4], %5;\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(cta_mask)
      : "memory");
}
// The same for a rank-3 map: the box at (column c0, row c1, matrix c2).
__device__ __forceinline__ void load_3d_multicast(uint32_t dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                                                  int32_t c2, uint32_t bar, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3, %4}], [%5], %6;\n"
      ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar), "h"(cta_mask)
      : "memory");
}

// Copies `bytes` (a multiple of 16) from global `src` to the shared-memory address `dst` (both
// 16-byte aligned) in bulk, no tensor map, completing the bytes on the mbarrier at shared address
// `bar`.
__device__ __forceinline__ void load_bulk(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
               ::"r"(dst), "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

// Stores the box at (column c0, row c1, matrix c2) of a rank-3 map from the shared-memory address
// `src` (1024-byte aligned, 128-byte swizzled as a load would have left it), as one bulk group of
// this thread's (commit_bulk); elements outside the tensor are not written. The writes to `src`
// must be fenced for the async proxy (wgmma_ptx.cuh fence_smem_for_async) and complete first.
__device__ __forceinline__ void store_3d(const CUtensorMap* map, int32_t c0, int32_t c1, int32_t c2, uint32_t src) {
  asm volatile("cp.async.bulk.tensor.3d.global.shared::cta.bulk_group [%0, {%1, %2, %3}], [%4];\n"
               ::"l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(src)
               : "memory");
}
// The same for a rank-2 map (tensor_map_2d): the box at (column c0, row c1).
__device__ __forceinline__ void store_2d(const CUtensorMap* map, int32_t c0, int32_t c1, uint32_t src) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n"
               ::"l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(src)
               : "memory");
}
// Closes this thread's bulk stores issued so far into one group.
__device__ __forceinline__ void commit_bulk() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until at most kPending of this thread's bulk groups still read their shared memory (it may
// be overwritten then), or, kRead false, until at most kPending are not yet complete.
template <int kPending, bool kRead = true>
__device__ __forceinline__ void wait_bulk() {
  if constexpr (kRead) asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(kPending) : "memory");
  else asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Fetches a tensor map into the TMA unit's descriptor cache ahead of its first use.
__device__ __forceinline__ void prefetch(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

}  // namespace pit::cuda::tma
