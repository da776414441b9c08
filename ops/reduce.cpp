// kernels::sum, mean, max, var and sum_to: dims, shapes and empty inputs here; the arithmetic in
// ops/cpu/reduce.cpp and ops/cuda/reduce.cu over a strided [outer, mid, inner] view (View3).
//
// The view: kept dims before the reduced ones merge into `outer`, the reduced dims into `mid`,
// kept dims after them into `inner` (size-1 dims are ignored). When the reduced dims are not
// consecutive the input is permuted (a view) to put them last; when a group's strides do not
// merge into one stride, the input is copied to contiguous memory first. Outputs are
// contiguous, laid out as [outer, inner], which is the kept dims in their original order.
//
// Empty inputs: a sum over zero elements is 0; mean and var over zero elements are NaN (0 / 0,
// as in PyTorch); max over an empty dim throws.
#include <algorithm>
#include <limits>

#include "ops/cpu/reduce.h"
#include "ops/kernels.h"
#include "ops/view3.h"
#if PIT_WITH_CUDA
#include "ops/cuda/reduce.h"
#endif

namespace pit::kernels {
namespace {

void check_input(const char* op, const Tensor& x) {
  PIT_CHECK(x.defined(), op, ": the input is undefined");
  PIT_CHECK(is_floating(x.dtype()), op, ": dtype ", dtype_name(x.dtype()),
            " is not supported; supported dtypes: f32, f64, f16, bf16");
}

// Which dims of x are reduced (all of them when dims is empty). Throws naming the op, the dims
// and the shape for a dim out of range or given twice. A 0-d tensor accepts dim 0 and -1.
std::vector<bool> reduce_mask(const char* op, const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t n = x.dim(), range = std::max<int64_t>(n, 1);
  std::vector<bool> mask(static_cast<size_t>(n), dims.empty());
  std::vector<bool> seen(static_cast<size_t>(range), false);
  for (const int64_t d : dims) {
    PIT_CHECK(d >= -range && d < range, op, ": dim ", d, " in dims ", shape_str(dims),
              " is out of range for shape ", shape_str(x.shape()), " (valid: ", -range, " to ",
              range - 1, ")");
    const int64_t w = d < 0 ? d + range : d;
    PIT_CHECK(!seen[static_cast<size_t>(w)], op, ": dim ", d, " appears twice in dims ",
              shape_str(dims), " for shape ", shape_str(x.shape()));
    seen[static_cast<size_t>(w)] = true;
    if (n > 0) mask[static_cast<size_t>(w)] = true;
  }
  return mask;
}

Shape reduced_shape(const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (!mask[static_cast<size_t>(d)])
      out.push_back(x.size(d));
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

int64_t reduced_count(const Tensor& x, const std::vector<bool>& mask) {
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[static_cast<size_t>(d)]) n *= x.size(d);
  return n;
}

// Splits the dims of size > 1 into kept-before (a), reduced (r), kept-after (b); false when the
// reduced dims are not consecutive among them.
bool split_dims(const Tensor& t, const std::vector<bool>& mask, std::vector<int64_t>& a,
                std::vector<int64_t>& r, std::vector<int64_t>& b) {
  a.clear();
  r.clear();
  b.clear();
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) == 1) continue;
    if (mask[static_cast<size_t>(d)]) {
      if (!b.empty()) return false;
      r.push_back(d);
    } else {
      (r.empty() ? a : b).push_back(d);
    }
  }
  return true;
}

std::optional<View3> try_view3(const Tensor& t, const std::vector<bool>& mask) {
  std::vector<int64_t> a, r, b;
  if (!split_dims(t, mask, a, r, b)) return std::nullopt;
  // Dims of size 1 between the groups belong to none: merged_dims skips them.
  const int64_t r_begin = r.empty() ? t.dim() : r.front(), r_end = r.empty() ? t.dim() : r.back() + 1;
  return view3(t, r_begin, r_end);
}

