// moe_ffn on the CPU: against the expert loop of dense autograd ops (tests/ops/pit/moe_cases.h),
// finite differences in f64, and the errors.
#include "autograd/gradcheck.h"
#include "tests/ops/pit/moe_cases.h"

using namespace pit;

TEST(MoeFfnCpu, AgainstTheExpertLoop) { test::run_moe_cases(Device::cpu(), {DType::f32, DType::bf16}); }

TEST(MoeFfnCpu, CompactRowsAgainstTheExpertLoop) {
  test::run_moe_cases(Device::cpu(), {DType::f32, DType::bf16}, ops::MoeRows::compact);
}

TEST(MoeFfnCpu, Gradcheck) {
  const int64_t t = 11, d = 5, f = 7, experts = 4, k = 2;
  const std::vector<int64_t> ids = test::make_routing(test::Routing::with_drops, t, k, experts, 77);
  const Tensor ids_t = from_vector(ids, {t, k});
  const Tensor x = test::dense_random({t, d}, 1, DType::f64);
  const Tensor w1 = test::dense_random({experts, f, d}, 2, DType::f64);
  const Tensor w2 = test::dense_random({experts, d, f}, 3, DType::f64);
  const Tensor g = test::dense_random({t, k}, 4, DType::f32);
  for (const UnaryOp act : {UnaryOp::gelu_tanh, UnaryOp::silu, UnaryOp::gelu_erf}) {
    const auto r = gradcheck([&](const std::vector<Variable>& in) {
      return ops::moe_ffn(in[0], ids_t, Variable(g), in[1], in[2], {.activation = act});
    }, {x, w1, w2});
    EXPECT_TRUE(r.ok) << "x, w1, w2: " << r.report;
  }
  // y is linear in the gates, which the op takes in f32: a step large enough that f32 rounding of
  // the perturbed gates is negligible, and no truncation error to pay for it.
  const auto r = gradcheck([&](const std::vector<Variable>& in) {
    return ops::moe_ffn(Variable(x), ids_t, ops::cast(in[0], DType::f32), Variable(w1), Variable(w2));
  }, {g.to(DType::f64)}, {.eps = 1e-2});
  EXPECT_TRUE(r.ok) << "gates: " << r.report;
}

TEST(MoeFfnCpu, ErrorsNameTheProblem) {
  const Variable x(zeros({6, 4})), w1(zeros({3, 8, 4})), w2(zeros({3, 4, 8})), g(zeros({6, 2}));
  const Tensor ids = from_vector(std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, {6, 2});
  EXPECT_NO_THROW(ops::moe_ffn(x, ids, g, w1, w2));
  const auto message = [&](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { ops::moe_ffn(x, ids, g, Variable(zeros({3, 8, 5})), w2); }).find("do not agree"),
            std::string::npos);
  EXPECT_NE(message([&] { ops::moe_ffn(x, ids, Variable(zeros({6, 2}, DType::f64)), w1, w2); }).find("gates must be f32"),
            std::string::npos);
  EXPECT_NE(message([&] { ops::moe_ffn(x, ids.to(DType::f32), g, w1, w2); }).find("i32 or i64"), std::string::npos);
  EXPECT_NE(message([&] { ops::moe_ffn(Variable(zeros({2, 3, 4})), ids, g, w1, w2); }).find("flatten"),
            std::string::npos);
  EXPECT_NE(message([&] { ops::moe_ffn(x, ids, g, w1, w2, {.activation = UnaryOp::exp}); }).find("activation"),
            std::string::npos);
  const Tensor bad = from_vector(std::vector<int32_t>{0, 1, 2, 0, 1, 3, 0, 1, 2, 0, 1, 2}, {6, 2});  // expert 3 of 3
  EXPECT_THROW(ops::moe_ffn(x, bad, g, w1, w2), Error);
}

// Backward computes what the inputs that require a gradient need and nothing else (the gates
// alone still need gu = dy W2): each subset's gradients equal those of the full backward.
TEST(MoeFfnCpu, GradientsOfASubset) {
  const int64_t t = 41, d = 12, f = 20, experts = 4, k = 2;
  const std::vector<int64_t> ids = test::make_routing(test::Routing::with_drops, t, k, experts, 5);
  const Tensor ids_t = from_vector(ids, {t, k});
  const std::vector<Tensor> in = {test::dense_random({t, d}, 6), test::dense_random({t, k}, 7),
                                  test::dense_random({experts, f, d}, 8), test::dense_random({experts, d, f}, 9)};
  const Tensor dy = test::dense_random({t, d}, 10);
  const auto grads = [&](const std::vector<bool>& want) {
    std::vector<Variable> v;
    for (size_t i = 0; i < in.size(); ++i) v.emplace_back(in[i], want[i]);
    ops::moe_ffn(v[0], ids_t, v[1], v[2], v[3], {.activation = UnaryOp::silu}).backward(dy);
    std::vector<Tensor> g;
    for (const Variable& x : v) g.push_back(x.requires_grad() ? x.grad() : Tensor());
    return g;
  };
  const std::vector<Tensor> all = grads({true, true, true, true});
  const char* names[] = {"dx", "dgates", "dW1", "dW2"};
  for (const std::vector<bool>& want : std::vector<std::vector<bool>>{
           {false, true, false, false}, {false, false, false, true}, {false, false, true, false},
           {true, false, false, false}, {true, true, false, true}}) {
    const std::vector<Tensor> got = grads(want);
    for (size_t i = 0; i < in.size(); ++i)
      if (want[i]) test::expect_close(got[i], all[i], 1e-6, 1e-6, names[i]);
  }
}

// A second backward through a retained graph adds the same gradients again: the first one leaves
// the saved buffers (pre, h) as the forward wrote them (the gated h has a buffer of its own).
TEST(MoeFfnCpu, SecondBackwardThroughARetainedGraph) {
  const int64_t t = 37, d = 8, f = 24, experts = 5, k = 2;
  const Tensor ids = from_vector(test::make_routing(test::Routing::skewed, t, k, experts, 11), {t, k});
  Variable x(test::dense_random({t, d}, 12), true), g(test::dense_random({t, k}, 13), true);
  Variable w1(test::dense_random({experts, f, d}, 14), true), w2(test::dense_random({experts, d, f}, 15), true);
  const Tensor dy = test::dense_random({t, d}, 16);
  const Variable y = ops::moe_ffn(x, ids, g, w1, w2);
  y.backward(dy, /*retain_graph=*/true);
  std::vector<Tensor> first;
  for (const Variable* v : {&x, &g, &w1, &w2}) first.push_back(v->grad().clone());
  y.backward(dy);
  const char* names[] = {"dx", "dgates", "dW1", "dW2"};
  int i = 0;
  for (const Variable* v : {&x, &g, &w1, &w2}) {
    const Tensor twice = kernels::binary(BinaryOp::add, first[static_cast<size_t>(i)], first[static_cast<size_t>(i)]);
    test::expect_close(v->grad(), twice, 1e-6, 1e-6, std::string(names[i]) + " after two backwards");
    ++i;
  }
}
