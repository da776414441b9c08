#pragma once
// The type the CPU kernels compute in: double for f64 tensors, float for the others (f32, and
// f16/bf16 widened); sums and statistics accumulate in it.
#include <type_traits>

namespace pit::cpu {

template <typename T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace pit::cpu
