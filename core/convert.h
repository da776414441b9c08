#pragma once
// Element conversion between the C++ types of the DTypes, identical in host and device code
// (so CPU and CUDA copies agree bit for bit):
// - f16/bf16 go through f32, rounding to nearest even (f64 -> f16 therefore rounds twice);
// - to bool: value != 0 (NaN is true);
// - floating -> integer truncates toward zero through i64 (out-of-range values are undefined,
//   as in C++; NaN likewise);
// - otherwise a C++ static_cast.
#include <cstdint>
#include <type_traits>

#include "core/half.h"
#include "core/macros.h"

namespace pit {

template <typename T>
inline constexpr bool is_reduced_float_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

template <typename D, typename S>
PIT_HD_INLINE D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (is_reduced_float_v<S>) {
    return convert<D>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (is_reduced_float_v<D>) {
    return D(static_cast<float>(v));
  } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<S>) {
    return static_cast<D>(static_cast<int64_t>(v));
  } else {
    return static_cast<D>(v);
  }
}

// dst = src (Accumulate false), or dst += alpha * src computed in f32 (f64 for f64 dst): the
// element step of copies and of Tensor::add_, on the CPU and the GPU alike.
template <bool Accumulate, typename D, typename S>
PIT_HD_INLINE void store_converted(D& dst, S src, double alpha) {
  if constexpr (Accumulate) {
    using C = std::conditional_t<std::is_same_v<D, double>, double, float>;
    dst = convert<D>(convert<C>(dst) + static_cast<C>(alpha) * convert<C>(src));
  } else {
    dst = convert<D>(src);
  }
}

}  // namespace pit
