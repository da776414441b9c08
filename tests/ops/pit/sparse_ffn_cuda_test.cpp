// sparse_relu_ffn on CUDA against the pair of sparse_linear ops and dense autograd
// (tests/ops/pit/sparse_ffn_cases.h): 64 x 64 blocks in bf16 / f16 take the bits' way, with
// 256- and (PIT_BLOCK_LINEAR_TOKENS=128) 128-token tiles; skips without a GPU.
#include <cstdlib>

#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/sparse_ffn_cases.h"

using namespace pit;

namespace {

bool bits_way(const test::FfnCase& c, DType dt) {
  // An empty pattern has no values for the kernels to read: the pair (which writes zeros or the bias).
  return c.tile.rows == 64 && c.tile.cols == 64 && c.density > 0 && (dt == DType::bf16 || dt == DType::f16);
}

}  // namespace

TEST(SparseFfnCuda, AgainstThePairAndDenseAutograd) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built";
  test::run_sparse_ffn_cases(Device::cuda(), {DType::bf16, DType::f16, DType::f32}, bits_way);
}

TEST(SparseFfnCuda, TilesOf128Tokens) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built";
  ASSERT_EQ(setenv("PIT_BLOCK_LINEAR_TOKENS", "128", 1), 0);
  test::run_sparse_ffn_cases(Device::cuda(), {DType::bf16}, bits_way);
  ASSERT_EQ(unsetenv("PIT_BLOCK_LINEAR_TOKENS"), 0);
}
