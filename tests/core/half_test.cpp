// core/half.h: f16 and bf16 conversions, round to nearest even, against known bit patterns,
// exhaustively over every 16-bit pattern, and against an independent reference in double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "core/half.h"

using namespace pit;

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t f16(float f) { return float_to_half_bits(f); }
uint16_t bf16(float f) { return float_to_bfloat16_bits(f); }

// ---- an independent reference: binary search over the 16-bit patterns, decoded in double ----

// A narrow IEEE-like binary format: 1 sign bit, `ebits` exponent bits, `mbits` mantissa bits.
struct Format {
  int ebits, mbits;
  int bias() const { return (1 << (ebits - 1)) - 1; }
  uint32_t inf_bits() const { return ((1u << ebits) - 1u) << mbits; }
  uint32_t sign_bit() const { return 1u << (ebits + mbits); }
  // Value of a non-negative finite pattern; the infinity pattern counts as 2^(emax + 1), the
  // next step of the format, which is what IEEE rounding compares against at the top.
  double value(uint32_t bits) const {
    const int e = static_cast<int>(bits >> mbits);
    const double m = static_cast<double>(bits & ((1u << mbits) - 1u));
    if (e == 0) return std::ldexp(m, 1 - bias() - mbits);  // subnormal
    return std::ldexp(std::ldexp(1.0, mbits) + m, e - bias() - mbits);
  }
  // Round-to-nearest-even of a finite float into this format.
  uint16_t round(float f) const {
    const double x = std::fabs(static_cast<double>(f));
    const uint32_t sign = std::signbit(f) ? sign_bit() : 0u;
    if (x >= value(inf_bits())) return static_cast<uint16_t>(sign | inf_bits());
    uint32_t lo = 0, hi = inf_bits();  // value(lo) <= x < value(hi)
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      (value(mid) <= x ? lo : hi) = mid;
    }
    const double below = x - value(lo), above = value(hi) - x;  // exact in double
    uint32_t r = below < above ? lo : above < below ? hi : ((lo & 1u) ? hi : lo);
    return static_cast<uint16_t>(sign | r);
  }
};

constexpr Format kHalf{5, 10};
constexpr Format kBFloat16{8, 7};

bool half_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool bf16_is_nan(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0; }

}  // namespace

// ---- f16 known patterns ----------------------------------------------------------------------

TEST(Half, SimpleValues) {
  EXPECT_EQ(f16(0.0f), 0x0000);
  EXPECT_EQ(f16(1.0f), 0x3c00);
  EXPECT_EQ(f16(-2.0f), 0xc000);
  EXPECT_EQ(f16(0.5f), 0x3800);
  EXPECT_EQ(f16(1.5f), 0x3e00);
  EXPECT_EQ(f16(1.0f / 3.0f), 0x3555);
}

