// pit::kernels elementwise functions: checks, broadcasting, output allocation, and dispatch to
// the CPU (ops/cpu/elementwise) or CUDA (ops/cuda/elementwise) kernels.
//
// Operands reach the kernels as StridedDescs of one shape (broadcast inputs expanded with
// stride 0) whose dims have been merged wherever every operand allows it: contiguous operands
// of one shape become a single dense dim (the kernels' vectorised fast path), and views
// (transposed, sliced, expanded) keep only the dims they must, so nothing is copied.
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>

#include "ops/cpu/elementwise.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/elementwise.h"
#endif

namespace pit::kernels {
namespace {

// Errors name the op as its users call it (ops::exp, ops::add, ...), not this layer's function.
std::string unary_what(UnaryOp op) { return unary_name(op); }

std::string describe(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape()) + " on " + t.device().str();
}

struct Operand {
  const char* name;
  const Tensor* tensor;
};

// Every operand defined, of one floating dtype and on one device.
void check_operands(const std::string& what, std::initializer_list<Operand> operands) {
  for (const Operand& o : operands)
    PIT_CHECK(o.tensor->defined(), what, ": ", o.name, " is an undefined tensor");
  const Operand& first = *operands.begin();
  for (const Operand& o : operands) {
    PIT_CHECK(o.tensor->dtype() == first.tensor->dtype(), what, ": ", first.name, " is ",
              describe(*first.tensor), " but ", o.name, " is ", describe(*o.tensor),
              "; the operands must share one dtype (pit does not promote): convert one with "
              ".to(DType::", dtype_name(first.tensor->dtype()), ") (a Variable: ops::cast, which keeps its gradient)");
    PIT_CHECK(o.tensor->device() == first.tensor->device(), what, ": ", first.name, " is ",
              describe(*first.tensor), " but ", o.name, " is ", describe(*o.tensor),
              "; the operands must be on one device: move one with .to(",
              first.tensor->device().str(), ") (a model: Module::to)");
  }
  PIT_CHECK(is_floating(first.tensor->dtype()), what, ": ", first.name, " is ",
            describe(*first.tensor), "; elementwise kernels take floating dtypes only (f32, f64, "
            "f16, bf16): convert with .to(DType::f32)");
}

// numpy broadcasting: align the shapes at their last dims; each pair of sizes must be equal or
// contain a 1 (a missing leading dim counts as 1).
Shape broadcast_for(const std::string& what, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {  // i counts from the last dim
    const int64_t sa = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t sb = i < b.size() ? b[b.size() - 1 - i] : 1;
    PIT_CHECK(sa == sb || sa == 1 || sb == 1, what, ": shapes ", shape_str(a), " and ",
              shape_str(b), " do not broadcast: dim ", -static_cast<int64_t>(i) - 1,
              " (counting from the last) has sizes ", sa, " and ", sb,
              ", which must be equal or one of them 1");
    out[n - 1 - i] = sa == 1 ? sb : sa;
  }
  return out;
}

// Kernel descriptions of tensors that all have the same shape and at least one element: size-1
// dims dropped and neighbouring dims merged where every operand walks them as one.
template <size_t N>
std::array<StridedDesc, N> kernel_descs(const std::string& what, const std::array<const Tensor*, N>& ts) {
  std::array<StridedDesc, N> d;
  for (size_t k = 0; k < N; ++k) {
    d[k].data = ts[k]->data_ptr();
    d[k].dtype = ts[k]->dtype();
  }
  const Shape& shape = ts[0]->shape();
  // Fast path: contiguous operands of one shape are one dense dim.
  if (std::all_of(ts.begin(), ts.end(), [](const Tensor* t) { return t->is_contiguous(); })) {
    for (size_t k = 0; k < N; ++k) {
      d[k].ndim = 1;
      d[k].sizes[0] = shape_numel(shape);
      d[k].strides[0] = 1;
    }
    return d;
  }
  Shape sizes;
  std::array<Shape, N> strides;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    bool merge = !sizes.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = strides[k].back() == shape[i] * ts[k]->strides()[i];
    if (merge) {  // dim i continues the previous kept dim in every operand
      sizes.back() *= shape[i];
      for (size_t k = 0; k < N; ++k) strides[k].back() = ts[k]->strides()[i];
    } else {
      sizes.push_back(shape[i]);
      for (size_t k = 0; k < N; ++k) strides[k].push_back(ts[k]->strides()[i]);
    }
  }
  PIT_CHECK(sizes.size() <= static_cast<size_t>(kMaxDims), what, ": operands of shape ",
            shape_str(shape), " still have ", sizes.size(), " dims after merging, more than the ",
            kMaxDims, " the kernels index; make the inputs contiguous first");
  for (size_t k = 0; k < N; ++k) {
    d[k].ndim = static_cast<int>(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      d[k].sizes[i] = sizes[i];
      d[k].strides[i] = strides[k][i];
    }
  }
  return d;
}

