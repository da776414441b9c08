// kernels::gather / scatter_add / index_select / index_add / cat: shape checks, the
// [outer, n, inner] view of the indexed dim, and device dispatch.
//
// Index range: the CPU kernels check every index as they use it. For a CUDA op, an index
// tensor on the CPU is checked here before it is uploaded (it is on the host anyway); one
// already on the GPU is checked by the kernel, which records a bad index in the device's error
// slot for the next host read to throw (ops/cuda/index.h): no synchronisation either way.
#include "ops/cpu/index.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/index.h"
#endif

namespace pit::kernels {
namespace {

struct DimSplit {
  int64_t outer = 1, inner = 1;
};

DimSplit split_at(const Shape& shape, int64_t dim) {
  DimSplit s;
  for (int64_t d = 0; d < dim; ++d) s.outer *= shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

#if PIT_WITH_CUDA
using cuda::IndexOp;
#else
enum class IndexOp { gather, index_select, scatter_add, index_add };
#endif

const char* op_name(IndexOp op) {
  switch (op) {
    case IndexOp::gather: return "gather";
    case IndexOp::index_select: return "index_select";
    case IndexOp::scatter_add: return "scatter_add";
    case IndexOp::index_add: return "index_add";
  }
  return "index op";
}

// A host index bound for a GPU: every value must be in [-n, n).
template <typename I>
void check_host_index(const Tensor& index, int64_t n, IndexOp op, int64_t dim) {
  const Tensor t = index.contiguous();
  const I* p = t.data<I>();
  for (int64_t e = 0; e < t.numel(); ++e) {
    const int64_t v = static_cast<int64_t>(p[e]);
    PIT_CHECK(v >= -n && v < n, "index ", v, " is out of range for ", op_name(op), " along dim ",
              dim, " of size ", n, " (valid: [", -n, ", ", n, "); at index element ", e,
              "); fix the index");
  }
}

// The index as contiguous i64 on `device`; a CPU index bound for a GPU is range-checked first.
Tensor as_index(const Tensor& index, Device device, IndexOp op, int64_t dim, int64_t n) {
  PIT_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, op_name(op),
            ": the index must be i64 or i32, got ", dtype_name(index.dtype()));
  if (index.device().is_cpu() && device.is_cuda()) {
    if (index.dtype() == DType::i64)
      check_host_index<int64_t>(index, n, op, dim);
    else
      check_host_index<int32_t>(index, n, op, dim);
  }
  return index.to(device, DType::i64).contiguous();
}

void run_gather(const Tensor& x, const Tensor& index, const int64_t strides[3], Tensor& out,
                int64_t outer, int64_t n, int64_t m, int64_t inner, IndexOp op, int64_t dim) {
  if (x.device().is_cpu()) {
    cpu::gather(x, index, strides, out, outer, n, m, inner, {op_name(op), dim});
  } else {
#if PIT_WITH_CUDA
    cuda::gather(x, index, strides, out, outer, n, m, inner, op, dim, current_stream(x.device()));
#else
    (void)op, (void)dim;
#endif
  }
}

void run_scatter_add(Tensor& out, const Tensor& index, const int64_t strides[3], const Tensor& src,
                     int64_t outer, int64_t n, int64_t m, int64_t inner, IndexOp op, int64_t dim) {
  if (out.device().is_cpu()) {
    cpu::scatter_add(out, index, strides, src, outer, n, m, inner, {op_name(op), dim});
  } else {
#if PIT_WITH_CUDA
    cuda::scatter_add(out, index, strides, src, outer, n, m, inner, op, dim,
                      current_stream(out.device()));
#else
    (void)op, (void)dim;
#endif
  }
}

// Index of gather/scatter: same shape as the values except at dim (that size is m).
void check_index_shape(const char* op, const Shape& values, const Shape& index, int64_t dim) {
  bool ok = values.size() == index.size();
  for (size_t d = 0; ok && d < values.size(); ++d)
    if (static_cast<int64_t>(d) != dim && values[d] != index[d]) ok = false;
  PIT_CHECK(ok, op, ": index of shape ", shape_str(index), " does not match shape ",
            shape_str(values), " outside dim ", dim);
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index_in) {
  dim = x.wrap_dim(dim);
  check_index_shape("gather", x.shape(), index_in.shape(), dim);
  const Tensor index = as_index(index_in, x.device(), IndexOp::gather, dim, x.size(dim));
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  const DimSplit s = split_at(x.shape(), dim);
  const int64_t m = index.size(dim);
  const int64_t strides[3] = {m * s.inner, s.inner, 1};
  run_gather(xc, index, strides, out, s.outer, x.size(dim), m, s.inner, IndexOp::gather, dim);
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& index_in, const Tensor& src) {
  Tensor out = zeros(shape, src.dtype(), src.device());
  dim = out.wrap_dim(dim);
  PIT_CHECK(index_in.shape() == src.shape(), "scatter_add: index of shape ",
            shape_str(index_in.shape()), " and source of shape ", shape_str(src.shape()), " differ");
  check_index_shape("scatter_add", shape, src.shape(), dim);
  const Tensor index = as_index(index_in, src.device(), IndexOp::scatter_add, dim, shape[dim]);
  const DimSplit s = split_at(shape, dim);
  const int64_t m = src.size(dim);
  const int64_t strides[3] = {m * s.inner, s.inner, 1};
  run_scatter_add(out, index, strides, src.contiguous(), s.outer, shape[dim], m, s.inner,
                  IndexOp::scatter_add, dim);
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index_in) {
  dim = x.wrap_dim(dim);
  PIT_CHECK(index_in.dim() == 1, "index_select: the index must be 1-D, got shape ",
            shape_str(index_in.shape()));
  const Tensor index = as_index(index_in, x.device(), IndexOp::index_select, dim, x.size(dim));
  Shape out_shape = x.shape();
  out_shape[dim] = index.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  const DimSplit s = split_at(x.shape(), dim);
  const int64_t strides[3] = {0, 1, 0};  // one index per position along dim, shared by all rows
  run_gather(x.contiguous(), index, strides, out, s.outer, x.size(dim), index.numel(), s.inner,
             IndexOp::index_select, dim);
  return out;
}

Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index_in, const Tensor& src) {
  Tensor out = zeros(shape, src.dtype(), src.device());
  dim = out.wrap_dim(dim);
  bool fits = index_in.dim() == 1 && src.dim() == static_cast<int64_t>(shape.size()) &&
              src.size(dim) == index_in.numel();
  for (int64_t d = 0; fits && d < src.dim(); ++d)
    if (d != dim && src.size(d) != shape[d]) fits = false;
  PIT_CHECK(fits, "index_add: index of shape ", shape_str(index_in.shape()), " and source of shape ",
            shape_str(src.shape()), " do not fit shape ", shape_str(shape), " at dim ", dim,
            ": the index must be 1-D with one entry per source slice along dim, and the source "
            "the shape's size in every other dim");
  const Tensor index = as_index(index_in, src.device(), IndexOp::index_add, dim, shape[dim]);
  const DimSplit s = split_at(shape, dim);
  const int64_t strides[3] = {0, 1, 0};
  run_scatter_add(out, index, strides, src.contiguous(), s.outer, shape[dim], index.numel(), s.inner,
                  IndexOp::index_add, dim);
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  PIT_CHECK(!tensors.empty(), "cat: no tensors given");
  const Tensor& first = tensors[0];
  dim = first.wrap_dim(dim);
  Shape shape = first.shape();
  shape[dim] = 0;
  for (const Tensor& t : tensors) {
    bool ok = t.dim() == first.dim() && t.dtype() == first.dtype() && t.device() == first.device();
    for (int64_t d = 0; ok && d < t.dim(); ++d)
      if (d != dim && t.size(d) != first.size(d)) ok = false;
    PIT_CHECK(ok, "cat: tensor of shape ", shape_str(t.shape()), " (", dtype_name(t.dtype()), ", ",
              t.device(), ") does not fit shape ", shape_str(first.shape()), " (",
              dtype_name(first.dtype()), ", ", first.device(), ") outside dim ", dim);
    shape[dim] += t.size(dim);
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    out.slice(dim, at, at + t.size(dim)).copy_(t);
    at += t.size(dim);
  }
  return out;
}

}  // namespace pit::kernels