TEST(Half, LargestFiniteAndOverflow) {
  EXPECT_EQ(f16(65504.0f), 0x7bff);
  EXPECT_EQ(f16(-65504.0f), 0xfbff);
  // 65520 is halfway between 65504 (0x7bff, odd) and 65536 (the infinity step): ties to even.
  EXPECT_EQ(f16(65520.0f), 0x7c00);
  EXPECT_EQ(f16(-65520.0f), 0xfc00);
  EXPECT_EQ(f16(std::nextafter(65520.0f, 0.0f)), 0x7bff) << "65519.996 is below the tie";
  EXPECT_EQ(f16(65519.996f), 0x7bff);
  EXPECT_EQ(f16(1e10f), 0x7c00);
  EXPECT_EQ(f16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(f16(-std::numeric_limits<float>::max()), 0xfc00);
}

TEST(Half, Subnormals) {
  const float tiny = std::ldexp(1.0f, -24);  // the smallest f16 subnormal
  EXPECT_EQ(f16(tiny), 0x0001);
  EXPECT_EQ(f16(-tiny), 0x8001);
  EXPECT_EQ(f16(std::ldexp(1.0f, -25)), 0x0000) << "half the smallest subnormal ties to even 0";
  EXPECT_EQ(f16(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001) << "just above the tie";
  EXPECT_EQ(f16(3 * std::ldexp(1.0f, -26)), 0x0001) << "0.75 of the smallest subnormal";
  EXPECT_EQ(f16(3 * std::ldexp(1.0f, -25)), 0x0002) << "1.5 subnormals: tie to even 2";
  EXPECT_EQ(f16(5 * std::ldexp(1.0f, -25)), 0x0002) << "2.5 subnormals: tie to even 2";
  EXPECT_EQ(f16(1023 * tiny), 0x03ff) << "largest subnormal";
  EXPECT_EQ(f16(std::ldexp(1.0f, -14)), 0x0400) << "smallest normal";
  EXPECT_EQ(f16(1023.5f * tiny), 0x0400) << "tie between the largest subnormal and 2^-14";
  EXPECT_EQ(f16(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(half_bits_to_float(0x0001), tiny);
  EXPECT_EQ(half_bits_to_float(0x03ff), 1023 * tiny);
  EXPECT_EQ(half_bits_to_float(0x8200), -512 * tiny);
}

TEST(Half, SignedZeroAndInfinity) {
  EXPECT_EQ(f16(-0.0f), 0x8000);
  EXPECT_TRUE(std::signbit(half_bits_to_float(0x8000)));
  EXPECT_EQ(half_bits_to_float(0x8000), 0.0f);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f16(inf), 0x7c00);
  EXPECT_EQ(f16(-inf), 0xfc00);
  EXPECT_EQ(half_bits_to_float(0x7c00), inf);
  EXPECT_EQ(half_bits_to_float(0xfc00), -inf);
}

TEST(Half, NaNStaysQuietNaN) {
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  const float snan = float_of(0x7f800001u);  // signalling, payload only in the low bits
  for (float nan : {qnan, snan, -qnan, float_of(0x7fc00123u), float_of(0xffbfffffu)}) {
    const uint16_t h = f16(nan);
    EXPECT_TRUE(half_is_nan(h)) << std::hex << bits_of(nan) << " -> " << h;
    EXPECT_TRUE(h & 0x200u) << "quiet bit must be set: " << std::hex << h;
    EXPECT_TRUE(std::isnan(half_bits_to_float(h)));
  }
  EXPECT_TRUE(std::isnan(half_bits_to_float(0x7c01)));
  EXPECT_TRUE(std::isnan(half_bits_to_float(0xfe00)));
}

TEST(Half, TiesToEvenInTheNormalRange) {
  const float ulp = std::ldexp(1.0f, -10);  // f16 ulp at 1
  EXPECT_EQ(f16(1.0f + ulp / 2), 0x3c00) << "1 + 2^-11: tie, even is 1";
  EXPECT_EQ(f16(1.0f + 3 * ulp / 2), 0x3c02) << "1 + 3*2^-11: tie, even is 1 + 2^-9";
  EXPECT_EQ(f16(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3c01) << "just above the tie rounds up";
  EXPECT_EQ(f16(std::nextafter(1.0f + 3 * ulp / 2, 0.0f)), 0x3c01) << "just below the tie";
  EXPECT_EQ(f16(-(1.0f + ulp / 2)), 0xbc00);
  EXPECT_EQ(f16(std::nextafter(2.0f, 0.0f)), 0x4000) << "rounding carries into the exponent";
  EXPECT_EQ(f16(2048.0f + 1.0f), 0x6800) << "2049: tie between 2048 and 2050";
  EXPECT_EQ(f16(2048.0f + 3.0f), 0x6802) << "2051: tie between 2050 and 2052";
}

// ---- bf16 known patterns ---------------------------------------------------------------------

TEST(BFloat16, SimpleValues) {
  EXPECT_EQ(bf16(0.0f), 0x0000);
  EXPECT_EQ(bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16(-2.0f), 0xc000);
  EXPECT_EQ(bf16(0.1f), 0x3dcd);
  EXPECT_EQ(bf16(-0.0f), 0x8000);
  EXPECT_EQ(bfloat16_bits_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bfloat16_bits_to_float(0x4049), 3.140625f);
}

TEST(BFloat16, TiesToEven) {
  const float ulp = std::ldexp(1.0f, -7);  // bf16 ulp at 1
  EXPECT_EQ(bf16(1.0f + ulp / 2), 0x3f80) << "1 + 2^-8: tie, even is 1";
  EXPECT_EQ(bf16(1.0f + 3 * ulp / 2), 0x3f82) << "1 + 3*2^-8: tie, even is 1 + 2^-6";
  EXPECT_EQ(bf16(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3f81);
  EXPECT_EQ(bf16(std::nextafter(1.0f + ulp / 2, 0.0f)), 0x3f80);
  EXPECT_EQ(bf16(-(1.0f + 3 * ulp / 2)), 0xbf82);
  EXPECT_EQ(bf16(std::nextafter(2.0f, 0.0f)), 0x4000) << "rounding carries into the exponent";
}

TEST(BFloat16, OverflowInfinityAndSubnormals) {
  EXPECT_EQ(bf16(float_of(0x7f7fffffu)), 0x7f80) << "FLT_MAX rounds up to infinity";
  EXPECT_EQ(bf16(float_of(0xff7fffffu)), 0xff80);
  EXPECT_EQ(bf16(float_of(0x7f7f0000u)), 0x7f7f) << "largest finite bf16";
  EXPECT_EQ(bf16(float_of(0x7f7f7fffu)), 0x7f7f) << "below the tie";
  EXPECT_EQ(bf16(float_of(0x7f7f8000u)), 0x7f80) << "tie with an odd mantissa rounds to infinity";
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(bf16(inf), 0x7f80);
  EXPECT_EQ(bf16(-inf), 0xff80);
  EXPECT_EQ(bf16(float_of(0x00010000u)), 0x0001) << "a float subnormal that bf16 holds";
  EXPECT_EQ(bf16(float_of(0x00008000u)), 0x0000) << "tie to even 0";
  EXPECT_EQ(bf16(float_of(0x00018000u)), 0x0002) << "tie to even 2";
  EXPECT_EQ(bf16(float_of(0x80008001u)), 0x8001) << "negative, above the tie";
}

TEST(BFloat16, NaNStaysQuietNaN) {
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  // 0x7f800001 and 0x7f80ffff would become infinity if the low half were simply rounded away.
  for (float nan : {qnan, -qnan, float_of(0x7f800001u), float_of(0x7f80ffffu), float_of(0xffffffffu)}) {
    const uint16_t b = bf16(nan);
    EXPECT_TRUE(bf16_is_nan(b)) << std::hex << bits_of(nan) << " -> " << b;
    EXPECT_TRUE(b & 0x40u) << "quiet bit must be set: " << std::hex << b;
    EXPECT_TRUE(std::isnan(bfloat16_bits_to_float(b)));
  }
}

// ---- the wrapper types -----------------------------------------------------------------------

TEST(HalfTypes, WrappersConvertBothWays) {
  EXPECT_EQ(Half(1.5f).bits, 0x3e00);
  EXPECT_EQ(static_cast<float>(Half::from_bits(0x3e00)), 1.5f);
  EXPECT_EQ(BFloat16(1.5f).bits, 0x3fc0);
  EXPECT_EQ(static_cast<float>(BFloat16::from_bits(0x3fc0)), 1.5f);
  EXPECT_EQ(Half().bits, 0);
  EXPECT_EQ(BFloat16().bits, 0);
  static_assert(sizeof(Half) == 2 && alignof(Half) == 2);
  static_assert(sizeof(BFloat16) == 2 && alignof(BFloat16) == 2);
}

// ---- exhaustive ------------------------------------------------------------------------------

TEST(Half, EveryPatternDecodesExactlyAndRoundTrips) {
  int failures = 0;
  for (uint32_t h = 0; h <= 0xffffu && failures < 10; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = half_bits_to_float(bits);
    if (half_is_nan(bits)) {
      if (!std::isnan(f) || !half_is_nan(f16(f))) {
        ++failures;
        ADD_FAILURE() << "NaN pattern 0x" << std::hex << h << " did not stay NaN";
      }
      continue;
    }
    const double mag = (bits & 0x7fffu) == 0x7c00u ? std::numeric_limits<double>::infinity()
                                                    : kHalf.value(bits & 0x7fffu);
    const double expected = (bits & 0x8000u) ? -mag : mag;
    if (static_cast<double>(f) != expected || std::signbit(f) != static_cast<bool>(bits & 0x8000u)) {
      ++failures;
      ADD_FAILURE() << "0x" << std::hex << h << " decodes to " << f << ", expected " << expected;
    }
    if (f16(f) != bits) {
      ++failures;
      ADD_FAILURE() << "0x" << std::hex << h << " -> " << f << " -> 0x" << f16(f);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(BFloat16, EveryPatternRoundTrips) {
  int failures = 0;
  for (uint32_t b = 0; b <= 0xffffu && failures < 10; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const float f = bfloat16_bits_to_float(bits);
    if (bf16_is_nan(bits)) {
      if (!std::isnan(f) || !bf16_is_nan(bf16(f))) {
        ++failures;
        ADD_FAILURE() << "NaN pattern 0x" << std::hex << b << " did not stay NaN";
      }
      continue;
    }
    if (bits_of(f) != (b << 16)) {
      ++failures;
      ADD_FAILURE() << "0x" << std::hex << b << " decodes to bits 0x" << bits_of(f);
    }
    if (bf16(f) != bits) {
      ++failures;
      ADD_FAILURE() << "0x" << std::hex << b << " -> " << f << " -> 0x" << bf16(f);
    }
  }
  EXPECT_EQ(failures, 0);
}

// ---- against the reference -------------------------------------------------------------------

namespace {

// Random floats: half with arbitrary bit patterns (every exponent), half with exponents in and
// around the narrow format's range, so that subnormals, ties and overflow all come up.
template <typename Convert>
void compare_with_reference(const Format& format, Convert convert, int min_exp, int max_exp) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> exponent(min_exp, max_exp);
  int failures = 0;
  for (int i = 0; i < 400000 && failures < 10; ++i) {
    float f;
    if (i % 2 == 0) {
      f = float_of(static_cast<uint32_t>(rng()));
    } else {
      uint32_t mantissa = static_cast<uint32_t>(rng()) & 0x7fffffu;
      if (i % 8 == 1) mantissa &= ~0x1fffu;  // low bits clear: exact ties and exact values
      f = std::ldexp(1.0f + static_cast<float>(mantissa) * 0x1p-23f, exponent(rng));
      if (rng() & 1u) f = -f;
    }
    if (std::isnan(f)) continue;
    const uint16_t got = convert(f), want = format.round(f);
    if (got != want) {
      ++failures;
      ADD_FAILURE() << "float 0x" << std::hex << bits_of(f) << " (" << f << "): got 0x" << got
                    << ", reference 0x" << want;
    }
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace

TEST(Half, MatchesReferenceOnRandomFloats) {
  compare_with_reference(kHalf, float_to_half_bits, -27, 17);
}

TEST(BFloat16, MatchesReferenceOnRandomFloats) {
  compare_with_reference(kBFloat16, float_to_bfloat16_bits, -140, 127);
}

TEST(HalfReference, AgreesWithKnownPatterns) {
  // The reference itself, on values whose answers are known, so that a shared mistake shows.
  EXPECT_EQ(kHalf.round(1.0f), 0x3c00);
  EXPECT_EQ(kHalf.round(65520.0f), 0x7c00);
  EXPECT_EQ(kHalf.round(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(kHalf.round(3 * std::ldexp(1.0f, -26)), 0x0001);
  EXPECT_EQ(kBFloat16.round(float_of(0x7f7fffffu)), 0x7f80);
  EXPECT_EQ(kBFloat16.round(1.0f + 0x1p-8f), 0x3f80);
}
