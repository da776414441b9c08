#pragma once
// Weight initialisation from pit's Philox generator. Every draw reserves its counter blocks on
// `gen` and computes element i from (seed, offset, i) on the host, so a model built from the
// same seed has the same weights on every machine; modules are initialised on the CPU and moved
// afterwards, so CPU and GPU runs start from identical weights.
#include <cstdint>

#include "core/random.h"
#include "core/tensor.h"

namespace pit::nn::init {

// f32 CPU tensors.
Tensor uniform(const Shape& shape, double low, double high, Generator& gen);
Tensor normal(const Shape& shape, double mean, double std, Generator& gen);
// PyTorch's default for Linear and Conv2d weights and biases: kaiming_uniform_(a = sqrt(5)),
// which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor fan_in_uniform(const Shape& shape, int64_t fan_in, Generator& gen);

}  // namespace pit::nn::init
