#pragma once
// Shared-memory mbarriers (sm_90) and named barriers: the hand-over between the producer and
// consumer warpgroups of warp-specialised kernels (ops/pit/cuda/ws_core.cuh). Device-only.
//
// A barrier is initialised with the number of arrivals that complete one phase; waiting names the
// parity of the phase waited for. A barrier just initialised is in phase 0, and a wait on parity 1
// (the phase "before" it) returns at once: a producer starts by waiting on its empty barriers
// with parity 1.
//
// Clusters (sm_90, a kernel launched with a cluster dimension): a block may arrive on a barrier in
// another block of its cluster (arrive_remote), and TMA multicasts (tma_ptx.cuh) complete bytes on
// the barriers at the same offset in every block they write; `cluster` has the blocks' ranks and
// the cluster-wide barrier that orders a barrier's initialisation before such remote use, and the
// last remote use before a block exits.
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/mma_ptx.cuh"

namespace pit::cuda::mbar {

// One thread, then a __syncthreads before any use.
__device__ __forceinline__ void init(uint64_t* bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(ptx::smem_u32(bar)), "r"(arrivals) : "memory");
}
// Makes the initialisations visible to the asynchronous arrivals (cp.async) as well.
__device__ __forceinline__ void fence_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

// One arrival (release: this thread's earlier memory accesses happen before the phase completes).
__device__ __forceinline__ void arrive(uint64_t* bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(ptx::smem_u32(bar))
               : "memory");
}

// One arrival that also expects `bytes` more to complete this phase (TMA loads signal them:
// tma_ptx.cuh). The loads may complete before or after it.
__device__ __forceinline__ void arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(ptx::smem_u32(bar)), "r"(bytes)
               : "memory");
}

// One arrival once every cp.async this thread issued so far has completed (counted in the
// barrier's initial arrivals: .noinc).
__device__ __forceinline__ void arrive_on_cp_async(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(ptx::smem_u32(bar)) : "memory");
}

// One arrival on the barrier at bar's offset in block `cta` (its rank) of this block's cluster
// (mapa maps the shared-memory address into that block's window). Default semantics (release at
// CTA scope, as arrive): a .release.cluster arrival would also wait for the thread's earlier
// global stores (a wide kernel's epilogue), which a consumer handing back a slot of shared memory
// that only asynchronous reads used (wgmma, waited for) does not need.
__device__ __forceinline__ void arrive_remote(uint64_t* bar, uint32_t cta) {
  asm volatile(
      "{\n.reg .b32 remote;\n"
      "mapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(ptx::smem_u32(bar)),
      "r"(cta)
      : "memory");
}

// Blocks until the phase of parity `parity` has completed (acquire).
__device__ __forceinline__ void wait(uint64_t* bar, uint32_t parity) {
  const uint32_t addr = ptx::smem_u32(bar);
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(addr), "r"(parity)
        : "memory");
  } while (done == 0);
}

// Waits for every cp.async this thread issued (committed or not).
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads (a multiple of 32).
__device__ __forceinline__ void sync_named(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Arrives at named barrier `id` without waiting (the other threads of the count sync_named on it).
__device__ __forceinline__ void arrive_named(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace pit::cuda::mbar

namespace pit::cuda::cluster {

// This block's rank in its cluster (0 .. cluster size - 1; 0 without clusters).
__device__ __forceinline__ uint32_t rank() {
  uint32_t r;
  asm("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
// This block's cluster's index along x in the grid of clusters, and the clusters along x (a grid
// of gridDim.x blocks in clusters of n along x: gridDim.x / n of them, block b in cluster b / n).
__device__ __forceinline__ uint32_t id_x() {
  uint32_t r;
  asm("mov.u32 %0, %%clusterid.x;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ uint32_t count_x() {
  uint32_t r;
  asm("mov.u32 %0, %%nclusterid.x;\n" : "=r"(r));
  return r;
}

// Every thread of every block of the cluster (none exited): arrive (release) and wait for all
// (acquire). Not .aligned: the threads of a warp may reach it apart (warp-specialised kernels).
// After mbarrier inits fenced by mbar::fence_init, the barriers may be used remotely.
__device__ __forceinline__ void sync() {
  asm volatile("barrier.cluster.arrive;\nbarrier.cluster.wait;\n" ::: "memory");
}

}  // namespace pit::cuda::cluster
