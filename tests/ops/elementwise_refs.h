#pragma once
// Shared by the elementwise_*_test.cpp files (kernels::unary / unary_backward / binary /
// broadcast_shapes / add_scaled_): the op lists, f64 references written with <cmath>
// (independent of elementwise_op.h), input makers with each op's domain, broadcast cases,
// non-contiguous views, all_close and error_of.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"

namespace pit::test::elementwise {

inline const std::vector<UnaryOp> kUnaryOps = {
    UnaryOp::neg,       UnaryOp::exp,        UnaryOp::log,        UnaryOp::sqrt,
    UnaryOp::rsqrt,     UnaryOp::tanh,       UnaryOp::sigmoid,    UnaryOp::relu,
    UnaryOp::gelu_tanh, UnaryOp::gelu_erf,   UnaryOp::silu,       UnaryOp::abs,
    UnaryOp::add_scalar, UnaryOp::mul_scalar, UnaryOp::pow_scalar, UnaryOp::rsub_scalar,
    UnaryOp::rdiv_scalar};
inline const std::vector<BinaryOp> kBinaryOps = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                                                 BinaryOp::div, BinaryOp::pow,     BinaryOp::maximum,
                                                 BinaryOp::minimum, BinaryOp::keep_where};

// The scalar each unary op is tested with (the others ignore it).
inline double alpha_for(UnaryOp op) {
  switch (op) {
    case UnaryOp::add_scalar: return 0.75;
    case UnaryOp::mul_scalar: return -1.5;
    case UnaryOp::pow_scalar: return 1.7;
    case UnaryOp::rsub_scalar: return 2.0;
    case UnaryOp::rdiv_scalar: return 3.0;
    default: return 0.0;
  }
}

inline double ref_unary(UnaryOp op, double x, double a) {
  const double pi = std::acos(-1.0);
  const double sigmoid = 0.5 * (1.0 + std::tanh(0.5 * x));
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return std::pow(x, -0.5);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return sigmoid;
    case UnaryOp::relu: return std::max(x, 0.0);
    case UnaryOp::gelu_tanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
    case UnaryOp::gelu_erf: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case UnaryOp::silu: return x * sigmoid;
    case UnaryOp::abs: return std::fabs(x);
    case UnaryOp::add_scalar: return x + a;
    case UnaryOp::mul_scalar: return x * a;
    case UnaryOp::pow_scalar: return std::pow(x, a);
    case UnaryOp::rsub_scalar: return a - x;
    case UnaryOp::rdiv_scalar: return a / x;
  }
  return NAN;
}

inline double ref_binary(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return std::isnan(a) || std::isnan(b) ? std::nan("") : std::fmax(a, b);
    case BinaryOp::minimum: return std::isnan(a) || std::isnan(b) ? std::nan("") : std::fmin(a, b);
    case BinaryOp::keep_where: return b != 0.0 ? a : 0.0;
  }
  return NAN;
}

// Maps a standard normal draw into the op's domain: positive for log, sqrt, rsqrt, pow and
// rdiv, away from the kink at 0 for relu and abs (so the numeric derivative is well defined).
inline double unary_domain(UnaryOp op, double v) {
  switch (op) {
    case UnaryOp::log:
    case UnaryOp::sqrt:
    case UnaryOp::rsqrt:
    case UnaryOp::pow_scalar:
    case UnaryOp::rdiv_scalar: return 0.1 + std::fabs(v);
    case UnaryOp::relu:
    case UnaryOp::abs: return v + (v >= 0 ? 0.05 : -0.05);
    default: return v;
  }
}

// Operand domains of the binary ops: a > 0 and |b| <= 2 for pow, |b| >= 0.25 for div, b zero
// about half the time for keep_where.
inline double binary_domain_a(BinaryOp op, double v) { return op == BinaryOp::pow ? 0.1 + std::fabs(v) : v; }
inline double binary_domain_b(BinaryOp op, double v) {
  if (op == BinaryOp::pow) return std::clamp(v, -2.0, 2.0);
  if (op == BinaryOp::div) return v >= 0 ? 0.25 + v : v - 0.25;
  if (op == BinaryOp::keep_where) return v > 0 ? v : 0.0;
  return v;
}

