// sparse::moe_activation_backward on the CPU: against the host recomputation of
// tests/ops/pit/moe_grad_cases.h (f32, f64, bf16), and the errors.
#include "tests/core/expect_error.h"
#include "tests/ops/pit/moe_grad_cases.h"

using namespace pit;

TEST(MoeActivationBackwardCpu, AgainstTheHostRecomputation) {
  test::run_moe_grad_cases(Device::cpu(), {DType::f32, DType::f64, DType::bf16});
}

TEST(MoeActivationBackwardCpu, ErrorsNameTheProblem) {
  const int64_t t = 6, k = 2, f = 5;
  const Tensor ids = from_vector(std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, {t, k});
  const sparse::RowSetIndex idx = sparse::rows_from_routing(ids, 3, zeros({t, k}));
  const Tensor gu = zeros({t * k, f}), pre = zeros({t * k, f});
  Tensor dpre = zeros({t * k, f}), dgates = zeros({t, k}), none;
  EXPECT_NO_THROW(sparse::moe_activation_backward(UnaryOp::silu, gu, pre, idx, ids, dpre, dgates));
  using test::expect_error_contains;
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::exp, gu, pre, idx, ids, dpre, dgates); },
                        "relu, gelu_tanh, gelu_erf or silu");
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, pre, idx, ids, none, none); },
                        "nothing to compute");
  const Tensor wide = zeros({t * k, f + 1});
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, wide, idx, ids, dpre, dgates); },
                        "pre must be [12, 5]");
  const Tensor pre64 = pre.to(DType::f64);
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, pre64, idx, ids, dpre, dgates); },
                        "share one dtype");
  Tensor dg64 = zeros({t, k}, DType::f64);
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, pre, idx, ids, dpre, dg64); },
                        "dgates must be contiguous f32");
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, pre, idx, none, dpre, dgates); },
                        "dgates needs expert_of");
  const Tensor fids = ids.to(DType::f32);
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, pre, idx, fids, dpre, dgates); },
                        "i32 or i64");
  const sparse::RowSetIndex chunks = sparse::detect_rows(zeros({t * k, f}), 2);
  expect_error_contains([&] { sparse::moe_activation_backward(UnaryOp::relu, gu, pre, chunks, ids, dpre, dgates); },
                        "expert segments");
}
