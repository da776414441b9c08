// sparse_linear on CUDA against dense autograd (tests/ops/pit/sparse_linear_cases.h); skips
// without a GPU.
#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/sparse_linear_cases.h"

using namespace pit;

TEST(SparseLinearCuda, AgainstDenseAutograd) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_sparse_linear_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}
