#pragma once
// The examples' task: classify points drawn around class centres (Gaussian blobs). The centres
// and every batch come from fixed seeds, so a run is the same every time.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "trainer/nn/init.h"

namespace pit::examples {

struct Blobs {
  int64_t features = 16, classes = 8;
  double noise = 1.0;  // the std of each point around its centre
  std::vector<float> centres;  // [classes, features], N(0, 1)

  Blobs(int64_t features_, int64_t classes_, double noise_, uint64_t seed)
      : features(features_), classes(classes_), noise(noise_) {
    Generator gen(seed);
    centres = nn::init::normal({classes, features}, 0.0, 1.0, gen).to_vector<float>();
  }

  struct Batch {
    Tensor x, labels;  // [n, features] f32, [n] i64
  };
  // n points, the classes in turn, noise drawn from `seed`; on `device`.
  Batch batch(int64_t n, uint64_t seed, Device device) const {
    Generator gen(seed);
    const std::vector<float> noise_values = nn::init::normal({n, features}, 0.0, noise, gen).to_vector<float>();
    std::vector<float> x(static_cast<size_t>(n * features));
    std::vector<int64_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = (i * 7 + static_cast<int64_t>(seed)) % classes;
      labels[static_cast<size_t>(i)] = c;
      for (int64_t f = 0; f < features; ++f) {
        const size_t at = static_cast<size_t>(i * features + f);
        x[at] = centres[static_cast<size_t>(c * features + f)] + noise_values[at];
      }
    }
    return {from_vector(x, {n, features}, device), from_vector(labels, device)};
  }

  // The share of `logits` ([n, classes], any float dtype and device) whose largest entry is the label.
  double accuracy(const Tensor& logits, const Tensor& labels) const {
    const std::vector<float> l = logits.to(Device::cpu(), DType::f32).contiguous().to_vector<float>();
    const std::vector<int64_t> y = labels.to(Device::cpu()).to_vector<int64_t>();
    int64_t correct = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const float* row = l.data() + i * static_cast<size_t>(classes);
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (row[c] > row[best]) best = c;
      correct += best == y[i];
    }
    return y.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(y.size());
  }
};

}  // namespace pit::examples
