#pragma once
// The shape the wide kernels share (gather_wide.cu: the M-gather; weight_grad_wide.cu: its weight
// gradient): one persistent block an SM of a producer warpgroup and two consumer warpgroups,
// 128 x 256 output tiles (a warpgroup's 64 rows: m64n256k16), a ring of 4 stages 64 deep (16 and
// 32 KB in 16-bit types, so every stage stays 1024-aligned for the 128-byte swizzle).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "ops/cuda/mbarrier_ptx.cuh"

namespace pit::sparse::cuda::wide {

constexpr int kConsumers = 256;  // two warpgroups
constexpr int kProducers = 128;  // and a producer warpgroup
constexpr int kThreads = kConsumers + kProducers;
constexpr int BM = 128, BN = 256, BK = 64;
constexpr int kStages = 4;
constexpr int kAElems = BM * BK, kBElems = BN * BK;  // a stage's two tiles, in elements
constexpr uint32_t kStripBytes = BK * 64 * 2;        // a 64-column strip of a stage: 64 rows of 128 bytes

// What dev::tile_base needs: the element type and the stages' alignment.
template <typename T>
struct WideCfg {
  using Elem = T;
  static constexpr size_t kAlign = 1024;
};

// Thread 0 initialises the ring's barriers: `full` completes with full_arrivals arrivals (and the
// bytes they expect), `empty` with empty_arrivals (one per consumer warp; in clusters of two
// sharing their stages, gather_wide.cu, one per consumer warp of both blocks). The caller
// synchronises after (cluster-wide where other blocks use them).
__device__ __forceinline__ void init_ring(uint64_t* full, uint64_t* empty, uint32_t full_arrivals,
                                          uint32_t empty_arrivals = kConsumers / 32) {
  if (threadIdx.x != 0) return;
  for (int s = 0; s < kStages; ++s) {
    pit::cuda::mbar::init(&full[s], full_arrivals);
    pit::cuda::mbar::init(&empty[s], empty_arrivals);
  }
  pit::cuda::mbar::fence_init();
}

// Whether a wide kernel's consumers drain each k-step's wgmmas and hand its stage back at once
// (one stage held, three loading) rather than after issuing the next stage's (two held): where an
// operand's rows come gathered by cp.async, whose loads land later than TMA boxes. H100
// (docs/BENCHMARKS.md, thirtieth session): dW2 5-8% faster, the up and gu GEMMs from 1% slower
// to 9% faster, the layer's forward + backward 1-3% at top-2; the dx GEMM (compact A, all TMA) 2-8%
// slower, so compact operands keep one group in flight. PIT_WIDE_DRAIN=1 / 0 forces either way.
inline bool wide_drain(bool gathered) {
  static const int forced = [] {
    const char* v = std::getenv("PIT_WIDE_DRAIN");
    return v == nullptr ? -1 : (v[0] == '1' ? 1 : 0);
  }();
  return forced < 0 ? gathered : forced == 1;
}

}  // namespace pit::sparse::cuda::wide
