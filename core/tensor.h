#pragma once
// Tensor: a strided view of shared storage. Views (view, reshape, transpose, permute, slice,
// select, expand, squeeze, unsqueeze) share storage; contiguous(), clone(), to() copy.
// Operations on CUDA tensors run on the device's current stream and do not synchronize,
// except where they hand data to the host (to(cpu), item(), to_vector()).
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/memory.h"
#include "core/strided.h"

namespace pit {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3]"
int64_t shape_numel(const Shape& shape);
// The rows of a shape read as a matrix [rows, last dim]: the product of every dim but the last
// (1 for a 0-d or 1-d shape). Right where the last dim is 0, where numel / last has no answer.
int64_t leading_rows(const Shape& shape);
class Tensor;
std::string shape_of(const Tensor& t);  // shape_str of t's shape, or "undefined" for a Tensor()
Shape contiguous_strides(const Shape& shape);

// Dims [begin, end) of a tensor walked as one: their element count and the stride of the
// innermost dim of size > 1 (0 when every dim there has size 1). Empty where the strides do not
// chain (each dim's stride = the next larger dim's size times its stride, dims of size 1 aside),
// so no single stride reaches every element.
struct MergedDims {
  int64_t size = 1, stride = 0;
};
std::optional<MergedDims> merged_dims(const Tensor& t, int64_t begin, int64_t end);

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype);

  // A new, uninitialised, contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }  // in elements, into the storage
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const { return shape_[wrap_dim(d)]; }
  int64_t stride(int64_t d) const { return strides_[wrap_dim(d)]; }
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  size_t itemsize() const { return dtype_size(dtype_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(); }
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  // A broadcast view (stride 0 along a dim of size > 1): several elements are one in memory, so
  // an in-place accumulation into it would race on the GPU.
  bool has_shared_elements() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  bool shares_storage(const Tensor& other) const { return storage_ && storage_ == other.storage_; }

  // The address of the first element (storage + offset): a device pointer for CUDA tensors. The
  // strides are not applied: data<T>()[i] is the i-th element in logical order only when the
  // tensor is contiguous (not for a transposed view). data<T>() throws unless T matches dtype().
  void* data_ptr() const;
  template <typename T> T* data() const {
    check_dtype(dtype_of<T>(), "data<T>()");
    return static_cast<T*>(data_ptr());
  }
  StridedDesc desc() const;  // for kernels; throws beyond kMaxDims dimensions

  // Negative dims count from the back. Throws naming the dim and the shape when out of range.
  int64_t wrap_dim(int64_t d) const;

  // ---- views (share storage) ----
  Tensor view(const Shape& shape) const;  // one dim may be -1; throws if strides forbid it
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor flatten() const { return reshape({-1}); }
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;  // 2-D transpose
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor slice(int64_t d, int64_t start, int64_t end, int64_t step = 1) const;  // python-like bounds
  Tensor select(int64_t d, int64_t index) const;  // removes dim d
  Tensor expand(const Shape& shape) const;  // size-1 dims broadcast with stride 0; -1 keeps
  Tensor unsqueeze(int64_t d) const;
  Tensor squeeze(int64_t d) const;

  // ---- copies ----
  Tensor contiguous() const;  // *this when already contiguous
  Tensor clone() const;
  Tensor to(Device device) const;  // *this when already there
  Tensor to(DType dtype) const;    // *this when already of that dtype
  Tensor to(Device device, DType dtype) const;
  // Copies src into this tensor's elements: same shape (or src broadcastable to it), any dtype
  // and device. Returns *this.
  Tensor& copy_(const Tensor& src);
  // this += alpha * other (other broadcast to this shape, any dtype, same device); floating
  // dtypes only. Gradient accumulation uses it.
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& fill_(double value);
  Tensor& zero_();

  // ---- host access (synchronizes for CUDA tensors) ----
  template <typename T> std::vector<T> to_vector() const;
  template <typename T> T item() const;
  std::string str() const;  // shape, dtype, device and a summary of the values

 private:
  void check_dtype(DType expected, const char* what) const;

  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::f32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Whether the bytes of two contiguous tensors share any (an undefined or empty tensor has none):
// for ops that write one while reading the other.
bool bytes_overlap(const Tensor& a, const Tensor& b);

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = to(Device::cpu(), dtype_of<T>()).contiguous();
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

template <typename T>
T Tensor::item() const {
  PIT_CHECK(numel() == 1, "item() needs a tensor of one element; this one has shape ",
            shape_str(shape_), " (", numel(), " elements)");
  return to_vector<T>()[0];
}

// ---- factories (f32 on the CPU unless told) ----
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
            Device device = Device::cpu());
// start, start + step, ... while < end (> end for a negative step).
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32,
              Device device = Device::cpu());
inline Tensor arange(double end, DType dtype = DType::f32, Device device = Device::cpu()) {
  return arange(0.0, end, 1.0, dtype, device);
}
// Uniform in [0, 1) and standard normal, from the default generator (see core/random.h): the
// same seed and generator offset give the same values on the CPU and on any GPU.
Tensor rand(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor randn(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());

// A tensor holding a copy of `count` host elements of `dtype` at `data`, shaped `shape`.
Tensor from_host(const void* data, size_t count, DType dtype, const Shape& shape, Device device);

// From host values: 1-D, or shaped `shape`, which must hold exactly values.size() elements.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu()) {
  if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> has no data(): repack as bytes
    std::vector<uint8_t> bytes(values.begin(), values.end());
    return from_host(bytes.data(), bytes.size(), DType::boolean, shape, device);
  } else {
    return from_host(values.data(), values.size(), dtype_of<T>(), shape, device);
  }
}
template <typename T>
Tensor from_vector(const std::vector<T>& values, Device device = Device::cpu()) {
  return from_vector(values, Shape{static_cast<int64_t>(values.size())}, device);
}

}  // namespace pit
