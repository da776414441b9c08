#include "core/cpu_copy.h"
#include "core/cuda/backend.h"
#include "core/random.h"
#include "core/tensor.h"

#include <cmath>
#include <cstring>

namespace pit {

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  PIT_CHECK(step != 0.0 && std::isfinite(step), "arange: step must be finite and non-zero, got ", step);
  PIT_CHECK(std::isfinite(start) && std::isfinite(end), "arange: bounds must be finite, got ",
            start, " and ", end);
  const double count = std::ceil((end - start) / step);
  PIT_CHECK(count < 0x1p62, "arange(", start, ", ", end, ", ", step, "): ", count, " elements are too many");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor t = Tensor::empty({n}, dtype, device);
  if (n == 0) return t;
  if (device.is_cpu())
    cpu::arange(t.data_ptr(), n, dtype, start, step);
  else
    cuda::arange(t.data_ptr(), n, dtype, start, step, current_stream(device));
  return t;
}

namespace {
Tensor random_tensor(const Shape& shape, DType dtype, Device device, Distribution dist) {
  const char* op = dist == Distribution::uniform ? "rand" : "randn";
  PIT_CHECK(is_floating(dtype), op, ": dtype ", dtype_name(dtype),
            " is not supported; supported dtypes: f32, f64, f16, bf16");
  Tensor t = Tensor::empty(shape, dtype, device);
  const int64_t n = t.numel();
  Generator& gen = default_generator();
  const auto [seed, offset] = gen.draw(static_cast<uint64_t>(n));
  if (n == 0) return t;
  if (device.is_cuda())
    cuda::random(t.data_ptr(), n, dtype, dist, seed, offset, current_stream(device));
  else if (dist == Distribution::uniform)
    cpu::random_uniform(t.data_ptr(), n, dtype, seed, offset);
  else
    cpu::random_normal(t.data_ptr(), n, dtype, seed, offset);
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, DType dtype, Device device) {
  return random_tensor(shape, dtype, device, Distribution::uniform);
}

Tensor randn(const Shape& shape, DType dtype, Device device) {
  return random_tensor(shape, dtype, device, Distribution::normal);
}

Tensor from_host(const void* data, size_t count, DType dtype, const Shape& shape, Device device) {
  PIT_CHECK(shape_numel(shape) == static_cast<int64_t>(count), "from_vector: ", count,
            " values cannot fill shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor cpu = Tensor::empty(shape, dtype, Device::cpu());
  if (count > 0) std::memcpy(cpu.data_ptr(), data, count * dtype_size(dtype));
  return cpu.to(device);
}

}  // namespace pit
