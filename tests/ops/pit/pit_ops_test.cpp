// pit_matmul / pit_linear on the CPU: against dense autograd (tests/ops/pit/pit_ops_cases.h) and
// finite differences in f64 (gradcheck).
#include "autograd/gradcheck.h"
#include "tests/ops/pit/pit_ops_cases.h"

using namespace pit;

TEST(PitOpsCpu, MatmulAgainstDenseAutograd) { test::run_pit_matmul_cases(Device::cpu(), {DType::f32, DType::bf16}); }
TEST(PitOpsCpu, LinearAgainstDenseAutograd) { test::run_pit_linear_cases(Device::cpu(), {DType::f32, DType::f16}); }

TEST(PitOpsCpu, GradcheckMatmul) {
  // Finite differences move zeros off zero, so the pattern is declared by a mask (sparse grad)
  // or the gradient is the dense one (sparse_grad = false).
  const Tensor a = test::sparse_tensor(20, 13, 4, 1, 0.5, 1, DType::f64);
  const Tensor b = test::dense_random({13, 7}, 2, DType::f64);
  const Tensor mask = test::sparse_tensor(20, 13, 4, 1, 0.5, 3, DType::f64).to(DType::boolean);
  for (const test::KindCase kc : test::kKinds) {
    const int64_t tile = kc.kernel == sparse::Kernel::k_lists || kc.kernel == sparse::Kernel::blocks ? 4 : 16;
    const auto r1 = gradcheck([&](const std::vector<Variable>& in) {
      return ops::pit_matmul(in[0], in[1], {.kernel = kc.kernel, .tile = tile, .mask = mask});
    }, {a, b});
    EXPECT_TRUE(r1.ok) << sparse::kernel_name(kc.kernel) << " mask: " << r1.report;
    const auto r2 = gradcheck([&](const std::vector<Variable>& in) {
      return ops::pit_matmul(in[0], in[1], {.kernel = kc.kernel, .tile = tile, .sparse_grad = false});
    }, {a, b});
    EXPECT_TRUE(r2.ok) << sparse::kernel_name(kc.kernel) << " dense grad: " << r2.report;
  }
}

TEST(PitOpsCpu, GradcheckLinear) {
  const Tensor x = test::dense_random({9, 12}, 4, DType::f64);
  const Tensor w = test::dense_random({10, 12}, 5, DType::f64);
  const Tensor bias = test::dense_random({10}, 6, DType::f64);
  const Tensor wmask = test::sparse_tensor(10, 12, 4, 4, 0.6, 7, DType::f64).to(DType::boolean);
  const auto r1 = gradcheck([&](const std::vector<Variable>& in) {
    return ops::pit_linear(in[0], in[1], in[2], {.weight_mask = wmask, .block = 4});
  }, {x, w, bias});
  EXPECT_TRUE(r1.ok) << "pruned W: " << r1.report;
  const Tensor rowmask = from_vector(std::vector<double>{1, 0, 1, 1, 0, 0, 1, 0, 1});
  const sparse::RowSetIndex rows = sparse::detect_rows(x, 0, rowmask);
  const auto r2 = gradcheck([&](const std::vector<Variable>& in) {
    return ops::pit_linear(in[0], in[1], in[2], {.rows = rows});
  }, {x, w, bias});
  // x's rows outside the set are structural zeros: the op ignores them, so their gradient is 0
  // while finite differences see them only through... nothing: both are 0 there.
  EXPECT_TRUE(r2.ok) << "row set: " << r2.report;
}

TEST(PitOpsCpu, Errors) {
  Variable a(zeros({4, 3})), b(zeros({4, 2}));
  EXPECT_THROW(ops::pit_matmul(a, b), Error);
  EXPECT_THROW(ops::pit_linear(a, Variable(zeros({2, 4}))), Error);
}

// K = 0: A [5, 0] has 5 rows (not 0 = numel / K), and the product is zeros, as the dense one.
TEST(PitOpsCpu, EmptyInnerDimension) {
  for (const std::optional<sparse::Kernel> kernel : {std::optional<sparse::Kernel>(), std::optional(sparse::Kernel::dense)}) {
    const Variable y = ops::pit_matmul(Variable(zeros({5, 0})), Variable(zeros({0, 3})), {.kernel = kernel});
    EXPECT_EQ(y.shape(), Shape({5, 3}));
    for (const double v : y.data().to(DType::f64).to_vector<double>()) EXPECT_EQ(v, 0.0);
  }
}

// Layers of zero width on a 3-D input, forward and backward: in_features 0 gives y = the bias
// and zero gradients; out_features 0 an empty y and a zero dx. (Their backward flattened the
// input with reshape({-1, 0}), which has no answer, and threw.)
TEST(PitOpsCpu, ZeroWidthLayersRunBackward) {
  struct Case {
    int64_t in, out;
  };
  for (const Case c : {Case{0, 4}, Case{4, 0}}) {
    for (int which = 0; which < 3; ++which) {
      Variable x(full({2, 3, c.in}, 0.5), true), w(full({c.out, c.in}, 0.25), true), b(full({c.out}, 1.0), true);
      Variable y;
      if (which == 0) y = ops::linear(x, w, b);
      else if (which == 1) y = ops::pit_linear(x, w, b);
      else y = ops::pit_linear(x, w, b, {.weight_mask = ones({c.out, c.in}), .block = 4});
      ASSERT_EQ(y.shape(), Shape({2, 3, c.out})) << which;
      for (const double v : y.data().to(DType::f64).to_vector<double>()) EXPECT_EQ(v, 1.0) << which;
      ops::sum(y).backward();
      ASSERT_EQ(x.grad().shape(), x.shape()) << which;
      ASSERT_EQ(w.grad().shape(), w.shape()) << which;
      for (const double v : x.grad().to(DType::f64).to_vector<double>()) EXPECT_EQ(v, 0.0) << which;
      for (const double v : b.grad().to(DType::f64).to_vector<double>()) EXPECT_EQ(v, 6.0) << which;
    }
  }
}
