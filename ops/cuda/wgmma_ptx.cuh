#pragma once
// Hopper warpgroup MMA (wgmma, sm_90a) building blocks: shared-memory matrix descriptors for
// 128-byte-swizzled tiles, the fences and group waits, and m64n128k16 bf16 with f32 accumulators.
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

// The 64 accumulator operands of an m64n128 wgmma: the register list and its constraints.
#define PIT_WGMMA_D64 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define PIT_WGMMA_D64_OUT \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d (64 x 128 per warpgroup, f32) += A (64 x 16; M-major when kTransA, else K-major)
// B (16 x 128; N-major when kTransB, else K-major), f16 (kHalf) or bf16 inputs. scale_d = 0
// ignores d's old value.
// Accumulator layout: warp w of the warpgroup holds rows 16 w + g and 16 w + g + 8 (g = lane / 4);
// d[4 j + {0, 1}] at columns 8 j + 2 (lane % 4) + {0, 1} of the first row, d[4 j + {2, 3}] of the
// second (the mma.sync m16n8 layout, repeated over the 16 column blocks).
// The instruction for input type TYPE (a string literal: "f16" or "bf16").
#define PIT_WGMMA_M64N128K16(TYPE)                                                   \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                         \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {" PIT_WGMMA_D64 \
               "}, %64, %65, p, 1, 1, %67, %68;\n}\n"                                  \
               : PIT_WGMMA_D64_OUT                                                      \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(kTransA), "n"(kTransB))

template <bool kHalf, int kTransA, int kTransB>
__device__ __forceinline__ void mma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (kHalf) PIT_WGMMA_M64N128K16("f16");
  else PIT_WGMMA_M64N128K16("bf16");
}

// The same with n = 64 (32 accumulators a thread: d[4 j + ...] for the 8 column blocks j).
#define PIT_WGMMA_D32 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define PIT_WGMMA_D32_OUT \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define PIT_WGMMA_M64N64K16(TYPE)                                                    \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                         \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {" PIT_WGMMA_D32 \
               "}, %32, %33, p, 1, 1, %35, %36;\n}\n"                                  \
               : PIT_WGMMA_D32_OUT                                                      \
               : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(kTransA), "n"(kTransB))

template <bool kHalf, int kTransA, int kTransB>
__device__ __forceinline__ void mma_m64n64k16(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int scale_d) {
  if constexpr (kHalf) PIT_WGMMA_M64N64K16("f16");
  else PIT_WGMMA_M64N64K16("bf16");
}

#undef PIT_WGMMA_M64N64K16
#undef PIT_WGMMA_D32
#undef PIT_WGMMA_D32_OUT
#undef PIT_WGMMA_M64N128K16
#undef PIT_WGMMA_D64
#undef PIT_WGMMA_D64_OUT

}  // namespace pit::cuda::wgmma
