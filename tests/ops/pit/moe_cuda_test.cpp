// moe_ffn on CUDA against the expert loop of dense autograd ops on the same device
// (tests/ops/pit/moe_cases.h); skips without a GPU.
#include "ops/pit/gemm.h"
#if PIT_WITH_CUDA
#include "ops/pit/cuda/gemm.h"
#endif
#include "tests/gpu.h"
#include "tests/ops/pit/moe_cases.h"

using namespace pit;

TEST(MoeFfnCuda, AgainstTheExpertLoop) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_moe_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}

// x and dy gathered once (sparse::gather_entry_rows): the up and gu GEMMs and both weight
// gradients read a compact A (on the wide engine by TMA, the up GEMM storing by TMA).
TEST(MoeFfnCuda, CompactRowsAgainstTheExpertLoop) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_moe_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16}, ops::MoeRows::compact);
}

// The same with the wide engine in clusters of two (sparse::cuda::set_wide_cluster): every GEMM
// then reads a compact A in clusters, the up GEMM storing by TMA.
TEST(MoeFfnCuda, CompactRowsInClustersAgainstTheExpertLoop) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
#if PIT_WITH_CUDA
  const bool was = sparse::cuda::set_wide_cluster(true);
  test::run_moe_cases(Device::cuda(), {DType::bf16, DType::f16}, ops::MoeRows::compact);
  sparse::cuda::set_wide_cluster(was);
#endif
}