// Fresh standard normal values (pit::randn) mapped through `fn`, as a `dtype` tensor on `device`.
inline Tensor make_input(const Shape& shape, const std::function<double(double)>& fn,
                         DType dtype = DType::f64, Device device = Device::cpu()) {
  std::vector<double> v = randn(shape, DType::f64).to_vector<double>();
  for (double& e : v) e = fn(e);
  return from_vector(v, shape).to(device, dtype);
}
inline Tensor make_normal(const Shape& shape, DType dtype = DType::f64, Device device = Device::cpu()) {
  return make_input(shape, [](double v) { return v; }, dtype, device);
}
// Normal draws moved into unary op `op`'s domain (unary_domain).
inline Tensor unary_input(UnaryOp op, const Shape& shape, DType dtype = DType::f64, Device device = Device::cpu()) {
  return make_input(shape, [op](double v) { return unary_domain(op, v); }, dtype, device);
}

// The values of t in row-major order of its logical shape, as doubles, on the host.
inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// |got - want| <= atol + rtol * |want| everywhere; the failure names the worst absolute and
// relative errors and where they are.
inline ::testing::AssertionResult all_close(const std::vector<double>& got, const std::vector<double>& want,
                                            double rtol, double atol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes differ: got " << got.size() << ", want " << want.size();
  size_t bad = 0, worst_abs_at = 0, worst_rel_at = 0;
  double worst_abs = 0, worst_rel = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
    if (!both_nan && !(err <= atol + rtol * std::fabs(want[i]))) ++bad;
    if (!(err <= worst_abs)) {  // NaN counts as the worst
      worst_abs = err;
      worst_abs_at = i;
    }
    const double rel = err / std::max(std::fabs(want[i]), 1e-300);
    if (!(rel <= worst_rel)) {
      worst_rel = rel;
      worst_rel_at = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.size() << " elements outside rtol " << rtol << ", atol " << atol
         << "; worst abs error " << worst_abs << " at flat index " << worst_abs_at << " (got "
         << got[worst_abs_at] << ", want " << want[worst_abs_at] << "); worst rel error "
         << worst_rel << " at " << worst_rel_at << " (got " << got[worst_rel_at] << ", want "
         << want[worst_rel_at] << ")";
}
inline ::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shapes differ: got " << shape_str(got.shape())
                                         << ", want " << shape_str(want.shape());
  return all_close(values(got), values(want), rtol, atol);
}

// The message of the pit::Error that fn throws ("" when it throws none).
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Row-major reference of a (op) b with numpy broadcasting, by explicit index arithmetic.
inline std::vector<double> ref_broadcast(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out) {
  const std::vector<double> av = values(a), bv = values(b);
  const int64_t n = shape_numel(out), nd = static_cast<int64_t>(out.size());
  // Flat index into an operand of shape `s` (aligned at the last dim) of output index `idx`.
  const auto flat = [nd](const Shape& s, const std::vector<int64_t>& idx) {
    int64_t f = 0;
    const int64_t lead = nd - static_cast<int64_t>(s.size());
    for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d)
      f = f * s[d] + (s[d] == 1 ? 0 : idx[d + lead]);
    return f;
  };
  std::vector<double> r(static_cast<size_t>(n));
  std::vector<int64_t> idx(out.size());
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i;
    for (int64_t d = nd - 1; d >= 0; --d) {
      idx[d] = rem % out[d];
      rem /= out[d];
    }
    r[i] = ref_binary(op, av[flat(a.shape(), idx)], bv[flat(b.shape(), idx)]);
  }
  return r;
}

inline std::vector<double> ref_unary_all(UnaryOp op, const Tensor& x, double alpha) {
  std::vector<double> r = values(x);
  for (double& v : r) v = ref_unary(op, v, alpha);
  return r;
}

inline std::string name(UnaryOp op) { return unary_name(op); }
inline std::string name(BinaryOp op) { return binary_name(op); }

struct BroadcastCase {
  Shape a, b, out;
};

