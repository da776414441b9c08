// Tensor metadata and views. Copies live in copy.cpp, factories in factories.cpp.
#include "core/tensor.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <sstream>

namespace pit {

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  // A zero size makes 0 whatever the others are (their product may not fit: tensors check only
  // the shapes they hold elements for).
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t leading_rows(const Shape& shape) {
  int64_t n = 1;
  for (size_t d = 0; d + 1 < shape.size(); ++d) n *= shape[d];
  return n;
}

std::string shape_of(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; }

std::optional<MergedDims> merged_dims(const Tensor& t, int64_t begin, int64_t end) {
  MergedDims m;
  int64_t prev = -1;
  for (int64_t d = begin; d < end; ++d) {
    if (t.size(d) == 1) continue;
    if (prev >= 0 && t.stride(prev) != t.size(d) * t.stride(d)) return std::nullopt;
    m.size *= t.size(d);
    m.stride = t.stride(d);
    prev = d;
  }
  return m;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

namespace {

// Sizes not negative, and the elements (times itemsize: the bytes) countable in an int64.
void check_shape(const Shape& shape, const char* what, int64_t itemsize = 1) {
  for (int64_t s : shape)
    PIT_CHECK(s >= 0, what, ": shape ", shape_str(shape), " has a negative size");
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return;
  int64_t n = itemsize;
  for (int64_t s : shape)
    PIT_CHECK(!__builtin_mul_overflow(n, s, &n), what, ": shape ", shape_str(shape), " is too large (",
              itemsize == 1 ? "its elements" : "its bytes", " do not fit in 63 bits)");
}

// Replaces one -1 in `shape` by the size that makes it hold `numel` elements.
Shape infer_shape(Shape shape, int64_t numel, const Shape& from) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      PIT_CHECK(infer < 0, "view/reshape to ", shape_str(shape), ": only one dim may be -1");
      infer = static_cast<int>(i);
    } else {
      PIT_CHECK(shape[i] >= 0, "view/reshape to ", shape_str(shape), ": negative size");
      PIT_CHECK(!__builtin_mul_overflow(known, shape[i], &known), "view/reshape to ", shape_str(shape),
                ": the shape is too large (its sizes' product overflows int64)");
    }
  }
  if (infer >= 0) {
    PIT_CHECK(known != 0 && numel % known == 0, "cannot view/reshape shape ", shape_str(from),
              " (", numel, " elements) as ", shape_str(shape));
    shape[infer] = numel / known;
  }
  check_shape(shape, "view/reshape");  // a product that wraps could equal numel
  PIT_CHECK(shape_numel(shape) == numel, "cannot view/reshape shape ", shape_str(from), " (",
            numel, " elements) as ", shape_str(shape), " (", shape_numel(shape), " elements)");
  return shape;
}

// Strides that view a tensor of (shape, strides) as new_shape without copying, if any exist:
// each run of old dims that is contiguous in memory may be split or merged freely.
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape) {
  const int64_t numel = shape_numel(shape);
  if (numel == 0 || shape.empty()) return contiguous_strides(new_shape);
  Shape out(new_shape.size(), 1);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_stride = strides.back();  // stride of the innermost dim of the current run
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    const bool run_ends = d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_stride);
    if (!run_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
      out[view_d] = view_numel * chunk_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (d > 0) {
      chunk_stride = strides[d - 1];
      tensor_numel = view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset, DType dtype)
    : storage_(std::move(storage)), shape_(std::move(shape)), strides_(std::move(strides)),
      offset_(offset), dtype_(dtype) {
  PIT_CHECK(shape_.size() == strides_.size(), "shape ", shape_str(shape_), " and strides ",
            shape_str(strides_), " differ in length");
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "empty", static_cast<int64_t>(dtype_size(dtype)));
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Storage::allocate(nbytes, device, current_stream(device)), shape,
                contiguous_strides(shape), 0, dtype);
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 0) return true;
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

bool Tensor::has_shared_elements() const {
  for (size_t i = 0; i < shape_.size(); ++i)
    if (shape_[i] > 1 && strides_[i] == 0) return true;
  return false;
}