// x (numel > 0) as [outer, mid = reduced dims, inner]. `holder` keeps a permuted copy alive.
View3 reduce_view(const Tensor& x, const std::vector<bool>& mask, Tensor& holder) {
  holder = x;
  std::vector<bool> m = mask;
  std::vector<int64_t> a, r, b;
  if (!split_dims(x, mask, a, r, b)) {  // reduced dims not consecutive: move them last
    std::vector<int64_t> perm;
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t d = 0; d < x.dim(); ++d)
        if (mask[static_cast<size_t>(d)] == (pass == 1)) perm.push_back(d);
    holder = x.permute(perm);
    for (size_t k = 0; k < perm.size(); ++k) m[k] = mask[static_cast<size_t>(perm[k])];
  }
  if (auto v = try_view3(holder, m)) return *v;
  holder = holder.contiguous();
  const auto v = try_view3(holder, m);
  PIT_CHECK(v.has_value(), "internal error: a contiguous tensor of shape ", shape_str(holder.shape()),
            " did not merge into [outer, mid, inner]");
  return *v;
}

enum class Kind { sum, var };

Tensor reduce_common(const char* op, Kind kind, const Tensor& x, const std::vector<int64_t>& dims,
                     bool keepdim, double scale, int64_t correction, double empty_value) {
  check_input(op, x);
  const std::vector<bool> mask = reduce_mask(op, x, dims);
  Tensor out = Tensor::empty(reduced_shape(x, mask, keepdim), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (x.numel() == 0) return out.fill_(empty_value);  // zero elements into each output
  Tensor holder;
  const View3 v = reduce_view(x, mask, holder);
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    const StreamRef stream = current_stream(x.device());
    if (kind == Kind::sum)
      cuda::reduce_sum(v, out.data_ptr(), scale, stream);
    else
      cuda::reduce_var(v, out.data_ptr(), correction, stream);
#endif
    return out;
  }
  if (kind == Kind::sum)
    cpu::reduce_sum(v, out.data_ptr(), scale);
  else
    cpu::reduce_var(v, out.data_ptr(), correction);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_common("sum", Kind::sum, x, dims, keepdim, 1.0, 0, 0.0);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_input("mean", x);
  const int64_t n = reduced_count(x, reduce_mask("mean", x, dims));
  const double scale = n > 0 ? 1.0 / static_cast<double>(n) : 1.0;  // n == 0: filled with NaN
  return reduce_common("mean", Kind::sum, x, dims, keepdim, scale, 0,
                       std::numeric_limits<double>::quiet_NaN());
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  PIT_CHECK(correction >= 0, "var: correction must be >= 0, got ", correction);
  return reduce_common("var", Kind::var, x, dims, keepdim, 1.0, correction,
                       std::numeric_limits<double>::quiet_NaN());
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  check_input("max", x);
  const std::vector<bool> mask = reduce_mask("max", x, {dim});
  if (x.dim() > 0) {
    const int64_t d = x.wrap_dim(dim);
    PIT_CHECK(x.size(d) > 0, "max: cannot take the maximum over dim ", dim, " of size 0 (shape ",
              shape_str(x.shape()), ")");
  }
  const Shape shape = reduced_shape(x, mask, keepdim);
  MaxResult r{Tensor::empty(shape, x.dtype(), x.device()),
              Tensor::empty(shape, DType::i64, x.device())};
  if (r.values.numel() == 0) return r;
  Tensor holder;
  const View3 v = reduce_view(x, mask, holder);
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::reduce_max(v, r.values.data_ptr(), r.indices.data<int64_t>(), current_stream(x.device()));
#endif
    return r;
  }
  cpu::reduce_max(v, r.values.data_ptr(), r.indices.data<int64_t>());
  return r;
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  PIT_CHECK(t.defined(), "sum_to: the input is undefined");
  const int64_t n = t.dim(), k = static_cast<int64_t>(shape.size());
  PIT_CHECK(k <= n, "sum_to: shape ", shape_str(shape), " has more dims than the tensor's shape ",
            shape_str(t.shape()), ", so it does not broadcast to it");
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < n - k; ++d) dims.push_back(d);  // dims that broadcasting added
  for (int64_t j = 0; j < k; ++j) {
    const int64_t d = n - k + j, want = shape[static_cast<size_t>(j)];
    if (want == t.size(d)) continue;
    PIT_CHECK(want == 1, "sum_to: shape ", shape_str(shape), " does not broadcast to shape ",
              shape_str(t.shape()), " (dim ", j, " has size ", want, " against ", t.size(d), ")");
    dims.push_back(d);  // a dim expanded from size 1
  }
  if (dims.empty()) return t;  // already that shape: nothing to sum
  return sum(t, dims, false).reshape(shape);
}

}  // namespace pit::kernels
