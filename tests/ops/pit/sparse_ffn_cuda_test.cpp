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

// A bf16 layer of 64 x 64 blocks [out, in] on the GPU at `density`: its layout and values.
struct BlockLayer {
  sparse::CompactLayout layout;
  Tensor values;
};
BlockLayer block_layer(int64_t out, int64_t in, double density, uint64_t seed) {
  const sparse::MicroTile tile{64, 64};
  const Tensor m = test::compact_case_mask({tile, false}, out, in, density, seed, Device::cuda());
  BlockLayer l{sparse::compact_layout(m, tile, false, 2.0), Tensor()};
  l.values = sparse::compact_values(l.layout, test::dense_random({out, in}, seed + 1, DType::bf16, Device::cuda()), m);
  return l;
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
  const BlockLayer fc = block_layer(128, 64, 1.0, 5);
  const sparse::BlockListIndex v = sparse::blocks_with(fc.layout, fc.values);
  const Tensor x = test::dense_random({10, 64}, 7, DType::bf16, gpu);
  ASSERT_TRUE(sparse::relu_bits_take(x, v));
  Tensor flat = Tensor::empty({10 * 128 + 1}, DType::bf16, gpu);
  Tensor y = flat.slice(0, 1, 10 * 128 + 1).view({10, 128});  // contiguous, 2 bytes past alignment
  test::expect_error_contains([&] { sparse::block_linear_relu_bits(x, v, y); }, "16-byte aligned");
  Tensor y_ok = Tensor::empty({10, 128}, DType::bf16, gpu);
  const Tensor mask = sparse::block_linear_relu_bits(x, v, y_ok);
  EXPECT_EQ(mask.shape(), Shape({10, 16}));
}

// A gradient that does not start 16-byte aligned (a view into a larger buffer) still takes the
// bits' way (the op copies it) and gives the pair's gradients (within rounding).
TEST(SparseFfnCuda, MisalignedGradient) {
  PIT_REQUIRE_CUDA();
  if (!sparse::cuda_gemm_built()) GTEST_SKIP() << "the CUDA PIT GEMMs are not built";
  const Device gpu = Device::cuda();
  const BlockLayer fc = block_layer(128, 64, 0.5, 8), proj = block_layer(64, 128, 0.5, 10);
  const Tensor x = test::dense_random({70, 64}, 12, DType::bf16, gpu);
  const Tensor flat = test::dense_random({70 * 64 + 1}, 13, DType::bf16, gpu);
  const Tensor g = flat.slice(0, 1, 70 * 64 + 1).view({70, 64});  // 2 bytes past alignment
  const auto grads = [&](bool pair) {
    Variable xv(x, true), a(fc.values, true), b(proj.values, true);
    Variable y = pair ? ops::sparse_linear(ops::sparse_linear(xv, a, Variable(), fc.layout, {.relu = true}), b, Variable(),
                                           proj.layout)
                      : ops::sparse_relu_ffn(xv, {a, Variable(), fc.layout}, {b, Variable(), proj.layout});
    y.backward(g);
    return std::vector<Tensor>{xv.grad(), a.grad(), b.grad()};
  };
  const std::vector<Tensor> got = grads(false), want = grads(true);
  // The pair's dx GEMM takes the transposing way for a misaligned dy (another summation order).
  const double tol = test::tol_for(DType::bf16);
  for (size_t i = 0; i < got.size(); ++i) test::expect_close(got[i], want[i], tol, tol, "gradient " + std::to_string(i));
}
