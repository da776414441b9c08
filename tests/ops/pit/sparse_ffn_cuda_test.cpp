// sparse_relu_ffn on CUDA against the pair of sparse_linear ops and dense autograd
// (tests/ops/pit/sparse_ffn_cases.h): 64 x 64 blocks in bf16 / f16 take the bits' way, with
// 256- and (PIT_BLOCK_LINEAR_TOKENS=128) 128-token tiles; skips without a GPU.
#include <cstdlib>

#include "ops/pit/gemm.h"
#include "tests/core/expect_error.h"
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

// The bits' kernels write rows in 16-byte units: outputs that do not start 16-byte aligned are
// refused with the reason, not written out of place.
TEST(SparseFfnCuda, BitsNeedAlignedOutputs) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built";
  const Device gpu = Device::cuda();
  const sparse::MicroTile tile{64, 64};
  const Tensor m1 = test::compact_case_mask({tile, false}, 128, 64, 1.0, 5, gpu);
  const sparse::CompactLayout l1 = sparse::compact_layout(m1, tile, false, 2.0);
  const Tensor v1 = sparse::compact_values(l1, test::dense_random({128, 64}, 6, DType::bf16, gpu), m1);
  const Tensor x = test::dense_random({10, 64}, 7, DType::bf16, gpu);
  ASSERT_TRUE(sparse::relu_bits_take(x, sparse::blocks_with(l1, v1)));
  Tensor flat = Tensor::empty({10 * 128 + 1}, DType::bf16, gpu);
  Tensor y = flat.slice(0, 1, 10 * 128 + 1).view({10, 128});  // contiguous, 2 bytes past alignment
  test::expect_error_contains([&] { sparse::block_linear_relu_bits(x, sparse::blocks_with(l1, v1), y); },
                              "16-byte aligned");
  Tensor y_ok = Tensor::empty({10, 128}, DType::bf16, gpu);
  const Tensor mask = sparse::block_linear_relu_bits(x, sparse::blocks_with(l1, v1), y_ok);
  EXPECT_EQ(mask.shape(), Shape({10, 16}));
}
