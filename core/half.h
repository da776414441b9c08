#pragma once
// f16 and bf16 storage types with round-to-nearest-even conversions, usable in host and device
// code. Layout-compatible with CUDA's __half and __nv_bfloat16 (one uint16_t).
#include <cstdint>
#include <cstring>

#include "core/macros.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace pit {
namespace detail {

PIT_HD_INLINE uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
PIT_HD_INLINE float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace detail

// IEEE binary32 -> binary16, round to nearest, ties to even; NaN stays NaN (quiet), overflow
// gives infinity, values below half the smallest subnormal give signed zero.
PIT_HD_INLINE uint16_t float_to_half_bits(float f) {
#if defined(__CUDA_ARCH__)
  // Device: the hardware conversion (also round to nearest even) for everything but NaN, whose
  // payload the code below keeps exactly like the host does.
  if (f == f) return __half_as_ushort(__float2half_rn(f));
#endif
  uint32_t x = detail::float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u)  // inf or NaN; keep NaN payload's top bits and force quiet
    return static_cast<uint16_t>(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u | ((x >> 13) & 0x3ffu) : 0u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (x < 0x38800000u) {                                                // below 2^-14: subnormal
    if (x < 0x33000000u) return static_cast<uint16_t>(sign);           // <= 2^-25 rounds to 0
    const uint32_t e = x >> 23;
    const uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // half subnormal = m * 2^(e - 126) in units of 2^-24
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  const uint32_t r = x - 0x38000000u;  // rebias exponent 127 -> 15
  uint32_t h = r >> 13;
  const uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry rolls into the exponent
  return static_cast<uint16_t>(sign | h);
}

PIT_HD_INLINE float half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  // Device: the exact hardware widening for everything but NaN (payload kept as on the host).
  if ((h & 0x7c00u) != 0x7c00u || (h & 0x3ffu) == 0) return __half2float(__ushort_as_half(h));
#endif
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return detail::bits_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return detail::bits_float(sign);
    e = 113;  // normalise the subnormal: 2^-14 has biased float exponent 113
    while (!(m & 0x400u)) {
      m <<= 1;
      --e;
    }
    m &= 0x3ffu;
    return detail::bits_float(sign | (e << 23) | (m << 13));
  }
  return detail::bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

// IEEE binary32 -> bfloat16, round to nearest, ties to even; NaN stays a quiet NaN.
PIT_HD_INLINE uint16_t float_to_bfloat16_bits(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  // Device: the hardware conversion (round to nearest even, one instruction) for everything but
  // NaN, whose payload the code below keeps exactly like the host does.
  if (f == f) return __bfloat16_as_ushort(__float2bfloat16_rn(f));
#endif
  const uint32_t x = detail::float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

PIT_HD_INLINE float bfloat16_bits_to_float(uint16_t b) {
  return detail::bits_float(static_cast<uint32_t>(b) << 16);
}

struct Half {
  uint16_t bits = 0;
  Half() = default;
  PIT_HD explicit Half(float f) : bits(float_to_half_bits(f)) {}
  PIT_HD static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
  PIT_HD operator float() const { return half_bits_to_float(bits); }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  PIT_HD explicit BFloat16(float f) : bits(float_to_bfloat16_bits(f)) {}
  PIT_HD static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
  PIT_HD operator float() const { return bfloat16_bits_to_float(bits); }
};

static_assert(sizeof(Half) == 2 && sizeof(BFloat16) == 2);

}  // namespace pit
