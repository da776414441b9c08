// kernels::unary / unary_backward / binary / broadcast_shapes / add_scaled_:
// - CPU f64 against references written here with <cmath> (independent of elementwise_op.h:
//   sigmoid as (1 + tanh(x/2)) / 2, gelu_erf through erfc, rsqrt as pow(x, -1/2), ...) and
//   unary_backward against a central difference of those references;
// - broadcasting, views (transposed, sliced with a step, expanded, permuted), dtype, device and
//   shape errors, zero-size tensors, f16/bf16 against f32, ragged sizes, add_scaled_ in place;
// - CUDA (skipped without a GPU): every op and dtype against the CPU kernels on the same inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/thread_pool.h"
#include "ops/kernels.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

const std::vector<UnaryOp> kUnaryOps = {
    UnaryOp::neg,       UnaryOp::exp,        UnaryOp::log,        UnaryOp::sqrt,
    UnaryOp::rsqrt,     UnaryOp::tanh,       UnaryOp::sigmoid,    UnaryOp::relu,
    UnaryOp::gelu_tanh, UnaryOp::gelu_erf,   UnaryOp::silu,       UnaryOp::abs,
    UnaryOp::add_scalar, UnaryOp::mul_scalar, UnaryOp::pow_scalar, UnaryOp::rsub_scalar,
    UnaryOp::rdiv_scalar};
const std::vector<BinaryOp> kBinaryOps = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                                          BinaryOp::div, BinaryOp::pow,     BinaryOp::maximum,
                                          BinaryOp::minimum, BinaryOp::keep_where};

// The scalar each unary op is tested with (the others ignore it).
double alpha_for(UnaryOp op) {
  switch (op) {
    case UnaryOp::add_scalar: return 0.75;
    case UnaryOp::mul_scalar: return -1.5;
    case UnaryOp::pow_scalar: return 1.7;
    case UnaryOp::rsub_scalar: return 2.0;
    case UnaryOp::rdiv_scalar: return 3.0;
    default: return 0.0;
  }
}

double ref_unary(UnaryOp op, double x, double a) {
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

double ref_binary(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return std::fmax(a, b);
    case BinaryOp::minimum: return std::fmin(a, b);
    case BinaryOp::keep_where: return b != 0.0 ? a : 0.0;
  }
  return NAN;
}

// d/dx ref_unary by a central difference in f64 (error ~ h^2 f''' + eps f / h, about 1e-10).
double numeric_derivative(UnaryOp op, double x, double a) {
  const double h = 1e-5 * std::max(1.0, std::fabs(x));
  return (ref_unary(op, x + h, a) - ref_unary(op, x - h, a)) / (2 * h);
}

