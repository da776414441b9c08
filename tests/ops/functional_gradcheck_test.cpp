// Finite-difference gradient checks (f64, CPU) of every differentiable op in ops/functional.h.
#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/operators.h"

using namespace pit;

namespace {

Tensor randn64(const Shape& shape) { return randn(shape, DType::f64); }
// Uniform in [lo, hi): keeps inputs inside a domain (log, sqrt) or away from kinks (relu, abs).
Tensor uniform64(const Shape& shape, double lo, double hi) {
  Tensor u = rand(shape, DType::f64);
  const std::vector<double> v = u.to_vector<double>();
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = lo + (hi - lo) * v[i];
  return from_vector(out, shape);
}
// Values of magnitude in [0.1, 2) with random signs: never within 0.1 of the kink at 0.
Tensor away_from_zero(const Shape& shape) {
  const std::vector<double> m = uniform64(shape, 0.1, 2.0).to_vector<double>();
  const std::vector<double> s = rand(shape, DType::f64).to_vector<double>();
  std::vector<double> out(m.size());
  for (size_t i = 0; i < m.size(); ++i) out[i] = s[i] < 0.5 ? -m[i] : m[i];
  return from_vector(out, shape);
}

void expect_gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                      const std::vector<Tensor>& inputs) {
  const GradcheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.report;
}

class GradcheckTest : public ::testing::Test {
 protected:
  void SetUp() override { manual_seed(42); }
};

}  // namespace

TEST_F(GradcheckTest, BinaryOpsWithBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes{{{3, 4}, {3, 4}}, {{3, 1}, {1, 4}},
                                                    {{2, 3, 4}, {4}}, {{}, {2, 3}}};
  for (const auto& [sa, sb] : shapes) {
    SCOPED_TRACE(shape_str(sa) + " x " + shape_str(sb));
    expect_gradcheck([](const auto& v) { return v[0] + v[1]; }, {randn64(sa), randn64(sb)});
    expect_gradcheck([](const auto& v) { return v[0] - v[1]; }, {randn64(sa), randn64(sb)});
    expect_gradcheck([](const auto& v) { return v[0] * v[1]; }, {randn64(sa), randn64(sb)});
    expect_gradcheck([](const auto& v) { return v[0] / v[1]; }, {randn64(sa), away_from_zero(sb)});
  }
}

TEST_F(GradcheckTest, UnaryOps) {
  const Shape s{3, 5};
  const std::vector<std::pair<const char*, std::function<Variable(const Variable&)>>> smooth{
      {"neg", [](const Variable& x) { return ops::neg(x); }},
      {"exp", [](const Variable& x) { return ops::exp(x); }},
      {"tanh", [](const Variable& x) { return ops::tanh(x); }},
      {"sigmoid", [](const Variable& x) { return ops::sigmoid(x); }},
      {"gelu_erf", [](const Variable& x) { return ops::gelu(x); }},
      {"gelu_tanh", [](const Variable& x) { return ops::gelu(x, ops::GeluApprox::tanh); }},
      {"silu", [](const Variable& x) { return ops::silu(x); }},
      {"add_scalar", [](const Variable& x) { return x + 2.5; }},
      {"mul_scalar", [](const Variable& x) { return x * -1.5; }},
      {"rsub_scalar", [](const Variable& x) { return 3.0 - x; }}};
  for (const auto& [name, f] : smooth) {
    SCOPED_TRACE(name);
    expect_gradcheck([&f = f](const auto& v) { return f(v[0]); }, {randn64(s)});
  }
  // Ops with a restricted domain or a kink: inputs kept away from trouble.
  const std::vector<std::pair<const char*, std::function<Variable(const Variable&)>>> positive{
      {"log", [](const Variable& x) { return ops::log(x); }},
      {"sqrt", [](const Variable& x) { return ops::sqrt(x); }},
      {"rsqrt", [](const Variable& x) { return ops::rsqrt(x); }},
      {"pow", [](const Variable& x) { return ops::pow(x, 2.7); }},
      {"rdiv_scalar", [](const Variable& x) { return 2.0 / x; }}};
  for (const auto& [name, f] : positive) {
    SCOPED_TRACE(name);
    expect_gradcheck([&f = f](const auto& v) { return f(v[0]); }, {uniform64(s, 0.5, 2.0)});
  }
  expect_gradcheck([](const auto& v) { return ops::relu(v[0]); }, {away_from_zero(s)});
  expect_gradcheck([](const auto& v) { return ops::unary(UnaryOp::abs, v[0]); }, {away_from_zero(s)});
  // x^0 is constant: its gradient is 0 everywhere, at x = 0 too (not 0 * 0^-1 = NaN).
  Variable z(from_vector(std::vector<double>{0.0, 2.0, -1.5}), true);
  ops::sum(ops::pow(z, 0.0)).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), (std::vector<double>{0.0, 0.0, 0.0}));
}

TEST_F(GradcheckTest, Reductions) {
  const Tensor x = randn64({2, 3, 4});
  for (bool keepdim : {false, true}) {
    for (const std::vector<int64_t>& dims : std::vector<std::vector<int64_t>>{{}, {0}, {1}, {-1}, {0, 2}}) {
      SCOPED_TRACE(shape_str(dims) + (keepdim ? " keepdim" : ""));
      expect_gradcheck([&](const auto& v) { return ops::sum(v[0], dims, keepdim); }, {x});
      expect_gradcheck([&](const auto& v) { return ops::mean(v[0], dims, keepdim); }, {x});
    }
  }
  // A 0-d tensor: dims 0 and -1 (which the kernels accept) reduce nothing.
  const Tensor scalar = full({}, 1.25, DType::f64);
  for (const int64_t d : {0, -1}) {
    SCOPED_TRACE(d);
    expect_gradcheck([&](const auto& v) { return ops::sum(v[0], {d}); }, {scalar});
    expect_gradcheck([&](const auto& v) { return ops::mean(v[0], {d}, true); }, {scalar});
  }
}

