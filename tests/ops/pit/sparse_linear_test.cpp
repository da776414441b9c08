// sparse_linear and compact layouts on the CPU: against dense autograd (sparse_linear_cases.h),
// finite differences, and the errors.
#include "autograd/gradcheck.h"
#include "tests/core/expect_error.h"
#include "tests/ops/pit/sparse_linear_cases.h"

using namespace pit;

TEST(SparseLinearCpu, AgainstDenseAutograd) { test::run_sparse_linear_cases(Device::cpu(), {DType::f32, DType::f64}); }

TEST(SparseLinearCpu, NoTokens) { test::run_sparse_linear_empty_batch(Device::cpu(), DType::f32); }

TEST(SparseLinearCpu, LayoutsAreCompact) {
  for (const test::CompactCase& c : test::kCompactCases) {
    const Tensor mask = test::compact_case_mask(c, 70, 45, 0.3, 5, Device::cpu());
    const sparse::CompactLayout l = sparse::compact_layout(mask, c.tile, c.elements);
    const int64_t listed = l.is_blocks() ? sparse::read_count(sparse::detect_blocks(mask.to(DType::f32), c.tile.rows))
                                         : sparse::read_count(sparse::detect_k_lists(mask.to(DType::f32), c.tile.rows));
    EXPECT_EQ(l.entries, listed) << l.str();
    EXPECT_GT(l.entries, 0) << l.str();
    EXPECT_LT(l.entries, c.tile.count_in(70, 45)) << l.str();
    EXPECT_EQ((l.is_blocks() ? l.blocks.col : l.lists.k).numel(), l.entries) << l.str() << ": the list holds the capacity";
    EXPECT_NEAR(l.density(), static_cast<double>(l.entries) / static_cast<double>(c.tile.count_in(70, 45)), 1e-12);
  }
}

// A mask of any non-zero values keeps those weights as they are: `inside` is 0/1 (a float mask of
// 0.5s used to scale the weights by 0.5).
TEST(SparseLinearCpu, MaskValuesOnlySayKept) {
  for (const double kept : {0.5, -3.0}) {
    const Tensor mask = kernels::binary(BinaryOp::mul, test::compact_case_mask({{32, 1}, true}, 64, 40, 0.4, 9, Device::cpu()).to(DType::f32),
                                        full({}, kept, DType::f32));
    const sparse::CompactLayout l = sparse::compact_layout(mask, {32, 1}, true);
    ASSERT_TRUE(l.inside.defined());
    for (const double v : l.inside.to(DType::f64).to_vector<double>()) EXPECT_TRUE(v == 0.0 || v == 1.0) << v;
    const Tensor w = test::dense_random({64, 40}, 10, DType::f64), x = test::dense_random({3, 40}, 11, DType::f64);
    const Tensor values = sparse::compact_values(l, w, mask);
    const Tensor got = ops::sparse_linear(Variable(x), Variable(values), Variable(), l).data();
    const Tensor masked = kernels::binary(BinaryOp::mul, w, mask.to(DType::boolean).to(DType::f64));
    const Tensor want = kernels::matmul(x, masked.t());
    const std::vector<double> g = got.to_vector<double>(), wv = want.contiguous().to_vector<double>();
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], wv[i], 1e-12) << "element " << i;
  }
}

TEST(SparseLinearCpu, Gradcheck) {
  for (const test::CompactCase& c : {test::CompactCase{{16, 1}, false}, test::CompactCase{{16, 16}, false},
                                     test::CompactCase{{32, 1}, true}}) {
    const int64_t out = 37, in = 21;
    const Tensor mask = test::compact_case_mask(c, out, in, 0.5, 31, Device::cpu());
    const sparse::CompactLayout l = sparse::compact_layout(mask, c.tile, c.elements);
    const Tensor values = sparse::compact_values(l, test::dense_random({out, in}, 32, DType::f64), mask);
    const Tensor x = test::dense_random({3, in}, 33, DType::f64), b = test::dense_random({out}, 34, DType::f64);
    // With the ReLU fused too: random f64 pre-activations lie far from its kink at 0 compared with
    // the finite differences' step.
    for (const bool relu : {false, true}) {
      const auto r = gradcheck(
          [&](const std::vector<Variable>& v) { return ops::sparse_linear(v[0], v[1], v[2], l, {.relu = relu}); },
          {x, values, b});
      EXPECT_TRUE(r.ok) << l.str() << (relu ? " relu" : "") << ": " << r.report;
    }
  }
}

TEST(SparseLinearCpu, ErrorsNameTheProblem) {
  const Tensor mask = test::compact_case_mask({{32, 1}, false}, 64, 40, 0.5, 3, Device::cpu());
  const sparse::CompactLayout l = sparse::compact_layout(mask, {32, 1}, false);
  const Variable values(zeros(l.values_shape()));
  test::expect_error_contains([&] { ops::sparse_linear(Variable(zeros({5, 41})), values, Variable(), l); },
                              "in_features 40");
  test::expect_error_contains([&] { ops::sparse_linear(Variable(zeros({5, 40})), Variable(zeros({3, 32})), Variable(), l); },
                              "do not fit the layout");
  test::expect_error_contains([&] { sparse::compact_layout(mask, {32, 16}, false); }, "r x 1 or b x b");
  test::expect_error_contains([&] { sparse::compact_values(l, zeros({64, 40}), ones({64, 40})); }, "pass the mask");
}