// Maps a standard normal draw into the op's domain: positive for log, sqrt, rsqrt, pow and
// rdiv, away from the kink at 0 for relu and abs (so the numeric derivative is well defined).
double unary_domain(UnaryOp op, double v) {
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
double binary_domain_a(BinaryOp op, double v) { return op == BinaryOp::pow ? 0.1 + std::fabs(v) : v; }
double binary_domain_b(BinaryOp op, double v) {
  if (op == BinaryOp::pow) return std::clamp(v, -2.0, 2.0);
  if (op == BinaryOp::div) return v >= 0 ? 0.25 + v : v - 0.25;
  if (op == BinaryOp::keep_where) return v > 0 ? v : 0.0;
  return v;
}

// Fresh standard normal values (pit::randn) mapped through `fn`, as a `dtype` tensor on `device`.
Tensor make_input(const Shape& shape, const std::function<double(double)>& fn,
                  DType dtype = DType::f64, Device device = Device::cpu()) {
  std::vector<double> v = randn(shape, DType::f64).to_vector<double>();
  for (double& e : v) e = fn(e);
  return from_vector(v, shape).to(device, dtype);
}
Tensor make_normal(const Shape& shape, DType dtype = DType::f64, Device device = Device::cpu()) {
  return make_input(shape, [](double v) { return v; }, dtype, device);
}

// The values of t in row-major order of its logical shape, as doubles, on the host.
std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// |got - want| <= atol + rtol * |want| everywhere; the failure names the worst absolute and
// relative errors and where they are.
::testing::AssertionResult all_close(const std::vector<double>& got, const std::vector<double>& want,
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
::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shapes differ: got " << shape_str(got.shape())
                                         << ", want " << shape_str(want.shape());
  return all_close(values(got), values(want), rtol, atol);
}

// The message of the pit::Error that fn throws ("" when it throws none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Row-major reference of a (op) b with numpy broadcasting, by explicit index arithmetic.
std::vector<double> ref_broadcast(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out) {
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

std::vector<double> ref_unary_all(UnaryOp op, const Tensor& x, double alpha) {
  std::vector<double> r = values(x);
  for (double& v : r) v = ref_unary(op, v, alpha);
  return r;
}

std::string name(UnaryOp op) { return unary_name(op); }
std::string name(BinaryOp op) { return binary_name(op); }

}  // namespace

// ---- CPU, f64, against the references ------------------------------------------------------

TEST(ElementwiseCpu, UnaryF64MatchesCmathReference) {
  manual_seed(1);
  for (UnaryOp op : kUnaryOps) {
    const double alpha = alpha_for(op);
    const Tensor x = make_input({37, 29}, [op](double v) { return unary_domain(op, v); });
    const Tensor y = kernels::unary(op, x, alpha);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(y.dtype(), DType::f64);
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_TRUE(all_close(values(y), ref_unary_all(op, x, alpha), 1e-12, 1e-14)) << name(op);
  }
}

TEST(ElementwiseCpu, UnaryBackwardF64MatchesNumericDerivative) {
  manual_seed(2);
  for (UnaryOp op : kUnaryOps) {
    const double alpha = alpha_for(op);
    const Tensor x = make_input({23, 19}, [op](double v) { return unary_domain(op, v); });
    const Tensor y = kernels::unary(op, x, alpha);
    const Tensor gy = make_normal({23, 19});
    const Tensor gx = kernels::unary_backward(op, gy, x, y, alpha);
    ASSERT_EQ(gx.shape(), x.shape());
    const std::vector<double> xv = values(x), gv = values(gy);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = gv[i] * numeric_derivative(op, xv[i], alpha);
    EXPECT_TRUE(all_close(values(gx), want, 1e-6, 1e-8)) << name(op);
  }
}

TEST(ElementwiseCpu, BinaryF64MatchesCmathReference) {
  manual_seed(3);
  for (BinaryOp op : kBinaryOps) {
    const Tensor a = make_input({31, 33}, [op](double v) { return binary_domain_a(op, v); });
    const Tensor b = make_input({31, 33}, [op](double v) { return binary_domain_b(op, v); });
    const Tensor z = kernels::binary(op, a, b);
    EXPECT_EQ(z.shape(), (Shape{31, 33}));
    EXPECT_TRUE(all_close(values(z), ref_broadcast(op, a, b, {31, 33}), 1e-12, 1e-14)) << name(op);
  }
}

// ---- broadcasting ------------------------------------------------------------------------------

TEST(ElementwiseCpu, BroadcastShapes) {
  EXPECT_EQ(kernels::broadcast_shapes({3, 1}, {1, 4}), (Shape{3, 4}));
  EXPECT_EQ(kernels::broadcast_shapes({2, 3, 4}, {4}), (Shape{2, 3, 4}));
  EXPECT_EQ(kernels::broadcast_shapes({4}, {2, 3, 4}), (Shape{2, 3, 4}));
  EXPECT_EQ(kernels::broadcast_shapes({}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(kernels::broadcast_shapes({}, {}), Shape{});
  EXPECT_EQ(kernels::broadcast_shapes({0, 3}, {1, 3}), (Shape{0, 3}));
  EXPECT_EQ(kernels::broadcast_shapes({5, 1, 0}, {1, 7, 1}), (Shape{5, 7, 0}));
}

struct BroadcastCase {
  Shape a, b, out;
};

const std::vector<BroadcastCase> kBroadcastCases = {
    {{3, 1}, {1, 4}, {3, 4}},     {{2, 3, 4}, {4}, {2, 3, 4}}, {{4}, {2, 3, 4}, {2, 3, 4}},
    {{}, {2, 3}, {2, 3}},         {{2, 3}, {}, {2, 3}},        {{}, {}, {}},
    {{5, 1, 3}, {1, 4, 1}, {5, 4, 3}}, {{1}, {7}, {7}},        {{64, 33}, {33}, {64, 33}},
    {{0, 3}, {1, 3}, {0, 3}},     {{2, 0}, {2, 1}, {2, 0}},
    // rows whose length is a multiple of every vector width (the CUDA rows path): a bias row,
    // a column, both, and a bias over two merged leading dims
    {{64, 32}, {32}, {64, 32}},   {{64, 32}, {64, 1}, {64, 32}}, {{16, 1}, {1, 40}, {16, 40}},
    {{2, 3, 32}, {32}, {2, 3, 32}}};

TEST(ElementwiseCpu, BinaryBroadcastsLikeNumpy) {
  manual_seed(4);
  for (const BroadcastCase& c : kBroadcastCases) {
    for (BinaryOp op : kBinaryOps) {
      const Tensor a = make_input(c.a, [op](double v) { return binary_domain_a(op, v); });
      const Tensor b = make_input(c.b, [op](double v) { return binary_domain_b(op, v); });
      const Tensor z = kernels::binary(op, a, b);
      ASSERT_EQ(z.shape(), c.out) << shape_str(c.a) << " x " << shape_str(c.b);
      EXPECT_TRUE(all_close(values(z), ref_broadcast(op, a, b, c.out), 1e-12, 1e-14))
          << name(op) << " " << shape_str(c.a) << " x " << shape_str(c.b);
    }
  }
}

TEST(ElementwiseCpu, BadBroadcastThrowsNamingBothShapes) {
  const std::string msg = error_of([] { kernels::broadcast_shapes({2, 3}, {4}); });
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  const std::string msg2 = error_of([] {
    kernels::binary(BinaryOp::add, zeros({2, 3}, DType::f64), zeros({3, 2}, DType::f64));
  });
  EXPECT_NE(msg2.find("[2, 3]"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("[3, 2]"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("add"), std::string::npos) << msg2;
  EXPECT_NE(error_of([] { kernels::broadcast_shapes({0}, {3}); }), "");
}

// ---- views -------------------------------------------------------------------------------------

// [2, 3, 2, 3, 2] as a transposed view of 9 dims: [2, 1, 3, 1, 2, 1, 3, 1, 2] with dims 0 and 8
// swapped. (Core copies take at most kMaxDims dims, so tests build and read such views from
// 5-dim tensors.)
Tensor nine_dim_view(const Tensor& base) {
  return base.view({2, 1, 3, 1, 2, 1, 3, 1, 2}).transpose(0, 8);
}
Tensor squeeze_nine(const Tensor& t) { return t.squeeze(7).squeeze(5).squeeze(3).squeeze(1); }

// Non-contiguous views of fresh normal f64 values, each of logical shape [5, 7] or [2, 3, 4].
std::vector<Tensor> views_5x7(DType dtype = DType::f64, Device device = Device::cpu()) {
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

TEST(ElementwiseCpu, NonContiguousInputs) {
  manual_seed(5);
  for (const Tensor& v : views_5x7()) {
    ASSERT_EQ(v.shape(), (Shape{5, 7}));
    // unary ops without domain limits
    for (UnaryOp op : {UnaryOp::exp, UnaryOp::gelu_erf, UnaryOp::mul_scalar}) {
      const double alpha = alpha_for(op);
      EXPECT_TRUE(all_close(values(kernels::unary(op, v, alpha)), ref_unary_all(op, v, alpha), 1e-12, 1e-14))
          << name(op) << " strides " << shape_str(v.strides());
    }
    // binary with every other view as the second operand
    for (const Tensor& w : views_5x7())
      for (BinaryOp op : {BinaryOp::sub, BinaryOp::maximum}) {
        EXPECT_TRUE(all_close(values(kernels::binary(op, v, w)), ref_broadcast(op, v, w, {5, 7}), 0, 0))
            << name(op) << " strides " << shape_str(v.strides()) << " and " << shape_str(w.strides());
      }
    // backward with a non-contiguous grad_y and x
    const Tensor y = kernels::unary(UnaryOp::tanh, v);
    const Tensor gx = kernels::unary_backward(UnaryOp::tanh, v, v, y);
    const std::vector<double> xv = values(v);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] * (1 - std::tanh(xv[i]) * std::tanh(xv[i]));
    EXPECT_TRUE(all_close(values(gx), want, 1e-12, 1e-14)) << "strides " << shape_str(v.strides());
  }
}

TEST(ElementwiseCpu, PermutedAndPartlyMergeableViews) {
  manual_seed(6);
  // [4, 6, 8] sliced along the last dim: dims 0 and 1 merge, the last does not.
  const Tensor a = make_normal({4, 6, 8}).slice(2, 0, 5);
  const Tensor b = make_normal({6, 5, 4}).permute({2, 0, 1});
  ASSERT_EQ(b.shape(), (Shape{4, 6, 5}));
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::mul, a, b)),
                        ref_broadcast(BinaryOp::mul, a, b, {4, 6, 5}), 0, 0));
  EXPECT_TRUE(all_close(values(kernels::unary(UnaryOp::silu, a)), ref_unary_all(UnaryOp::silu, a, 0),
                        1e-12, 1e-14));
  // Nine dims, four of them of size 1, transposed: more than kMaxDims until size-1 dims drop.
  const Tensor c = nine_dim_view(make_normal({2, 3, 2, 3, 2}));
  const Tensor y = kernels::unary(UnaryOp::neg, c);
  ASSERT_EQ(y.shape(), c.shape());
  EXPECT_TRUE(all_close(values(y.view({2, 3, 2, 3, 2})),
                        ref_unary_all(UnaryOp::neg, squeeze_nine(c), 0), 0, 0));
  // Ten contiguous dims: one dense run.
  const Tensor d = make_normal({2, 2, 2, 2, 2, 2, 2, 2, 2, 3});
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::add, d, d)),
                        ref_broadcast(BinaryOp::add, d, d, d.shape()), 0, 0));
}

