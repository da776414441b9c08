#include "trainer/nn/init.h"

#include <cmath>
#include <vector>

namespace pit::nn::init {

Tensor uniform(const Shape& shape, double low, double high, Generator& gen) {
  PIT_CHECK(low <= high, "init::uniform: low ", low, " > high ", high);
  const int64_t n = shape_numel(shape);
  const auto [seed, offset] = gen.draw(static_cast<uint64_t>(n));
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(low + (high - low) * philox_uniform(seed, offset, static_cast<uint64_t>(i)));
  return from_vector(v, shape);
}

Tensor normal(const Shape& shape, double mean, double std, Generator& gen) {
  PIT_CHECK(std >= 0.0, "init::normal: std must be >= 0, got ", std);
  const int64_t n = shape_numel(shape);
  const auto [seed, offset] = gen.draw(static_cast<uint64_t>(n));
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(mean + std * philox_normal(seed, offset, static_cast<uint64_t>(i)));
  return from_vector(v, shape);
}

Tensor fan_in_uniform(const Shape& shape, int64_t fan_in, Generator& gen) {
  PIT_CHECK(fan_in > 0, "init::fan_in_uniform: fan_in must be positive, got ", fan_in);
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return uniform(shape, -bound, bound, gen);
}

}  // namespace pit::nn::init