void* Tensor::data_ptr() const {
  PIT_CHECK(defined(), "data_ptr() of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(itemsize());
}

StridedDesc Tensor::desc() const {
  PIT_CHECK(dim() <= kMaxDims, "tensors of up to ", kMaxDims, " dims are supported by kernels; "
            "this one has shape ", shape_str(shape_), ": reshape it first");
  StridedDesc d;
  d.data = numel() > 0 ? data_ptr() : nullptr;
  d.dtype = dtype_;
  d.ndim = static_cast<int>(dim());
  for (int i = 0; i < d.ndim; ++i) {
    d.sizes[i] = shape_[i];
    d.strides[i] = strides_[i];
  }
  return d;
}

int64_t Tensor::wrap_dim(int64_t d) const {
  const int64_t n = dim();
  PIT_CHECK(d >= -n && d < n, "dim ", d, " is out of range for a tensor of shape ",
            shape_str(shape_), " (valid: ", -n, " to ", n - 1, ")");
  return d < 0 ? d + n : d;
}

void Tensor::check_dtype(DType expected, const char* what) const {
  PIT_CHECK(dtype_ == expected, what, ": the tensor holds ", dtype_name(dtype_), ", not ",
            dtype_name(expected));
}

// ---- views ----------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& shape) const {
  const Shape new_shape = infer_shape(shape, numel(), shape_);
  const std::optional<Shape> strides = view_strides(shape_, strides_, new_shape);
  PIT_CHECK(strides.has_value(), "view(", shape_str(new_shape), ") of a tensor of shape ",
            shape_str(shape_), " and strides ", shape_str(strides_),
            " is impossible without a copy; use reshape() (copies) or contiguous().view()");
  return Tensor(storage_, new_shape, *strides, offset_, dtype_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  const Shape new_shape = infer_shape(shape, numel(), shape_);
  if (const std::optional<Shape> strides = view_strides(shape_, strides_, new_shape))
    return Tensor(storage_, new_shape, *strides, offset_, dtype_);
  return contiguous().view(new_shape);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = wrap_dim(d0);
  d1 = wrap_dim(d1);
  Shape shape = shape_, strides = strides_;
  std::swap(shape[d0], shape[d1]);
  std::swap(strides[d0], strides[d1]);
  return Tensor(storage_, shape, strides, offset_, dtype_);
}

Tensor Tensor::t() const {
  PIT_CHECK(dim() == 2, "t() needs a 2-D tensor; this one has shape ", shape_str(shape_));
  return transpose(0, 1);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  PIT_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
            " dims given for a tensor of shape ", shape_str(shape_));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i]);
    PIT_CHECK(!seen[d], "permute: dim ", dims[i], " appears twice in ", shape_str(dims));
    seen[d] = true;
    shape[i] = shape_[d];
    strides[i] = strides_[d];
  }
  return Tensor(storage_, shape, strides, offset_, dtype_);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d);
  PIT_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape_[d];
  auto clamp_index = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  start = clamp_index(start);
  end = std::max(clamp_index(end), start);
  Shape shape = shape_, strides = strides_;
  shape[d] = end > start ? (end - start - 1) / step + 1 : 0;  // no overflow for a huge step
  // A step past the dim's size leaves one element, whose stride is never used: keep it finite.
  if (shape[d] <= 1) strides[d] = strides_[d];
  else PIT_CHECK(!__builtin_mul_overflow(strides_[d], step, &strides[d]), "slice: step ", step, " overflows the stride");
  return Tensor(storage_, shape, strides, offset_ + start * strides_[d], dtype_);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d);
  const int64_t n = shape_[d];
  PIT_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dim ", d,
            " of size ", n, " (shape ", shape_str(shape_), ")");
  if (index < 0) index += n;
  Shape shape = shape_, strides = strides_;
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return Tensor(storage_, shape, strides, offset_ + index * strides_[d], dtype_);
}

Tensor Tensor::expand(const Shape& shape) const {
  PIT_CHECK(shape.size() >= shape_.size(), "expand: cannot expand shape ", shape_str(shape_),
            " to fewer dims ", shape_str(shape));
  const size_t lead = shape.size() - shape_.size();
  Shape out_shape(shape.size()), out_strides(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {  // new leading dims broadcast
      PIT_CHECK(shape[i] >= 0, "expand: size ", shape[i], " is not allowed for a new leading dim in ",
                shape_str(shape));
      out_shape[i] = shape[i];
      out_strides[i] = 0;
      continue;
    }
    PIT_CHECK(shape[i] >= -1, "expand: size ", shape[i], " in ", shape_str(shape), " is negative (-1 keeps a dim)");
    const int64_t have = shape_[i - lead], want = shape[i] == -1 ? have : shape[i];
    PIT_CHECK(have == want || have == 1, "expand: cannot expand shape ", shape_str(shape_), " to ",
              shape_str(shape), ": dim ", i, " has size ", have, ", which must be ", want, " or 1");
    out_shape[i] = want;
    out_strides[i] = have == want ? strides_[i - lead] : 0;
  }
  check_shape(out_shape, "expand");
  return Tensor(storage_, out_shape, out_strides, offset_, dtype_);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  const int64_t n = dim() + 1;
  PIT_CHECK(d >= -n && d < n, "unsqueeze: dim ", d, " is out of range for shape ", shape_str(shape_));
  if (d < 0) d += n;
  Shape shape = shape_, strides = strides_;
  const int64_t stride = d < dim() ? strides_[d] * shape_[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return Tensor(storage_, shape, strides, offset_, dtype_);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d);
  PIT_CHECK(shape_[d] == 1, "squeeze: dim ", d, " of shape ", shape_str(shape_), " has size ",
            shape_[d], ", not 1");
  return select(d, 0);
}

bool bytes_overlap(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.numel() == 0 || b.numel() == 0) return false;
  const auto lo_a = reinterpret_cast<uintptr_t>(a.data_ptr()), lo_b = reinterpret_cast<uintptr_t>(b.data_ptr());
  const uintptr_t hi_a = lo_a + static_cast<uintptr_t>(a.nbytes()), hi_b = lo_b + static_cast<uintptr_t>(b.nbytes());
  return lo_a < hi_b && lo_b < hi_a;
}

}  // namespace pit