// Views large enough for the CPU kernels to split them over threads, in chunks that start and
// end inside rows (the GPU runs the same shapes through its strided path).
TEST(ElementwiseCpu, LargeViewsSplitAcrossThreads) {
  manual_seed(12);
  const int saved = num_threads();
  set_num_threads(4);
  const Tensor a = make_normal({300, 401}).t();          // [401, 300], transposed
  const Tensor b = make_normal({300});                    // a broadcast row
  const Tensor c = make_normal({401, 1}).expand({401, 300});
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::add, a, b)),
                        ref_broadcast(BinaryOp::add, a, b, {401, 300}), 0, 0));
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::div, c, a)),
                        ref_broadcast(BinaryOp::div, c, a, {401, 300}), 1e-15, 0));
  EXPECT_TRUE(all_close(values(kernels::unary(UnaryOp::exp, a)), ref_unary_all(UnaryOp::exp, a, 0),
                        1e-12, 0));
  Tensor dst = make_normal({401, 600});
  Tensor view = dst.slice(1, 0, 600, 2);
  const std::vector<double> before = values(view);
  kernels::add_scaled_(view, a, 1.0);
  const std::vector<double> av = values(a);
  std::vector<double> want(before.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = before[i] + av[i];
  EXPECT_TRUE(all_close(values(view), want, 0, 0));
  set_num_threads(saved);
}

