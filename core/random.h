#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11). Element i of a draw with
// (seed, offset) uses counter block offset + i/4 and lane i%4, so the CPU and every GPU produce
// the same numbers for the same seed and offset, whatever the thread layout.
#include <cstdint>
#include <cmath>
#include <mutex>
#include <type_traits>

#include "core/half.h"
#include "core/macros.h"

namespace pit {

enum class Distribution { uniform, normal };

struct Philox4x32 {
  uint32_t v[4];
};

PIT_HD_INLINE Philox4x32 philox4x32_10(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule increments
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits: exact in f32 and the same on every device.
PIT_HD_INLINE float uniform_from_bits(uint32_t x) { return static_cast<float>(x >> 8) * 0x1p-24f; }

// Element i of a uniform draw.
PIT_HD_INLINE float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return uniform_from_bits(philox4x32_10(offset + i / 4, 0, seed).v[i % 4]);
}

// Element i of a uniform draw stored as T. f16 and bf16 round to nearest, which would turn
// draws within half an ulp of 1 into 1: those are capped at the type's largest value below 1.
template <typename T>
PIT_HD_INLINE float philox_uniform_as(uint64_t seed, uint64_t offset, uint64_t i) {
  const float u = philox_uniform(seed, offset, i);
  if constexpr (std::is_same_v<T, Half>)
    return u < 0x1.ffcp-1f ? u : 0x1.ffcp-1f;  // 1 - 2^-11
  else if constexpr (std::is_same_v<T, BFloat16>)
    return u < 0x1.fep-1f ? u : 0x1.fep-1f;  // 1 - 2^-8
  else
    return u;
}

// Element i of a standard normal draw: Box-Muller on lanes (0,1) and (2,3) of block i/4; even
// elements take the cosine, odd ones the sine. Computed in double and rounded once, so that the
// host and device libm differences (an ulp or two in double) almost never show in the float.
PIT_HD_INLINE float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  const Philox4x32 r = philox4x32_10(offset + i / 4, 0, seed);
  const unsigned pair = static_cast<unsigned>(i % 4) & ~1u;
  const double u1 = (static_cast<double>(r.v[pair] >> 8) + 1.0) * 0x1p-24;  // (0, 1]: log finite
  const double u2 = static_cast<double>(r.v[pair + 1] >> 8) * 0x1p-24;
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586476925286766559 * u2;
  return static_cast<float>((i % 2 == 0) ? radius * cos(angle) : radius * sin(angle));
}

// The process-wide source of (seed, offset) pairs. Each draw of n elements reserves ceil(n/4)
// counter blocks, so successive draws never overlap. Thread-safe.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  void manual_seed(uint64_t seed);
  uint64_t seed() const;
  uint64_t offset() const;
  void set_offset(uint64_t offset);  // for checkpoints: restore (seed, offset) for exact resume
  // Reserves the counter blocks for n elements; returns the offset to draw them at.
  uint64_t reserve(uint64_t n);
  // The seed and the reserved offset for n elements in one step, so that a manual_seed from
  // another thread cannot fall between reading the seed and reserving (which would draw the new
  // seed's first numbers again, or the old seed's at a reset offset).
  struct Draw {
    uint64_t seed, offset;
  };
  Draw draw(uint64_t n);

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

Generator& default_generator();
inline void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace pit
