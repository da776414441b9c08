#pragma once
// Tiny f64 CPU ops built on record(), so the engine is tested without the ops library.
#include <cmath>

#include "autograd/node.h"
#include "core/tensor.h"

namespace pit::test {

inline Tensor map2(const Tensor& a, const Tensor& b, double (*f)(double, double)) {
  Tensor out = Tensor::empty(a.shape(), DType::f64);
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  for (int64_t i = 0; i < a.numel(); ++i)
    out.data<double>()[i] = f(ac.data<double>()[i], bc.data<double>()[i]);
  return out;
}

inline Variable plus(const Variable& a, const Variable& b) {
  return record("plus", {a, b}, map2(a.data(), b.data(), [](double x, double y) { return x + y; }),
                [](const Tensor& g) -> std::vector<Tensor> { return {g, g}; });
}

inline Variable times(const Variable& a, const Variable& b) {
  const Tensor sa = a.data(), sb = b.data();
  return record("times", {a, b}, map2(sa, sb, [](double x, double y) { return x * y; }),
                [=](const Tensor& g) -> std::vector<Tensor> {
                  return {map2(g, sb, [](double x, double y) { return x * y; }),
                          map2(g, sa, [](double x, double y) { return x * y; })};
                });
}

inline Variable sin_op(const Variable& a) {
  const Tensor sa = a.data();
  return record("sin", {a}, map2(sa, sa, [](double x, double) { return std::sin(x); }),
                [=](const Tensor& g) -> std::vector<Tensor> {
                  return {map2(g, sa, [](double gg, double x) { return gg * std::cos(x); })};
                });
}

// Sum of all elements, as a 1-element tensor.
inline Variable total(const Variable& a) {
  const Shape shape = a.shape();
  const Tensor c = a.data().contiguous();
  double s = 0;
  for (int64_t i = 0; i < c.numel(); ++i) s += c.data<double>()[i];
  return record("total", {a}, full({1}, s, DType::f64), [=](const Tensor& g) -> std::vector<Tensor> {
    return {full(shape, g.item<double>(), DType::f64)};
  });
}

// Gathers rows of a by an index tensor: the index is a Tensor, non-differentiable by design.
inline Variable take_rows(const Variable& a, const Tensor& index) {
  const int64_t n = index.numel(), cols = a.size(1);
  Tensor out = Tensor::empty({n, cols}, DType::f64);
  const Tensor ac = a.data().contiguous();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < cols; ++c)
      out.data<double>()[i * cols + c] = ac.data<double>()[index.data<int64_t>()[i] * cols + c];
  const Shape shape = a.shape();
  return record("take_rows", {a}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga = zeros(shape, DType::f64);
    const Tensor gc = g.contiguous();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < cols; ++c)
        ga.data<double>()[index.data<int64_t>()[i] * cols + c] += gc.data<double>()[i * cols + c];
    return {ga};
  });
}

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

}  // namespace pit::test