#if !PIT_WITH_CUDA
[[noreturn]] void no_cuda(const std::string& what, Device device) {
  PIT_THROW(what, ": tensors on ", device.str(), " but pit was built without CUDA");
}
#endif

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  return broadcast_for("broadcast_shapes", a, b);
}

Tensor unary(UnaryOp op, const Tensor& x, double alpha) {
  const std::string what = unary_what(op);
  check_operands(what, {{"x", &x}});
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  const auto d = kernel_descs<2>(what, {&out, &x});
  if (out.device().is_cpu()) {
    cpu::unary(op, d[0], d[1], alpha);
  } else {
#if PIT_WITH_CUDA
    cuda::unary(op, d[0], d[1], alpha, current_stream(out.device()));
#else
    no_cuda(what, out.device());
#endif
  }
  return out;
}

Tensor unary_backward(UnaryOp op, const Tensor& grad_y, const Tensor& x, const Tensor& y,
                      double alpha) {
  const std::string what = std::string("backward of ") + unary_name(op);
  check_operands(what, {{"grad_y", &grad_y}, {"x", &x}, {"y", &y}});
  PIT_CHECK(grad_y.shape() == x.shape() && y.shape() == x.shape(), what, ": grad_y ",
            shape_str(grad_y.shape()), ", x ", shape_str(x.shape()), " and y ",
            shape_str(y.shape()), " must have one shape (y = f(x), grad_y its gradient)");
  Tensor grad_x = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (grad_x.numel() == 0) return grad_x;
  const auto d = kernel_descs<4>(what, {&grad_x, &grad_y, &x, &y});
  if (grad_x.device().is_cpu()) {
    cpu::unary_backward(op, d[0], d[1], d[2], d[3], alpha);
  } else {
#if PIT_WITH_CUDA
    cuda::unary_backward(op, d[0], d[1], d[2], d[3], alpha, current_stream(grad_x.device()));
#else
    no_cuda(what, grad_x.device());
#endif
  }
  return grad_x;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const std::string what = binary_name(op);
  check_operands(what, {{"a", &a}, {"b", &b}});
  const Shape shape = broadcast_for(what, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  const Tensor ae = a.shape() == shape ? a : a.expand(shape);
  const Tensor be = b.shape() == shape ? b : b.expand(shape);
  const auto d = kernel_descs<3>(what, {&out, &ae, &be});
  if (out.device().is_cpu()) {
    cpu::binary(op, d[0], d[1], d[2]);
  } else {
#if PIT_WITH_CUDA
    cuda::binary(op, d[0], d[1], d[2], current_stream(out.device()));
#else
    no_cuda(what, out.device());
#endif
  }
  return out;
}

Tensor& add_scaled_(Tensor& a, const Tensor& b, double alpha) {
  const std::string what = "kernels::add_scaled_";
  check_operands(what, {{"a", &a}, {"b", &b}});
  PIT_CHECK(broadcast_for(what, a.shape(), b.shape()) == a.shape(), what, ": b of shape ",
            shape_str(b.shape()), " does not broadcast to the shape ", shape_str(a.shape()),
            " of a, which is updated in place");
  PIT_CHECK(!a.has_shared_elements(), what, ": a (shape ", shape_str(a.shape()), ", strides ",
            shape_str(a.strides()), ") is a broadcast view whose elements share memory, so an "
            "in-place update would race; update a contiguous() copy instead");
  if (a.numel() == 0) return a;
  Tensor src = b.shape() == a.shape() ? b : b.expand(a.shape());
  // Elementwise aliasing (b is a itself) is safe; any other overlap would read elements that
  // were already updated, so b is copied first.
  if (src.shares_storage(a) && (src.offset() != a.offset() || src.strides() != a.strides()))
    src = src.clone();
  const auto d = kernel_descs<2>(what, {&a, &src});
  if (a.device().is_cpu()) {
    cpu::add_scaled(d[0], d[1], alpha);
  } else {
#if PIT_WITH_CUDA
    cuda::add_scaled(d[0], d[1], alpha, current_stream(a.device()));
#else
    no_cuda(what, a.device());
#endif
  }
  return a;
}

}  // namespace pit::kernels