TEST_F(GradcheckTest, SoftmaxFamily) {
  for (int64_t dim : {0, 1, -1}) {
    SCOPED_TRACE(dim);
    expect_gradcheck([&](const auto& v) { return ops::softmax(v[0], dim); }, {randn64({3, 5})});
    expect_gradcheck([&](const auto& v) { return ops::log_softmax(v[0], dim); }, {randn64({3, 5})});
  }
}

TEST_F(GradcheckTest, Matmul) {
  const std::vector<std::pair<Shape, Shape>> shapes{
      {{3, 4}, {4, 5}}, {{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}}, {{3, 4}, {2, 4, 5}},
      {{1, 4}, {4, 1}}, {{2, 1, 3, 4}, {3, 4, 2}}};
  for (const auto& [sa, sb] : shapes) {
    SCOPED_TRACE(shape_str(sa) + " x " + shape_str(sb));
    expect_gradcheck([](const auto& v) { return ops::matmul(v[0], v[1]); }, {randn64(sa), randn64(sb)});
  }
  // Transposed views as operands (folded into the GEMM call).
  expect_gradcheck([](const auto& v) { return ops::matmul(ops::transpose(v[0], 0, 1), v[1]); },
                   {randn64({4, 3}), randn64({4, 5})});
  expect_gradcheck([](const auto& v) { return ops::matmul(v[0], ops::transpose(v[1], -1, -2)); },
                   {randn64({2, 3, 4}), randn64({2, 5, 4})});
}

TEST_F(GradcheckTest, Linear) {
  expect_gradcheck([](const auto& v) { return ops::linear(v[0], v[1], v[2]); },
                   {randn64({2, 3, 4}), randn64({5, 4}), randn64({5})});
  expect_gradcheck([](const auto& v) { return ops::linear(v[0], v[1]); },
                   {randn64({6, 4}), randn64({5, 4})});
}

TEST_F(GradcheckTest, ShapeOps) {
  expect_gradcheck([](const auto& v) { return ops::reshape(v[0], {4, -1}) * 2.0; }, {randn64({2, 3, 4})});
  expect_gradcheck([](const auto& v) { return ops::transpose(v[0], 0, 2) * 2.0; }, {randn64({2, 3, 4})});
  expect_gradcheck([](const auto& v) { return ops::permute(v[0], {1, 2, 0}) * 2.0; }, {randn64({2, 3, 4})});
}

TEST_F(GradcheckTest, Composite) {
  // A small attention-like expression exercising reuse of inputs across several ops.
  expect_gradcheck(
      [](const auto& v) {
        const Variable scores = ops::matmul(v[0], ops::transpose(v[1], 0, 1)) * 0.5;
        return ops::matmul(ops::softmax(scores, -1), v[1]) + ops::tanh(v[0]);
      },
      {randn64({3, 4}), randn64({5, 4})});
}

TEST_F(GradcheckTest, IndexingAndJoining) {
  const Tensor idx = from_vector(std::vector<int64_t>{2, 0, 2, 1});
  expect_gradcheck([&](const auto& v) { return ops::index_select(v[0], 0, idx); }, {randn64({3, 4})});
  expect_gradcheck([&](const auto& v) { return ops::index_select(v[0], 1, idx); }, {randn64({2, 3, 2})});
  const Tensor gidx = from_vector(std::vector<int64_t>{0, 2, 1, 1, 0, 0}, {2, 3});
  expect_gradcheck([&](const auto& v) { return ops::gather(v[0], 1, gidx); }, {randn64({2, 4})});
  expect_gradcheck([&](const auto& v) { return ops::scatter_add(v[0], 1, gidx, v[1]); },
                   {randn64({2, 4}), randn64({2, 3})});
  expect_gradcheck([&](const auto& v) { return ops::embedding(from_vector(std::vector<int64_t>{1, 0, 1, 3}, {2, 2}), v[0]); },
                   {randn64({4, 3})});
  expect_gradcheck([](const auto& v) { return ops::cat({v[0], v[1], v[0]}, 1); },
                   {randn64({2, 3}), randn64({2, 1})});
  expect_gradcheck([](const auto& v) { return ops::stack({v[0], v[1]}, 1); },
                   {randn64({2, 3}), randn64({2, 3})});
  expect_gradcheck([](const auto& v) { return ops::slice(v[0], 1, 1, -1, 2); }, {randn64({3, 6})});
}

// Tensors of more dims than kernels take (8): the ops run, and so does their backward, whose
// bookkeeping copies merge the dims (core/copy.cpp); a broadcast operand's gradient sums them.
TEST_F(GradcheckTest, NineAndTenDims) {
  expect_gradcheck([](const std::vector<Variable>& v) { return ops::mul(ops::add(v[0], v[1]), v[0]); },
                   {randn64(Shape(9, 2)), randn64({2})});
  expect_gradcheck([](const std::vector<Variable>& v) { return ops::sum(ops::mul(v[0], v[0])); },
                   {randn64(Shape(10, 2))});
}
