// Proves every declared PIT rule (ops/pit/rules.h) on random inputs: permute the inputs along
// the axis, compute, undo the permutation on the output (free axes) or leave it (reduction
// axes), and compare with the unpermuted result. A declared rule without a test here fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <random>

#include "autograd/grad_mode.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/pit_ops.h"
#include "ops/pit/rules.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/sparse_data.h"

using namespace pit;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
struct OpCase {
  std::function<std::vector<Tensor>(uint64_t)> inputs;
  Fn fn;
};

Tensor rnd(const Shape& s, uint64_t seed) { return test::dense_random(s, seed, DType::f64); }

std::map<std::string, OpCase> op_cases() {
  std::map<std::string, OpCase> m;
  const auto mm = [](const std::vector<Tensor>& in) { return kernels::matmul(in[0], in[1]); };
  m["matmul"] = {[](uint64_t s) { return std::vector<Tensor>{rnd({7, 5}, s), rnd({5, 6}, s + 1)}; }, mm};
  m["pit_matmul"] = {[](uint64_t s) { return std::vector<Tensor>{test::sparse_tensor(9, 8, 2, 1, 0.4, s, DType::f64), rnd({8, 6}, s + 1)}; },
                     [](const std::vector<Tensor>& in) {
                       return ops::pit_matmul(Variable(in[0]), Variable(in[1]), {.kernel = sparse::Kernel::k_lists, .tile = 4}).data();
                     }};
  const auto lin_in = [](uint64_t s) { return std::vector<Tensor>{test::sparse_tensor(7, 5, 1, 5, 0.5, s, DType::f64), rnd({6, 5}, s + 1), rnd({6}, s + 2)}; };
  m["linear"] = {lin_in, [](const std::vector<Tensor>& in) {
                   return ops::linear(Variable(in[0]), Variable(in[1]), Variable(in[2])).data();
                 }};
  m["pit_linear"] = {lin_in, [](const std::vector<Tensor>& in) {
                       return ops::pit_linear(Variable(in[0]), Variable(in[1]), Variable(in[2])).data();
                     }};
  const auto one = [](uint64_t s) { return std::vector<Tensor>{rnd({6, 9}, s)}; };
  const auto two = [](uint64_t s) { return std::vector<Tensor>{rnd({6, 9}, s), rnd({6, 9}, s + 1)}; };
  const std::map<std::string, UnaryOp> unary = {{"relu", UnaryOp::relu}, {"gelu", UnaryOp::gelu_erf},
                                                {"exp", UnaryOp::exp}, {"tanh", UnaryOp::tanh}, {"silu", UnaryOp::silu}};
  for (const auto& [name, u] : unary) m[name] = {one, [u](const std::vector<Tensor>& in) { return kernels::unary(u, in[0]); }};
  const std::map<std::string, BinaryOp> binary = {{"add", BinaryOp::add}, {"mul", BinaryOp::mul}, {"maximum", BinaryOp::maximum}};
  for (const auto& [name, b] : binary) m[name] = {two, [b](const std::vector<Tensor>& in) { return kernels::binary(b, in[0], in[1]); }};
  m["sum_cols"] = {one, [](const std::vector<Tensor>& in) { return kernels::sum(in[0], {1}); }};
  m["max_cols"] = {one, [](const std::vector<Tensor>& in) { return kernels::max(in[0], 1).values; }};
  m["softmax"] = {one, [](const std::vector<Tensor>& in) { return kernels::softmax(in[0], 1); }};
  m["log_softmax"] = {one, [](const std::vector<Tensor>& in) { return kernels::log_softmax(in[0], 1); }};
  m["layernorm"] = {[](uint64_t s) { return std::vector<Tensor>{rnd({6, 9}, s), rnd({9}, s + 1), rnd({9}, s + 2)}; },
                    [](const std::vector<Tensor>& in) { return kernels::layernorm(in[0], in[1], in[2], 1e-5).y; }};
  const auto ce_in = [](uint64_t s) {
    std::mt19937_64 g(s);
    std::vector<int64_t> t(8);
    for (auto& v : t) v = static_cast<int64_t>(g() % 5);
    return std::vector<Tensor>{rnd({8, 5}, s), from_vector(t)};
  };
  m["cross_entropy_rows"] = {ce_in, [](const std::vector<Tensor>& in) { return kernels::cross_entropy(in[0], in[1], -100, 0.0).loss; }};
  m["cross_entropy_mean"] = {ce_in, [](const std::vector<Tensor>& in) {
                               return kernels::mean(kernels::cross_entropy(in[0], in[1], -100, 0.0).loss);
                             }};
  return m;
}

