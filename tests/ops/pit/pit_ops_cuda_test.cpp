// pit_matmul / pit_linear on CUDA against dense autograd (tests/ops/pit/pit_ops_cases.h); skips
// without a GPU, and until the CUDA PIT GEMMs are built.
#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/pit_ops_cases.h"

using namespace pit;

TEST(PitOpsCuda, MatmulAgainstDenseAutograd) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built yet";
  test::run_pit_matmul_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}
TEST(PitOpsCuda, LinearAgainstDenseAutograd) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built yet";
  test::run_pit_linear_cases(Device::cuda(), {DType::f32, DType::bf16});
}
TEST(PitOpsCuda, PlannerChoosesAndMatches) {
  PIT_REQUIRE_CUDA();
  // The planner path (no kernel given): whatever it picks must give the dense result.
  const Tensor a = test::sparse_tensor(512, 256, 32, 1, 0.05, 1, DType::bf16, Device::cuda());
  const Tensor b = test::dense_random({256, 128}, 2, DType::bf16, Device::cuda());
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built yet";
  const Variable y = ops::pit_matmul(Variable(a), Variable(b));
  test::expect_close(y.data(), test::ref_matmul(a, b), 2e-2, 2e-2, "planned pit_matmul");
}