// ---- errors ------------------------------------------------------------------------------------

TEST(ElementwiseCpu, MixedDtypesThrowNamingBoth) {
  const Tensor a = ones({2, 3}, DType::f32), b = ones({2, 3}, DType::f64);
  const std::string msg = error_of([&] { kernels::binary(BinaryOp::add, a, b); });
  EXPECT_NE(msg.find("f32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("add"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { kernels::unary_backward(UnaryOp::exp, b, b, a); }).find("f32"),
            std::string::npos);
  Tensor dst = ones({2, 3}, DType::f64);
  EXPECT_NE(error_of([&] { kernels::add_scaled_(dst, a); }).find("f32"), std::string::npos);
}

TEST(ElementwiseCpu, OtherBadCallsThrow) {
  const Tensor ints = arange(6, DType::i32);
  EXPECT_NE(error_of([&] { kernels::unary(UnaryOp::exp, ints); }).find("i32"), std::string::npos);
  EXPECT_NE(error_of([&] { kernels::binary(BinaryOp::add, ints, ints); }).find("i32"), std::string::npos);
  EXPECT_NE(error_of([] { kernels::unary(UnaryOp::exp, Tensor()); }).find("undefined"), std::string::npos);
  const Tensor x = ones({2, 3}, DType::f64);
  const std::string msg = error_of([&] { kernels::unary_backward(UnaryOp::exp, ones({3, 2}, DType::f64), x, x); });
  EXPECT_NE(msg.find("[3, 2]"), std::string::npos) << msg;
  Tensor dst = ones({2, 3}, DType::f64);
  EXPECT_NE(error_of([&] { kernels::add_scaled_(dst, ones({4}, DType::f64)); }), "");
  Tensor expanded = ones({1, 3}, DType::f64).expand({2, 3});
  EXPECT_NE(error_of([&] { kernels::add_scaled_(expanded, x); }).find("broadcast"), std::string::npos);
}

TEST(ElementwiseCpu, ZeroSizeTensors) {
  const Tensor x = zeros({0, 3}, DType::f64);
  EXPECT_EQ(kernels::unary(UnaryOp::exp, x).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::unary_backward(UnaryOp::exp, x, x, x).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::binary(BinaryOp::add, x, ones({1, 3}, DType::f64)).shape(), (Shape{0, 3}));
  Tensor dst = zeros({0, 3}, DType::f64);
  EXPECT_EQ(kernels::add_scaled_(dst, x).shape(), (Shape{0, 3}));
}

// ---- f16 / bf16 on the CPU ---------------------------------------------------------------------

// f16/bf16 compute in f32 and round once on store, so the result is the f32 kernel's result on
// the same (exactly widened) inputs rounded to nearest: within half an ulp, a relative 2^-11
// (f16, 11-bit significand) or 2^-8 (bf16, 8-bit significand), plus half the smallest f16
// subnormal (2^-25) in absolute terms.
// The 1% slack covers f32 results that differ in the last bits between two loops.
double half_ulp(DType dt) { return dt == DType::f16 ? 0x1p-11 * 1.01 : 0x1p-8 * 1.01; }

TEST(ElementwiseCpu, HalfAndBFloat16MatchF32Reference) {
  manual_seed(7);
  for (DType dt : {DType::f16, DType::bf16}) {
    const double rtol = half_ulp(dt), atol = 0x1p-25;
    for (UnaryOp op : kUnaryOps) {
      const double alpha = alpha_for(op);
      const Tensor x = make_input({257}, [op](double v) { return unary_domain(op, v); }, dt);
      const Tensor y = kernels::unary(op, x, alpha);
      ASSERT_EQ(y.dtype(), dt);
      const Tensor y32 = kernels::unary(op, x.to(DType::f32), alpha);
      EXPECT_TRUE(all_close(y, y32, rtol, atol)) << name(op) << " " << dt;
      const Tensor gy = make_normal({257}, dt);
      const Tensor gx = kernels::unary_backward(op, gy, x, y, alpha);
      const Tensor gx32 = kernels::unary_backward(op, gy.to(DType::f32), x.to(DType::f32),
                                                  y.to(DType::f32), alpha);
      EXPECT_TRUE(all_close(gx, gx32, rtol, atol)) << name(op) << " backward " << dt;
    }
    for (BinaryOp op : kBinaryOps) {
      const Tensor a = make_input({9, 31}, [op](double v) { return binary_domain_a(op, v); }, dt);
      const Tensor b = make_input({31}, [op](double v) { return binary_domain_b(op, v); }, dt);
      const Tensor z = kernels::binary(op, a, b);
      ASSERT_EQ(z.dtype(), dt);
      EXPECT_TRUE(all_close(z, kernels::binary(op, a.to(DType::f32), b.to(DType::f32)), rtol, atol))
          << name(op) << " " << dt;
    }
  }
}

// ---- ragged sizes ------------------------------------------------------------------------------

TEST(ElementwiseCpu, RaggedSizes) {
  manual_seed(8);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
    const Tensor x = make_normal({n}, DType::f32), w = make_normal({n}, DType::f32);
    // f32 results against f64 references on the same (f32) inputs.
    EXPECT_TRUE(all_close(values(kernels::unary(UnaryOp::sigmoid, x)),
                          ref_unary_all(UnaryOp::sigmoid, x, 0), 1e-6, 1e-7)) << n;
    EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::mul, x, w)),
                          ref_broadcast(BinaryOp::mul, x, w, {n}), 1e-6, 0)) << n;
    const Tensor y = kernels::unary(UnaryOp::exp, x);
    const std::vector<double> xv = values(x), wv = values(w);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = wv[i] * std::exp(xv[i]);
    EXPECT_TRUE(all_close(values(kernels::unary_backward(UnaryOp::exp, w, x, y)), want, 1e-6, 1e-7)) << n;
  }
}

