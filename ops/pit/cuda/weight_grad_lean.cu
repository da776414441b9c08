// The weight gradient of the M-gather (weight_grad.cu) in its common case, with as few
// instructions as the tile allows: f16/bf16, every row of X and Y 16-byte aligned, no entry
// weights, dB stored (not accumulated) into a 16-byte aligned tensor. MoE's dW1 and dW2 are such.
//
// Why a kernel of its own: an expert's tile reduces over ~256 entries (4 k-steps of 64), so what
// a tile costs besides its MMAs decides the speed. Under Nsight Compute on an H100 (T = 16384,
// E = 64, dW1 top-1) the general kernel executed 2,850 warp instructions per warp per tile: 1,277
// once per tile (SRead cursors for any layout and edge, an f32 staging of the accumulators,
// swrite_staged's row callbacks, scales and write modes) and ~390 per k-step (64-bit addresses
// and edge selects per chunk). It issued at 2.1 instructions a cycle, three times the tensor
// cores' time for the same MMAs.
//
// Here a thread owns one 16-byte column chunk of the 128-column X and Y tiles (tid % 16) and the
// entry rows tid / 16 + 16 i: the chunk's column and its validity are worked out once a tile, its
// place in the 128-byte swizzle once (rows 16 apart lie 2 KB apart), so a stage costs per chunk
// one 32 x 32 -> 64-bit multiply-add for its address and one cp.async (zero-filled past the
// segment or the edge). Which operands are gathered is a template argument; the grid is (column
// tile, row tile, segment), with no divisions. The entry rows of a stage are read from the index
// one stage ahead, as in weight_grad.cu. The MMAs are wg_core.cuh's (two warpgroups of
// m64n128k16, 3 stages of 64 entries, 2 blocks an SM) in the same order as the wgmma engine's, so
// the sums are bit-identical to it. The epilogue rounds the accumulators to T in shared memory
// ([128][136]: the pair stores are free of bank conflicts) and writes whole 16-byte runs of dB's
// rows with 64-bit pointer steps.
//
// Measured on an H100 (`PIT_BENCH_MOE_PARTS=1 pit-bench moe`, each timed alternately with the
// general kernel): dW1 top-1 uniform 0.438 ms against 0.688, dW2 0.457 against 0.726; top-2 0.70
// against 1.15-1.20. Under Nsight Compute dW1 executed 146 M warp instructions against 373 M
// (measured with the loads one stage ahead, before kDrain below).
#include <algorithm>

#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/weight_grad_core.cuh"
#include "ops/pit/cuda/wg_core.cuh"

