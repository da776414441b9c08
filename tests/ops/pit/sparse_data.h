#pragma once
// Random sparse operands for the PIT tests: values in [-1, 1) (never 0 by accident) with
// micro-tiles tr x tc kept with probability `density` and zeroed otherwise; inside kept tiles a
// fraction `inner_zero` of the elements is 0 as well (a tile is non-zero when any element is).
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace pit::test {

inline std::vector<float> sparse_values(int64_t rows, int64_t cols, int64_t tr, int64_t tc,
                                        double density, uint64_t seed, double inner_zero = 0.3) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int64_t nbr = (rows + tr - 1) / tr, nbc = (cols + tc - 1) / tc;
  std::vector<uint8_t> keep(static_cast<size_t>(nbr * nbc));
  for (auto& k : keep) k = u(gen) < density;
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float x = 0.0f;
      if (keep[static_cast<size_t>((r / tr) * nbc + c / tc)] && u(gen) >= inner_zero) {
        x = static_cast<float>(u(gen) * 2.0 - 1.0);
        if (x == 0.0f) x = 0.5f;
      }
      v[static_cast<size_t>(r * cols + c)] = x;
    }
  return v;
}

inline Tensor sparse_tensor(int64_t rows, int64_t cols, int64_t tr, int64_t tc, double density,
                            uint64_t seed, DType dtype = DType::f32, Device device = Device::cpu(),
                            double inner_zero = 0.3) {
  return from_vector(sparse_values(rows, cols, tr, tc, density, seed, inner_zero), {rows, cols})
      .to(device, dtype);
}

inline Tensor dense_random(const Shape& shape, uint64_t seed, DType dtype = DType::f32,
                           Device device = Device::cpu()) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = static_cast<float>(u(gen));
  return from_vector(v, shape).to(device, dtype);
}

// A poisoned tensor: every element NaN, so that unwritten outputs fail the comparisons.
inline Tensor poisoned(const Shape& shape, DType dtype, Device device = Device::cpu()) {
  return full(shape, std::numeric_limits<double>::quiet_NaN(), dtype, device);
}

}  // namespace pit::test