inline const std::vector<BroadcastCase> kBroadcastCases = {
    {{3, 1}, {1, 4}, {3, 4}},     {{2, 3, 4}, {4}, {2, 3, 4}}, {{4}, {2, 3, 4}, {2, 3, 4}},
    {{}, {2, 3}, {2, 3}},         {{2, 3}, {}, {2, 3}},        {{}, {}, {}},
    {{5, 1, 3}, {1, 4, 1}, {5, 4, 3}}, {{1}, {7}, {7}},        {{64, 33}, {33}, {64, 33}},
    {{0, 3}, {1, 3}, {0, 3}},     {{2, 0}, {2, 1}, {2, 0}},
    // rows whose length is a multiple of every vector width (the CUDA rows path): a bias row,
    // a column, both, and a bias over two merged leading dims
    {{64, 32}, {32}, {64, 32}},   {{64, 32}, {64, 1}, {64, 32}}, {{16, 1}, {1, 40}, {16, 40}},
    {{2, 3, 32}, {32}, {2, 3, 32}}};

// [2, 3, 2, 3, 2] as a transposed view of 9 dims: [2, 1, 3, 1, 2, 1, 3, 1, 2] with dims 0 and 8
// swapped. (Core copies take at most kMaxDims dims, so tests build and read such views from
// 5-dim tensors.)
inline Tensor nine_dim_view(const Tensor& base) {
  return base.view({2, 1, 3, 1, 2, 1, 3, 1, 2}).transpose(0, 8);
}

// Non-contiguous views of fresh normal f64 values, each of logical shape [5, 7] or [2, 3, 4].
inline std::vector<Tensor> views_5x7(DType dtype = DType::f64, Device device = Device::cpu()) {
  return {
      make_normal({7, 5}, dtype, device).t(),                              // transposed
      make_normal({5, 21}, dtype, device).slice(1, 1, 21, 3),              // step 3 along rows
      make_normal({10, 7}, dtype, device).slice(0, 1, 10, 2),              // every other row
      make_normal({1, 7}, dtype, device).expand({5, 7}),                   // broadcast rows
      make_normal({5, 1}, dtype, device).expand({5, 7}),                   // broadcast columns
      make_normal({5, 9}, dtype, device).slice(1, 1, 8),                   // trimmed rows
      make_normal({}, dtype, device).expand({5, 7}),                       // one element
  };
}

// f16/bf16 compute in f32 and round once on store, so the result is the f32 kernel's result on
// the same (exactly widened) inputs rounded to nearest: within half an ulp, a relative 2^-11
// (f16, 11-bit significand) or 2^-8 (bf16, 8-bit significand), plus half the smallest f16
// subnormal (2^-25) in absolute terms.
// The 1% slack covers f32 results that differ in the last bits between two loops.
inline double half_ulp(DType dt) { return dt == DType::f16 ? 0x1p-11 * 1.01 : 0x1p-8 * 1.01; }

// NaN through relu, maximum and minimum on `dev`, in every floating dtype of it: relu(NaN) is NaN
// (as in PyTorch; a NaN hidden as 0 would hide a divergence before it), and maximum / minimum
// give NaN where either side is NaN, whichever side.
inline void expect_nan_propagates(Device dev, const std::vector<DType>& dtypes) {
  const double nan = std::nan("");
  for (const DType dt : dtypes) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor x = from_vector(std::vector<double>{nan, -1.0, 2.0, nan}).to(dev, dt);
    const Tensor y = from_vector(std::vector<double>{1.0, nan, nan, nan}).to(dev, dt);
    const auto host = [](const Tensor& t) { return t.to(Device::cpu(), DType::f64).to_vector<double>(); };
    const std::vector<double> r = host(kernels::unary(UnaryOp::relu, x));
    EXPECT_TRUE(std::isnan(r[0]) && r[1] == 0.0 && r[2] == 2.0 && std::isnan(r[3]));
    for (const BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum})
      for (const bool swap : {false, true})
        for (const double v : host(swap ? kernels::binary(op, y, x) : kernels::binary(op, x, y)))
          EXPECT_TRUE(std::isnan(v)) << name(op) << (swap ? " (y, x)" : " (x, y)");
  }
}

}  // namespace pit::test::elementwise