// ---- add_scaled_ -------------------------------------------------------------------------------

TEST(ElementwiseCpu, AddScaledUpdatesOnlyTheView) {
  manual_seed(9);
  Tensor dst = make_normal({6, 10});
  const std::vector<double> before = values(dst);
  Tensor view = dst.slice(1, 2, 8, 2);  // columns 2, 4, 6
  const Tensor b = make_normal({6, 3});
  const std::vector<double> bv = values(b);
  Tensor& r = kernels::add_scaled_(view, b, -0.5);
  EXPECT_EQ(&r, &view);
  const std::vector<double> after = values(dst);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 10; ++j) {
      const size_t k = static_cast<size_t>(i * 10 + j);
      if (j >= 2 && j < 8 && j % 2 == 0)
        EXPECT_DOUBLE_EQ(after[k], before[k] - 0.5 * bv[static_cast<size_t>(i * 3 + (j - 2) / 2)]);
      else
        EXPECT_EQ(after[k], before[k]) << "element (" << i << ", " << j << ") outside the view changed";
    }
}

TEST(ElementwiseCpu, AddScaledBroadcastAliasAndOverlap) {
  manual_seed(10);
  Tensor a = make_normal({4, 5});
  const std::vector<double> av = values(a);
  const Tensor row = make_normal({5});
  const std::vector<double> rv = values(row);
  kernels::add_scaled_(a, row, 2.0);
  std::vector<double> want(av.size());
  for (size_t i = 0; i < av.size(); ++i) want[i] = av[i] + 2.0 * rv[i % 5];
  EXPECT_TRUE(all_close(values(a), want, 1e-15, 0));

  // b is a itself: a += 1.5 a
  const std::vector<double> a2 = values(a);
  kernels::add_scaled_(a, a, 1.5);
  for (size_t i = 0; i < a2.size(); ++i) want[i] = a2[i] + 1.5 * a2[i];
  EXPECT_TRUE(all_close(values(a), want, 1e-15, 0));

  // b overlaps a shifted by one element: b must be read before a is written.
  Tensor base = make_normal({100});
  const std::vector<double> bb = values(base);
  Tensor dst = base.slice(0, 1, 100);
  kernels::add_scaled_(dst, base.slice(0, 0, 99), 1.0);
  const std::vector<double> got = values(base);
  EXPECT_EQ(got[0], bb[0]);
  for (size_t i = 1; i < 100; ++i) EXPECT_DOUBLE_EQ(got[i], bb[i] + bb[i - 1]) << i;
}

