#pragma once
// Element types and the one dispatch helper that turns a runtime DType into a C++ type.
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/half.h"

namespace pit {

enum class DType : uint8_t { f32, f64, f16, bf16, i32, i64, u8, boolean };

inline constexpr DType kAllDTypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16,
                                       DType::i32, DType::i64, DType::u8,  DType::boolean};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);      // "f32", "bf16", "bool", ...
DType parse_dtype(std::string_view name);  // throws naming the allowed names
bool is_floating(DType dtype);             // f32, f64, f16, bf16
inline std::ostream& operator<<(std::ostream& os, DType d) { return os << dtype_name(d); }

// The C++ type of each DType, and back.
template <DType D> struct CppType;
template <> struct CppType<DType::f32> { using type = float; };
template <> struct CppType<DType::f64> { using type = double; };
template <> struct CppType<DType::f16> { using type = Half; };
template <> struct CppType<DType::bf16> { using type = BFloat16; };
template <> struct CppType<DType::i32> { using type = int32_t; };
template <> struct CppType<DType::i64> { using type = int64_t; };
template <> struct CppType<DType::u8> { using type = uint8_t; };
template <> struct CppType<DType::boolean> { using type = bool; };

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<Half>() { return DType::f16; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::bf16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<bool>() { return DType::boolean; }

// Whether dispatch<Allowed...> takes dtype D (every dtype when Allowed is empty).
template <DType D, DType... Allowed>
inline constexpr bool dispatch_takes = sizeof...(Allowed) == 0 || ((D == Allowed) || ...);

// Calls fn.template operator()<T>() with T the C++ type of `dtype`, for dtypes in Allowed...
// (all dtypes when Allowed is empty). Anything else throws naming the op and the dtypes it takes.
// fn is compiled for the allowed types only, so a callback needs no guard against the others:
//   dispatch(t.dtype(), "relu", [&]<typename T>() { relu_kernel<T>(...); });
//   dispatch<DType::f32, DType::f64>(t.dtype(), "gradcheck", ...);
template <DType... Allowed, typename Fn>
decltype(auto) dispatch(DType dtype, const char* op, Fn&& fn) {
  constexpr bool all = sizeof...(Allowed) == 0;
  const bool allowed = all || ((dtype == Allowed) || ...);
  if (!allowed) {
    std::string names;
    ((names += (names.empty() ? "" : ", ") + std::string(dtype_name(Allowed))), ...);
    PIT_THROW(op, ": dtype ", dtype_name(dtype), " is not supported; supported dtypes: ", names);
  }
#define PIT_DISPATCH_CASE_(D, T) \
  case D:                        \
    if constexpr (dispatch_takes<D, Allowed...>) return fn.template operator()<T>(); \
    break;
  switch (dtype) {
    PIT_DISPATCH_CASE_(DType::f32, float)
    PIT_DISPATCH_CASE_(DType::f64, double)
    PIT_DISPATCH_CASE_(DType::f16, Half)
    PIT_DISPATCH_CASE_(DType::bf16, BFloat16)
    PIT_DISPATCH_CASE_(DType::i32, int32_t)
    PIT_DISPATCH_CASE_(DType::i64, int64_t)
    PIT_DISPATCH_CASE_(DType::u8, uint8_t)
    PIT_DISPATCH_CASE_(DType::boolean, bool)
  }
#undef PIT_DISPATCH_CASE_
  PIT_THROW(op, ": invalid dtype value ", static_cast<int>(dtype));
}

// Shorthand for the floating dtypes.
template <typename Fn>
decltype(auto) dispatch_floating(DType dtype, const char* op, Fn&& fn) {
  return dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(dtype, op,
                                                                   std::forward<Fn>(fn));
}

}  // namespace pit
