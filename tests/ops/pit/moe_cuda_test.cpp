// moe_ffn on CUDA against the expert loop of dense autograd ops on the same device
// (tests/ops/pit/moe_cases.h); skips without a GPU.
#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/moe_cases.h"

using namespace pit;

TEST(MoeFfnCuda, AgainstTheExpertLoop) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built";
  test::run_moe_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}