TEST(ElementwiseCpu, AddScaledReducedAndRagged) {
  manual_seed(11);
  for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
      Tensor a = make_normal({n}, dt);
      const Tensor b = make_normal({n}, dt);
      // Reference: the same update in f32, rounded once.
      Tensor want = a.to(DType::f32).clone();
      kernels::add_scaled_(want, b.to(DType::f32), 0.25);
      kernels::add_scaled_(a, b, 0.25);
      const double rtol = dt == DType::f32 ? 0 : half_ulp(dt);
      EXPECT_TRUE(all_close(a, want, rtol, 0x1p-25)) << dt << " n=" << n;
    }
  }
}

// ---- CUDA: against the CPU kernels on the same inputs -----------------------------------------
//
// Tolerances (GPU vs CPU). Both sides read identical inputs, compute in f32 (f64 for f64) with
// the same formulas and round once, so they differ only where the device math functions (expf,
// tanhf, erff, powf, ...) differ from the host's by a few ulp or where nvcc contracts a*b + c
// into an fma:
//   f32:  rtol 1e-5,  atol 2e-6  (a few f32 ulp; atol for cancellation near zeros of a result)
//   f64:  rtol 1e-12, atol 1e-13
//   bf16: rtol 1e-2,  atol 1e-3  (one bf16 ulp, 2^-8 = 3.9e-3, when the f32 values straddle a
//                                 rounding boundary)
//   f16:  rtol 2e-3,  atol 1e-4  (one f16 ulp, 2^-10 = 9.8e-4, likewise)

namespace {

struct Tol {
  double rtol, atol;
};
Tol gpu_tol(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-12, 1e-13};
    case DType::bf16: return {1e-2, 1e-3};
    case DType::f16: return {2e-3, 1e-4};
    default: return {1e-5, 2e-6};
  }
}

const std::vector<DType> kGpuDtypes = {DType::f32, DType::bf16, DType::f16, DType::f64};

::testing::AssertionResult gpu_matches_cpu(const Tensor& gpu, const Tensor& cpu) {
  if (!gpu.is_cuda()) return ::testing::AssertionFailure() << "the result is on " << gpu.device();
  if (gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << "dtype " << gpu.dtype() << ", want " << cpu.dtype();
  const Tol t = gpu_tol(gpu.dtype());
  return all_close(gpu, cpu, t.rtol, t.atol);
}

const Device kCpu = Device::cpu();

}  // namespace

TEST(ElementwiseCuda, UnaryMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(20);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes)
    for (UnaryOp op : kUnaryOps) {
      const double alpha = alpha_for(op);
      // 129 * 67 = 8643 elements: not a multiple of any vector width.
      const Tensor x = make_input({129, 67}, [op](double v) { return unary_domain(op, v); }, dt, gpu);
      EXPECT_TRUE(gpu_matches_cpu(kernels::unary(op, x, alpha), kernels::unary(op, x.to(kCpu), alpha)))
          << name(op) << " " << dt;
    }
}

TEST(ElementwiseCuda, UnaryBackwardMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(21);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes)
    for (UnaryOp op : kUnaryOps) {
      const double alpha = alpha_for(op);
      const Tensor x = make_input({129, 67}, [op](double v) { return unary_domain(op, v); }, dt, gpu);
      const Tensor y = kernels::unary(op, x, alpha);
      const Tensor gy = make_normal({129, 67}, dt, gpu);
      EXPECT_TRUE(gpu_matches_cpu(kernels::unary_backward(op, gy, x, y, alpha),
                                  kernels::unary_backward(op, gy.to(kCpu), x.to(kCpu), y.to(kCpu), alpha)))
          << name(op) << " " << dt;
    }
}

