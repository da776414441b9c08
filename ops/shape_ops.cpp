// Differentiable shape ops: views where the tensor allows.
#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::ops {

Variable reshape(const Variable& x, const Shape& shape) {
  const Shape in_shape = x.shape();
  return record("reshape", {x}, x.data().reshape(shape),
                [=](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(in_shape)}; });
}

Variable transpose(const Variable& x, int64_t d0, int64_t d1) {
  return record("transpose", {x}, x.data().transpose(d0, d1),
                [=](const Tensor& g) -> std::vector<Tensor> { return {g.transpose(d0, d1)}; });
}

Variable permute(const Variable& x, const std::vector<int64_t>& dims) {
  const Tensor out = x.data().permute(dims);  // validates dims
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[x.data().wrap_dim(dims[i])] = static_cast<int64_t>(i);
  return record("permute", {x}, out,
                [=](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; });
}


Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  const Tensor out = x.data().slice(dim, start, end, step);
  const Shape shape = x.shape();
  const int64_t d = x.data().wrap_dim(dim);
  // The view's position inside x, recomputed in backward from the same bounds.
  return record("slice", {x}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = zeros(shape, g.dtype(), g.device());
    gx.slice(d, start, end, step).copy_(g);
    return {gx};
  });
}

Variable cat(const std::vector<Variable>& xs, int64_t dim) {
  std::vector<Tensor> ts;
  for (const Variable& v : xs) ts.push_back(v.data());
  const Tensor out = kernels::cat(ts, dim);
  const int64_t d = out.wrap_dim(dim);
  std::vector<int64_t> sizes;
  for (const Tensor& t : ts) sizes.push_back(t.size(d));
  return record("cat", xs, out, [=](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> grads;
    int64_t at = 0;
    for (int64_t s : sizes) {
      grads.push_back(g.slice(d, at, at + s));
      at += s;
    }
    return grads;
  });
}

Variable stack(const std::vector<Variable>& xs, int64_t dim) {
  PIT_CHECK(!xs.empty(), "stack: no tensors given");
  const int64_t n = xs[0].dim() + 1;
  PIT_CHECK(dim >= -n && dim < n, "stack: dim ", dim, " is out of range for ", n, " dims");
  if (dim < 0) dim += n;
  std::vector<Variable> expanded;
  for (const Variable& v : xs) {
    Shape s = v.shape();
    s.insert(s.begin() + dim, 1);
    expanded.push_back(reshape(v, s));
  }
  return cat(expanded, dim);
}

Variable index_select(const Variable& x, int64_t dim, const Tensor& index) {
  const Tensor out = kernels::index_select(x.data(), dim, index);
  const Shape shape = x.shape();
  const Tensor saved = needs_grad({x}) ? index : Tensor();
  return record("index_select", {x}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::index_add(shape, dim, saved, g)};
  });
}

Variable gather(const Variable& x, int64_t dim, const Tensor& index) {
  const Tensor out = kernels::gather(x.data(), dim, index);
  const Shape shape = x.shape();
  const Tensor saved = needs_grad({x}) ? index : Tensor();
  return record("gather", {x}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::scatter_add(shape, dim, saved, g)};
  });
}

Variable scatter_add(const Variable& self, int64_t dim, const Tensor& index, const Variable& src) {
  // The sum takes src's dtype and device: self in another would be converted in silence (and its
  // gradient come back in src's dtype).
  PIT_CHECK(self.defined() && src.defined(), "scatter_add: undefined self or src");
  PIT_CHECK(self.dtype() == src.dtype() && self.device() == src.device(), "scatter_add: self is ",
            dtype_name(self.dtype()), " on ", self.device().str(), " but src is ", dtype_name(src.dtype()), " on ",
            src.device().str(), "; give both in one dtype and on one device (ops::cast for a Variable's dtype)");
  Tensor out = kernels::scatter_add(self.shape(), dim, index, src.data());
  out.add_(self.data());
  const Tensor saved = needs_grad({self, src}) ? index : Tensor();
  const bool need_src = src.requires_grad();
  return record("scatter_add", {self, src}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    return {g, need_src ? kernels::gather(g, dim, saved) : Tensor()};
  });
}

Variable embedding(const Tensor& ids, const Variable& weight) {
  PIT_CHECK(weight.dim() == 2, "embedding: the weight must be (num_embeddings, dim), got ",
            shape_str(weight.shape()));
  PIT_CHECK(ids.defined() && (ids.dtype() == DType::i64 || ids.dtype() == DType::i32),
            "embedding: the ids must be an i64 or i32 tensor, got ", ids.defined() ? dtype_name(ids.dtype()) : "undefined",
            " (class or token ids, e.g. .to(DType::i64))");
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  return reshape(index_select(weight, 0, ids.reshape({-1})), out_shape);
}

}  // namespace pit::ops