Tensor permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  std::mt19937_64 g(seed);
  std::shuffle(p.begin(), p.end(), g);
  if (n > 1 && std::is_sorted(p.begin(), p.end())) std::swap(p[0], p[1]);  // never the identity
  return from_vector(p);
}

Tensor inverse(const Tensor& perm) {
  const std::vector<int64_t> p = perm.to_vector<int64_t>();
  std::vector<int64_t> inv(p.size());
  for (size_t i = 0; i < p.size(); ++i) inv[static_cast<size_t>(p[i])] = static_cast<int64_t>(i);
  return from_vector(inv);
}

}  // namespace

TEST(PitRules, EveryDeclaredRuleHolds) {
  NoGradGuard no_grad;
  const auto cases = op_cases();
  uint64_t seed = 1;
  for (const sparse::OpRule& rule : sparse::pit_rules()) {
    const auto it = cases.find(rule.op);
    ASSERT_NE(it, cases.end()) << "declared rule for '" << rule.op << "' has no property test";
    for (const sparse::AxisRule& axis : rule.axes) {
      for (int trial = 0; trial < 3; ++trial) {
        const std::vector<Tensor> in = it->second.inputs(++seed);
        ASSERT_EQ(static_cast<int>(in.size()), rule.num_inputs) << rule.op;
        const Tensor want = it->second.fn(in);
        const int64_t n = in[static_cast<size_t>(axis.inputs[0].first)].size(axis.inputs[0].second);
        const Tensor perm = permutation(n, ++seed);
        std::vector<Tensor> permuted = in;
        for (const auto& [which, dim] : axis.inputs) {
          ASSERT_EQ(in[static_cast<size_t>(which)].size(dim), n) << rule.op << " axis " << axis.axis;
          permuted[static_cast<size_t>(which)] = kernels::index_select(in[static_cast<size_t>(which)], dim, perm);
        }
        Tensor got = it->second.fn(permuted);
        if (axis.output_dim >= 0) got = kernels::index_select(got, axis.output_dim, inverse(perm));
        test::expect_close(got, want, 1e-10, 1e-12,
                           rule.op + " axis " + axis.axis + " (" + sparse::primitive_name(axis.primitive) + ")");
        // The permutation must matter for a free axis (else the test proves nothing).
        if (axis.output_dim >= 0 && n > 1) {
          const Tensor raw = it->second.fn(permuted);
          EXPECT_NE(test::values(raw), test::values(want)) << rule.op << " axis " << axis.axis << ": trivial test";
        }
      }
    }
  }
}

TEST(PitRules, PrimitivesMatchTheAxisKind) {
  for (const sparse::OpRule& rule : sparse::pit_rules())
    for (const sparse::AxisRule& axis : rule.axes)
      EXPECT_EQ(axis.primitive, axis.output_dim < 0 ? sparse::Primitive::sread : sparse::Primitive::sread_swrite)
          << rule.op << " axis " << axis.axis << ": reduction axes need SRead only, free axes SRead + SWrite";
  EXPECT_EQ(sparse::rule_for("matmul").axes.size(), 3u);
  EXPECT_THROW(sparse::rule_for("no_such_op"), Error);
}
