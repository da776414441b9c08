// sparse_relu_ffn on the CPU, where it composes the pair of sparse_linear ops (the fused backward
// is CUDA's: sparse_ffn_cuda_test.cpp, against dense autograd): against dense autograd
// (sparse_ffn_cases.h), finite differences of the composed pair, and the errors.
#include "autograd/gradcheck.h"
#include "ops/pit/gemm.h"
#include "tests/core/expect_error.h"
#include "tests/ops/pit/sparse_ffn_cases.h"

using namespace pit;

TEST(SparseFfnCpu, AgainstDenseAutograd) {
  test::run_sparse_ffn_cases(Device::cpu(), {DType::f32, DType::f64}, [](const test::FfnCase&, DType) { return false; });
}

TEST(SparseFfnCpu, GradcheckOfTheComposedPair) {
  const sparse::MicroTile tile{16, 16};
  const Tensor m1 = test::compact_case_mask({tile, false}, 40, 24, 0.6, 41, Device::cpu());
  const Tensor m2 = test::compact_case_mask({tile, false}, 20, 40, 0.6, 42, Device::cpu());
  const sparse::CompactLayout l1 = sparse::compact_layout(m1, tile, false), l2 = sparse::compact_layout(m2, tile, false);
  const Tensor v1 = sparse::compact_values(l1, test::dense_random({40, 24}, 43, DType::f64), m1);
  const Tensor v2 = sparse::compact_values(l2, test::dense_random({20, 40}, 44, DType::f64), m2);
  const Tensor x = test::dense_random({3, 24}, 45, DType::f64);
  const Tensor b1 = test::dense_random({40}, 46, DType::f64), b2 = test::dense_random({20}, 47, DType::f64);
  // Random f64 pre-activations lie far from the ReLU's kink compared with the step.
  const auto r = gradcheck([&](const std::vector<Variable>& v) {
    return ops::sparse_relu_ffn(v[0], {v[1], v[2], l1}, {v[3], v[4], l2});
  }, {x, v1, b1, v2, b2});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(SparseFfnCpu, ErrorsNameTheProblem) {
  const sparse::MicroTile tile{16, 16};
  const Tensor m1 = test::compact_case_mask({tile, false}, 32, 16, 0.5, 3, Device::cpu());
  const Tensor m2 = test::compact_case_mask({tile, false}, 16, 48, 0.5, 4, Device::cpu());
  const sparse::CompactLayout l1 = sparse::compact_layout(m1, tile, false), l2 = sparse::compact_layout(m2, tile, false);
  const ops::SparseLayer fc{Variable(zeros(l1.values_shape())), Variable(), l1};
  const ops::SparseLayer proj{Variable(zeros(l2.values_shape())), Variable(), l2};
  test::expect_error_contains([&] { ops::sparse_relu_ffn(Variable(zeros({5, 16})), fc, proj); },
                              "proj takes 48 inputs but fc gives 32 outputs");
  test::expect_error_contains([&] { ops::sparse_relu_ffn(Variable(zeros({5, 17})), fc, proj); }, "in_features 16");
  // The bits' kernels are CUDA's: on the CPU they name the check to make first.
  Tensor y = zeros({5, 32});
  test::expect_error_contains([&] { sparse::block_linear_relu_bits(zeros({5, 16}), sparse::blocks_with(l1, fc.values.data()), y); },
                              "check relu_bits_take first");
}