namespace pit::sparse::cuda {
namespace {

// Each k-step waits for its own MMAs, so that the loads run two stages ahead (kDrain): with
// ~4 k-steps a tile, the loads one stage ahead left the first MMAs waiting (H100, T = 16384,
// E = 64, dW1 top-1: 0.438 against 0.490 ms; top-2 0.699 against 0.749).
template <typename T>
using LeanCfg = dev::WgCfg<T, true, true, 3, /*kDrain=*/true>;

constexpr int kThreads = 256;
constexpr int kChunkCols = 16;                     // 16-byte chunks in a 128-column tile row
constexpr int kRowStep = kThreads / kChunkCols;   // rows between one thread's chunks: 16
constexpr int kLoadRows = 64 / kRowStep;          // a thread's chunks of one operand a stage: 4
constexpr int kOutRows = 128 / kRowStep;          // its chunks of the output tile: 8
constexpr int kStageLd = 128 + 8;                 // the staged tile's row stride, in elements

// kXg / kYg: X's / Y's rows gathered through the index (else compact, by entry). Grid: (column
// tile, row tile, segment).
template <typename T, bool kXg, bool kYg>
__global__ void __launch_bounds__(kThreads, 2) weight_grad_lean_kernel(const WgradParams<T> p) {
  using Cfg = LeanCfg<T>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  static_assert(Cfg::kThreads == kThreads && BM == 128 && BN == 128 && BK == kLoadRows * kRowStep);
  static_assert(size_t{BM} * kStageLd * sizeof(T) <= Cfg::kSmem, "the staged tile fits in the stages");
  extern __shared__ uint4 smem_raw[];
  T* const smem = dev::tile_base<Cfg>(smem_raw);
  const int tid = threadIdx.x;
  const int s = static_cast<int>(blockIdx.z);
  const int64_t m0 = int64_t{blockIdx.y} * BM, n0 = int64_t{blockIdx.x} * BN;
  const int e0 = p.offsets[s], count = p.offsets[s + 1] - e0;
  const int num_k = (count + BK - 1) / BK;

  // This thread's column chunk of X and Y (P and Q are multiples of 8: whole chunks or none), as
  // bytes from which a row's chunk lies row * (row length in bytes) on.
  const int cc = tid % kChunkCols, r0 = tid / kChunkCols;
  const int x_bytes = m0 + cc * 8 < p.p ? 16 : 0, y_bytes = n0 + cc * 8 < p.q ? 16 : 0;
  const char* const x_col = reinterpret_cast<const char*>(p.x + (x_bytes != 0 ? m0 + cc * 8 : 0));
  const char* const y_col = reinterpret_cast<const char*>(p.y + (y_bytes != 0 ? n0 + cc * 8 : 0));
  const uint32_t x_row_bytes = static_cast<uint32_t>(p.ldx * sizeof(T)), y_row_bytes = static_cast<uint32_t>(p.ldy * sizeof(T));
  // Its place in a stage's tile (Sw128MNMajor: row r0 + 16 i lies i * 2 KB further on).
  const uint32_t at = static_cast<uint32_t>(dev::Sw128MNMajor<BK>::at(r0, cc * 8) * sizeof(T));
  constexpr uint32_t kRowBytes = kRowStep * 128;

  // The gathered row of each of this thread's entries in the next stage loaded (0 past the count:
  // a row that exists, read for no bytes).
  uint32_t named[kLoadRows];
  const auto fetch = [&](int kt) {
    if constexpr (kXg || kYg) {
#pragma unroll
      for (int i = 0; i < kLoadRows; ++i) {
        const int e = kt * BK + r0 + i * kRowStep;
        named[i] = e < count ? static_cast<uint32_t>(p.rows[e0 + e]) : 0u;
      }
    }
  };
  fetch(0);
  const auto load = [&](int kt, T* sa, T* sb) {
    const uint32_t ua = dev::smem_u32(sa) + at, ub = dev::smem_u32(sb) + at;
#pragma unroll
    for (int i = 0; i < kLoadRows; ++i) {
      const int e = kt * BK + r0 + i * kRowStep;
      const bool in = e < count;
      const uint32_t compact = static_cast<uint32_t>(e0 + (in ? e : 0));  // by entry; the segment's first past it
      const uint32_t xr = kXg ? named[i] : compact, yr = kYg ? named[i] : compact;
      dev::cp_async_16(ua + i * kRowBytes, x_col + uint64_t{xr} * x_row_bytes, in ? x_bytes : 0);
      dev::cp_async_16(ub + i * kRowBytes, y_col + uint64_t{yr} * y_row_bytes, in ? y_bytes : 0);
    }
    if (kt + 1 < num_k) fetch(kt + 1);
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, num_k, load, [](int, T*, T*) {});  // ends with a barrier

  // The tile rounded to T in shared memory, then whole 16-byte runs of dB's rows.
  const uint32_t staged = dev::smem_u32(smem);
  acc.for_each_pair([&](int r, int c, float v0, float v1) {
    dev::st_shared_u32(staged + static_cast<uint32_t>((r * kStageLd + c) * sizeof(T)), dev::pack2<T>(v0, v1));
  });
  __syncthreads();
  if (y_bytes == 0) return;  // this thread's column is past Q
  const int rows_left = static_cast<int>(std::min<int64_t>(p.p - m0, BM)) - r0;
  T* out = p.out + (int64_t{s} * p.p + m0 + r0) * p.q + n0 + cc * 8;
  const int64_t out_step = kRowStep * p.q;
  const uint32_t from = staged + static_cast<uint32_t>((r0 * kStageLd + cc * 8) * sizeof(T));
#pragma unroll
  for (int j = 0; j < kOutRows; ++j, out += out_step)
    if (j * kRowStep < rows_left)
      dev::st_global_u4(out, dev::ld_shared_u4(from + static_cast<uint32_t>(j * kRowStep * kStageLd * sizeof(T))));
}

}  // namespace

template <typename T>
void launch_weight_grad_lean(const WgradParams<T>& p, StreamRef stream) {
  using Cfg = LeanCfg<T>;
  PIT_CHECK(lean_takes(p), "cuda::gather_weight_grad: the lean kernel was launched for a case it does not take");
  const auto run = [&]<bool kXg, bool kYg>() {
    auto* kernel = weight_grad_lean_kernel<T, kXg, kYg>;
    const size_t smem = Cfg::kSmem + Cfg::kAlignSlack;
    allow_smem(kernel, smem, kThreads);
    const dim3 grid(static_cast<unsigned>(p.n_tiles), static_cast<unsigned>(p.m_tiles), static_cast<unsigned>(p.segments));
    kernel<<<grid, kThreads, smem, native(stream)>>>(p);
    check_launch("cuda::gather_weight_grad (lean kernel)");
  };
  if (p.x_gathered && p.y_gathered) run.template operator()<true, true>();
  else if (p.x_gathered) run.template operator()<true, false>();
  else if (p.y_gathered) run.template operator()<false, true>();
  else run.template operator()<false, false>();
}

template void launch_weight_grad_lean<Half>(const WgradParams<Half>&, StreamRef);
template void launch_weight_grad_lean<BFloat16>(const WgradParams<BFloat16>&, StreamRef);

}  // namespace pit::sparse::cuda
