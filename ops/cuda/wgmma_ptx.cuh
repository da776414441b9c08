#pragma once
// Hopper warpgroup MMA (wgmma, sm_90a) building blocks: shared-memory matrix descriptors for
// 128-byte-swizzled tiles, the fences and group waits, and m64n{64,128,256}k16 f16/bf16 with f32 accumulators.
// Device-only. Used by the wgmma engine benchmark (bench/engine.cu); the PIT GEMMs move onto it
// next (docs/BENCHMARKS.md).
//
// Layouts (PTX ISA, "asynchronous warpgroup level matrix shared memory layout"), in 16-byte chunks:
//   K-major (A [M][K], rows of 64 bf16 = 128 bytes): row r's chunk c at r * 128 + ((c ^ (r % 8)) * 16);
//     8 rows make a 1024-byte swizzle atom; SBO = 1024 (atom to atom along M), LBO unused (16).
//   MN-major (B [K][N] with N contiguous): atoms of 64 n x 8 k (k row x of an atom: 128 bytes, chunk c
//     at (c ^ x) * 16); LBO = the byte distance between atoms along N, SBO = along K (8 k rows).
//   Tiles start 1024-byte aligned. A k16 step advances the start address by 32 bytes (K-major) or
//   by two K-atoms (MN-major).
// Checked bit-exact against cuBLAS on 4096^3 and ragged 1000 x 776 x 328 by `pit-bench engine`.
#include <cuda_runtime.h>

#include <cstdint>

namespace pit::cuda::wgmma {

// Descriptor of a 128-byte-swizzled tile at shared address `addr` (bytes; 16-byte units inside).
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((addr >> 4) & 0x3FFF) | (uint64_t((lbo >> 4) & 0x3FFF) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// The calling warpgroup's registers per thread (setmaxnreg; every thread of the warpgroup calls it
// with the same count, a multiple of 8 in 24-256): a warp-specialised kernel hands its producers'
// registers to its MMA warpgroups. ptxas compiles the code after each call within its count (the
// kernel needs __launch_bounds__); an increase waits until the block's pool has the registers.
template <uint32_t kRegs>
__device__ __forceinline__ void regs_dec() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256, "setmaxnreg: a multiple of 8 in 24-256");
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <uint32_t kRegs>
__device__ __forceinline__ void regs_inc() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256, "setmaxnreg: a multiple of 8 in 24-256");
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
// Waits until at most kPending of this warpgroup's committed groups are in flight.
template <int kPending>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Makes this thread's generic-proxy shared-memory writes (st.shared, cp.async) visible to the
// async proxy that wgmma reads through; then a barrier before any warpgroup issues the MMA.
__device__ __forceinline__ void fence_smem_for_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// The accumulator operands of m64nNk16 (N / 2 a thread): their place in the instruction's
// register list and their constraints, built up 32 at a time.
#define PIT_WGMMA_D32 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define PIT_WGMMA_D64 \
  PIT_WGMMA_D32 ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define PIT_WGMMA_D128 \
  PIT_WGMMA_D64 ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define PIT_WGMMA_F8(i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define PIT_WGMMA_D32_OUT PIT_WGMMA_F8(0), PIT_WGMMA_F8(8), PIT_WGMMA_F8(16), PIT_WGMMA_F8(24)
#define PIT_WGMMA_D64_OUT PIT_WGMMA_D32_OUT, PIT_WGMMA_F8(32), PIT_WGMMA_F8(40), PIT_WGMMA_F8(48), PIT_WGMMA_F8(56)
#define PIT_WGMMA_D128_OUT \
  PIT_WGMMA_D64_OUT, PIT_WGMMA_F8(64), PIT_WGMMA_F8(72), PIT_WGMMA_F8(80), PIT_WGMMA_F8(88), PIT_WGMMA_F8(96), \
      PIT_WGMMA_F8(104), PIT_WGMMA_F8(112), PIT_WGMMA_F8(120)

// The instruction m64nNk16 for input type TYPE ("f16" or "bf16"), N a string literal, with REGS /
// OUTS its accumulators' list and constraints (N / 2 of them, K operands: the descriptors are
// operands K and K + 1, scale_d K + 2, the transposes K + 3 and K + 4, given as strings).
#define PIT_WGMMA(N, TYPE, REGS, OUTS, DA, DB, SD, TA, TB)                                                \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" SD ", 0;\n"                                          \
               "wgmma.mma_async.sync.aligned.m64n" N "k16.f32." TYPE "." TYPE " {" REGS "}, %" DA ", %" DB \
               ", p, 1, 1, %" TA ", %" TB ";\n}\n"                                                        \
               : OUTS                                                                                    \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(kTransA), "n"(kTransB))

// d (64 x 128 per warpgroup, f32) += A (64 x 16; M-major when kTransA, else K-major)
// B (16 x 128; N-major when kTransB, else K-major), f16 (kHalf) or bf16 inputs. scale_d = 0
// ignores d's old value.
// Accumulator layout: warp w of the warpgroup holds rows 16 w + g and 16 w + g + 8 (g = lane / 4);
// d[4 j + {0, 1}] at columns 8 j + 2 (lane % 4) + {0, 1} of the first row, d[4 j + {2, 3}] of the
// second (the mma.sync m16n8 layout, repeated over the 16 column blocks).
template <bool kHalf, int kTransA, int kTransB>
__device__ __forceinline__ void mma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (kHalf) PIT_WGMMA("128", "f16", PIT_WGMMA_D64, PIT_WGMMA_D64_OUT, "64", "65", "66", "67", "68");
  else PIT_WGMMA("128", "bf16", PIT_WGMMA_D64, PIT_WGMMA_D64_OUT, "64", "65", "66", "67", "68");
}

// The same with n = 64 (32 accumulators a thread: d[4 j + ...] for the 8 column blocks j).
template <bool kHalf, int kTransA, int kTransB>
__device__ __forceinline__ void mma_m64n64k16(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (kHalf) PIT_WGMMA("64", "f16", PIT_WGMMA_D32, PIT_WGMMA_D32_OUT, "32", "33", "34", "35", "36");
  else PIT_WGMMA("64", "bf16", PIT_WGMMA_D32, PIT_WGMMA_D32_OUT, "32", "33", "34", "35", "36");
}

// The same with n = 256 (128 accumulators a thread: d[4 j + ...] for the 32 column blocks j), for
// the weight gradient's 128 x 256 tiles (weight_grad_wide.cu).
template <bool kHalf, int kTransA, int kTransB>
__device__ __forceinline__ void mma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (kHalf) PIT_WGMMA("256", "f16", PIT_WGMMA_D128, PIT_WGMMA_D128_OUT, "128", "129", "130", "131", "132");
  else PIT_WGMMA("256", "bf16", PIT_WGMMA_D128, PIT_WGMMA_D128_OUT, "128", "129", "130", "131", "132");
}

#undef PIT_WGMMA
#undef PIT_WGMMA_D128_OUT
#undef PIT_WGMMA_D64_OUT
#undef PIT_WGMMA_D32_OUT
#undef PIT_WGMMA_F8
#undef PIT_WGMMA_D128
#undef PIT_WGMMA_D64
#undef PIT_WGMMA_D32

}  // namespace pit::cuda::wgmma
