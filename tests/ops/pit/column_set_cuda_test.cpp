// Column sets and pit_matmul's K-list backward on CUDA against the host formulas and dense
// autograd (tests/ops/pit/column_set_cases.h); skips without a GPU.
#include <cstdlib>

#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/column_set_cases.h"

using namespace pit;

TEST(ColumnSetCuda, AgainstTheHost) {
  PIT_REQUIRE_CUDA();
  for (const DType dt : {DType::f32, DType::bf16, DType::f16}) test::run_column_set_cases(Device::cuda(), dt);
}
TEST(ColumnSetCuda, PitMatmulGradients) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  for (const DType dt : {DType::f32, DType::bf16}) test::run_column_set_matmul_cases(Device::cuda(), dt);
  // The ping-pong engine is the default where rows are 16-byte aligned (m = 512 and 1000 here);
  // the M-gather's own choice and the persistent engine there too.
  for (const char* engine : {"auto", "persistent", "tma", "tma_pingpong"}) {
    setenv("PIT_COLUMN_SET_ENGINE", engine, 1);
    test::run_column_set_matmul_cases(Device::cuda(), DType::bf16);
    unsetenv("PIT_COLUMN_SET_ENGINE");
    if (HasFailure()) ADD_FAILURE() << "with PIT_COLUMN_SET_ENGINE=" << engine;
  }
}
