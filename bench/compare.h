#pragma once
// Accuracy of a benchmarked result against a reference on the same device: ||x - y|| / ||y|| in
// f64 on the host.
#include <cmath>
#include <vector>

#include "core/core.h"

namespace pit::bench {

inline double rel_err(const Tensor& x, const Tensor& y) {
  const std::vector<float> a = x.to(Device::cpu(), DType::f32).to_vector<float>();
  const std::vector<float> b = y.to(Device::cpu(), DType::f32).to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace pit::bench
