// pit_matmul / pit_linear on CUDA against dense autograd (tests/ops/pit/pit_ops_cases.h); skips
// without a GPU, and until the CUDA PIT GEMMs are built.
#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/pit_ops_cases.h"

using namespace pit;

TEST(PitOpsCuda, MatmulAgainstDenseAutograd) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_pit_matmul_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}
TEST(PitOpsCuda, LinearAgainstDenseAutograd) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_pit_linear_cases(Device::cuda(), {DType::f32, DType::bf16});
}
TEST(PitOpsCuda, PlannerChoosesAndMatches) {
  PIT_REQUIRE_CUDA();
  // The planner path (no kernel given): whatever it picks must give the dense result.
  const Tensor a = test::sparse_tensor(512, 256, 32, 1, 0.05, 1, DType::bf16, Device::cuda());
  const Tensor b = test::dense_random({256, 128}, 2, DType::bf16, Device::cuda());
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const Variable y = ops::pit_matmul(Variable(a), Variable(b));
  test::expect_close(y.data(), test::ref_matmul(a, b), 2e-2, 2e-2, "planned pit_matmul");
}

// K lists' backward with B a contiguous view 6 bytes off a 16-byte boundary: its column-set GEMMs
// take the M-gather's own engine (the ping-pong one needs 16-byte aligned rows and threw, naming
// Engine::automatic, which the caller could not pass).
TEST(PitOpsCuda, KListBackwardWithAnUnalignedB) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const int64_t m = 256, k = 128, n = 64;
  const Tensor a = test::sparse_tensor(m, k, 32, 1, 0.2, 3, DType::bf16, Device::cuda());
  const Tensor flat = test::dense_random({k * n + 3}, 4, DType::bf16, Device::cuda());
  const Tensor b = flat.slice(0, 3, 3 + k * n).view({k, n});
  ASSERT_TRUE(b.is_contiguous());
  Variable av(a, true), bv(b, true);
  ops::pit_matmul(av, bv, {.kernel = sparse::Kernel::k_lists}).backward(test::dense_random({m, n}, 5, DType::bf16, Device::cuda()));
  Variable ar(a, true), br(b.contiguous().clone(), true);
  ops::matmul(ar, br).backward(test::dense_random({m, n}, 5, DType::bf16, Device::cuda()));
  test::expect_close(bv.grad(), br.grad(), 3e-2, 3e-2, "dB with an unaligned B");
  // dA is kept at A's non-zeros (sparse_grad): the dense gradient there.
  test::expect_close(av.grad(), kernels::binary(BinaryOp::keep_where, ar.grad(), a), 3e-2, 3e-2, "dA with an unaligned B");
}

// A PlanSite plans from the counts of the site's previous call without waiting (only its first
// call, and a call whose candidates changed, wait for their own); the results never depend on it.
TEST(PitOpsCuda, PlanSitePlansFromThePreviousCall) {
  PIT_REQUIRE_CUDA();
  using sparse::Kernel;
  const int64_t s = 4096;
  const Tensor dense = test::dense_random({s, s}, 1, DType::bf16, Device::cuda());
  const Tensor sparse_a = test::sparse_tensor(s, s, 128, 1, 0.005, 2, DType::bf16, Device::cuda());
  ASSERT_EQ(sparse::plan_matmul(dense, s).kernel, Kernel::dense);
  ASSERT_NE(sparse::plan_matmul(sparse_a, s).kernel, Kernel::dense) << sparse::plan_matmul(sparse_a, s).reason();
  sparse::PlanSite site;
  const sparse::PlanOptions at_site{.site = &site};
  EXPECT_EQ(sparse::plan_matmul(dense, s, at_site).kernel, Kernel::dense);     // waits for its own counts
  EXPECT_EQ(sparse::plan_matmul(sparse_a, s, at_site).kernel, Kernel::dense);  // the previous call's
  current_stream(Device::cuda()).synchronize();  // the second call's counts are back now
  EXPECT_NE(sparse::plan_matmul(sparse_a, s, at_site).kernel, Kernel::dense);
  // Other candidates: the call waits for its own counts (the previous call's would say k_lists).
  const sparse::PlanOptions lists_only{.kernels = {Kernel::k_lists}, .site = &site};
  EXPECT_EQ(sparse::plan_matmul(dense, s, lists_only).kernel, Kernel::dense);

  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  // pit_matmul at a site: whatever plan a call gets, its result is the dense product.
  sparse::PlanSite op_site;
  const Tensor b = test::dense_random({256, 128}, 3, DType::bf16, Device::cuda());
  for (int call = 0; call < 4; ++call) {
    const Tensor a = call % 2 == 0 ? test::sparse_tensor(512, 256, 32, 1, 0.02, 10 + call, DType::bf16, Device::cuda())
                                   : test::dense_random({512, 256}, 10 + call, DType::bf16, Device::cuda());
    const Variable y = ops::pit_matmul(Variable(a), Variable(b), {.site = &op_site});
    test::expect_close(y.data(), test::ref_matmul(a, b), 2e-2, 2e-2, "pit_matmul at a plan site");
  }
}