TEST(ElementwiseCuda, BinaryMatchesCpuWithBroadcasting) {
  PIT_REQUIRE_CUDA();
  manual_seed(22);
  const Device gpu = Device::cuda();
  std::vector<BroadcastCase> cases = kBroadcastCases;
  cases.push_back({{129, 67}, {129, 67}, {129, 67}});
  cases.push_back({{1000003}, {}, {1000003}});  // a broadcast scalar on the dense path
  cases.push_back({{}, {1000003}, {1000003}});
  for (DType dt : kGpuDtypes)
    for (BinaryOp op : kBinaryOps)
      for (const BroadcastCase& c : cases) {
        const Tensor a = make_input(c.a, [op](double v) { return binary_domain_a(op, v); }, dt, gpu);
        const Tensor b = make_input(c.b, [op](double v) { return binary_domain_b(op, v); }, dt, gpu);
        const Tensor z = kernels::binary(op, a, b);
        ASSERT_EQ(z.shape(), c.out);
        EXPECT_TRUE(gpu_matches_cpu(z, kernels::binary(op, a.to(kCpu), b.to(kCpu))))
            << name(op) << " " << dt << " " << shape_str(c.a) << " x " << shape_str(c.b);
      }
  // Rows that cannot take vector accesses: a bias starting at element 1 (misaligned), and rows
  // 33 elements apart (row starts misaligned).
  for (DType dt : kGpuDtypes) {
    const Tensor m = make_normal({64, 32}, dt, gpu), bias = make_normal({33}, dt, gpu).slice(0, 1, 33);
    const Tensor rows33 = make_normal({64, 33}, dt, gpu).slice(1, 0, 32);
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::add, m, bias),
                                kernels::binary(BinaryOp::add, m.to(kCpu), bias.to(kCpu)))) << dt;
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::mul, rows33, bias),
                                kernels::binary(BinaryOp::mul, rows33.to(kCpu), bias.to(kCpu)))) << dt;
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::sub, bias, rows33),
                                kernels::binary(BinaryOp::sub, bias.to(kCpu), rows33.to(kCpu)))) << dt;
  }
}

TEST(ElementwiseCuda, RaggedSizesAndMisalignedViews) {
  PIT_REQUIRE_CUDA();
  manual_seed(23);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes)
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
      const Tensor pos = make_input({n + 1}, [](double v) { return 0.1 + std::fabs(v); }, dt, gpu);
      const Tensor nrm = make_normal({n + 1}, dt, gpu);
      // Starting at element 1: the data pointer is 2, 4 or 8 bytes past a 16-byte boundary.
      for (int64_t start : {0, 1}) {
        const Tensor x = pos.slice(0, start, start + n), g = nrm.slice(0, start, start + n);
        const Tensor xa = pos.slice(0, 0, n);  // aligned partner for mixed alignment
        const std::string where = std::string(dtype_name(dt)) + " n=" + std::to_string(n) +
                                  " start=" + std::to_string(start);
        for (UnaryOp op : {UnaryOp::sigmoid, UnaryOp::gelu_tanh, UnaryOp::pow_scalar}) {
          const double alpha = alpha_for(op);
          const Tensor y = kernels::unary(op, x, alpha);
          EXPECT_TRUE(gpu_matches_cpu(y, kernels::unary(op, x.to(kCpu), alpha))) << name(op) << " " << where;
          EXPECT_TRUE(gpu_matches_cpu(kernels::unary_backward(op, g, x, y, alpha),
                                      kernels::unary_backward(op, g.to(kCpu), x.to(kCpu), y.to(kCpu), alpha)))
              << name(op) << " backward " << where;
        }
        // x and xa are positive (pow's base and div's divisor); g is normal.
        for (BinaryOp op : {BinaryOp::div, BinaryOp::pow, BinaryOp::maximum}) {
          const Tensor& first = op == BinaryOp::pow ? xa : g;
          EXPECT_TRUE(gpu_matches_cpu(kernels::binary(op, first, x),
                                      kernels::binary(op, first.to(kCpu), x.to(kCpu))))
              << name(op) << " " << where;
          EXPECT_TRUE(gpu_matches_cpu(kernels::binary(op, x, xa), kernels::binary(op, x.to(kCpu), xa.to(kCpu))))
              << name(op) << " (x first, aligned b) " << where;
        }
      }
    }
}

TEST(ElementwiseCuda, NonContiguousInputsMatchCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(24);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes) {
    const std::vector<Tensor> views = views_5x7(dt, gpu);
    for (const Tensor& v : views) {
      const Tensor vc = v.to(kCpu);
      for (UnaryOp op : {UnaryOp::exp, UnaryOp::gelu_erf, UnaryOp::mul_scalar})
        EXPECT_TRUE(gpu_matches_cpu(kernels::unary(op, v, alpha_for(op)), kernels::unary(op, vc, alpha_for(op))))
            << name(op) << " " << dt << " strides " << shape_str(v.strides());
      for (const Tensor& w : views)
        EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::sub, v, w),
                                    kernels::binary(BinaryOp::sub, vc, w.to(kCpu))))
            << dt << " strides " << shape_str(v.strides()) << " and " << shape_str(w.strides());
      const Tensor y = kernels::unary(UnaryOp::tanh, v);
      EXPECT_TRUE(gpu_matches_cpu(kernels::unary_backward(UnaryOp::tanh, v, v, y),
                                  kernels::unary_backward(UnaryOp::tanh, vc, vc, y.to(kCpu))))
          << dt << " strides " << shape_str(v.strides());
    }
    const Tensor a = make_normal({4, 6, 8}, dt, gpu).slice(2, 0, 5);
    const Tensor b = make_normal({6, 5, 4}, dt, gpu).permute({2, 0, 1});
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::mul, a, b),
                                kernels::binary(BinaryOp::mul, a.to(kCpu), b.to(kCpu)))) << dt;
    const Tensor big = make_normal({300, 401}, dt, gpu).t(), row = make_normal({300}, dt, gpu);
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::add, big, row),
                                kernels::binary(BinaryOp::add, big.to(kCpu), row.to(kCpu)))) << dt;
    const Tensor c5 = make_normal({2, 3, 2, 3, 2}, dt, gpu);
    const Tensor c = nine_dim_view(c5), c_cpu = nine_dim_view(c5.to(kCpu));
    EXPECT_TRUE(gpu_matches_cpu(kernels::unary(UnaryOp::neg, c).view({2, 3, 2, 3, 2}),
                                kernels::unary(UnaryOp::neg, c_cpu).view({2, 3, 2, 3, 2}))) << dt;
  }
}

TEST(ElementwiseCuda, AddScaledMatchesCpuAndUpdatesOnlyTheView) {
  PIT_REQUIRE_CUDA();
  manual_seed(25);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes) {
    // A strided view: the other columns must keep their bits.
    Tensor dst = make_normal({6, 10}, dt, gpu);
    Tensor dst_cpu = dst.to(kCpu).clone();
    const std::vector<double> before = values(dst);
    const Tensor b = make_normal({6, 3}, dt, gpu);
    Tensor view = dst.slice(1, 2, 8, 2);
    Tensor view_cpu = dst_cpu.slice(1, 2, 8, 2);
    EXPECT_EQ(&kernels::add_scaled_(view, b, -0.5), &view);
    kernels::add_scaled_(view_cpu, b.to(kCpu), -0.5);
    EXPECT_TRUE(gpu_matches_cpu(dst, dst_cpu)) << dt;
    const std::vector<double> after = values(dst);
    for (size_t k = 0; k < after.size(); ++k) {
      const int64_t j = static_cast<int64_t>(k % 10);
      if (!(j >= 2 && j < 8 && j % 2 == 0)) {
        EXPECT_EQ(after[k], before[k]) << dt << ": element " << k << " outside the view changed";
      }
    }
    // Dense (vector path), ragged, and misaligned destinations; a broadcast row.
    for (int64_t n : {int64_t{7}, int64_t{1000003}})
      for (int64_t start : {0, 1}) {
        Tensor base = make_normal({n + 1}, dt, gpu);
        Tensor base_cpu = base.to(kCpu).clone();
        const Tensor src = make_normal({n}, dt, gpu);
        Tensor a = base.slice(0, start, start + n), a_cpu = base_cpu.slice(0, start, start + n);
        kernels::add_scaled_(a, src, 0.25);
        kernels::add_scaled_(a_cpu, src.to(kCpu), 0.25);
        EXPECT_TRUE(gpu_matches_cpu(base, base_cpu)) << dt << " n=" << n << " start=" << start;
      }
    Tensor m = make_normal({33, 17}, dt, gpu);
    Tensor m_cpu = m.to(kCpu).clone();
    const Tensor row = make_normal({17}, dt, gpu);
    kernels::add_scaled_(m, row, 2.0);
    kernels::add_scaled_(m_cpu, row.to(kCpu), 2.0);
    EXPECT_TRUE(gpu_matches_cpu(m, m_cpu)) << dt << " broadcast row";
  }
}

TEST(ElementwiseCuda, RunsOnTheCurrentStream) {
  PIT_REQUIRE_CUDA();
  manual_seed(26);
  const Device gpu = Device::cuda();
  const Tensor x = make_normal({4099}, DType::f32, gpu);
  const Tensor x_cpu = x.to(kCpu);
  Stream stream(gpu);
  Tensor y, z;
  {
    StreamGuard guard(stream);
    y = kernels::unary(UnaryOp::exp, x);
    z = kernels::binary(BinaryOp::mul, y, x);
    stream.synchronize();
  }
  EXPECT_TRUE(gpu_matches_cpu(y, kernels::unary(UnaryOp::exp, x_cpu)));
  EXPECT_TRUE(gpu_matches_cpu(z, kernels::binary(BinaryOp::mul, kernels::unary(UnaryOp::exp, x_cpu), x_cpu)));
}

TEST(ElementwiseCuda, ZeroSizeAndMixedDevices) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor e = zeros({0, 3}, DType::f32, gpu);
  EXPECT_EQ(kernels::unary(UnaryOp::exp, e).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::binary(BinaryOp::add, e, ones({3}, DType::f32, gpu)).shape(), (Shape{0, 3}));
  const std::string msg = error_of([&] {
    kernels::binary(BinaryOp::add, ones({3}, DType::f32, gpu), ones({3}, DType::f32));
  });
  EXPECT_NE(msg.find("cpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
}
