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
  // An empty pattern has no values for the kernels to read: the pair (which writes zeros or the bias;
  // the cases also check the patterns drawn). proj's dx applies the bits: 64 x 64 blocks too, and
  // dy's rows (its outputs) in 16-byte units.
  const sparse::MicroTile block{64, 64};
  return c.tile == block && c.proj() == block && c.out % 8 == 0 && c.density > 0 &&
         (dt == DType::bf16 || dt == DType::f16);
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
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_sparse_ffn_cases(Device::cuda(), {DType::bf16, DType::f16, DType::f32}, bits_way);
}

TEST(SparseFfnCuda, TilesOf128Tokens) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  ASSERT_EQ(setenv("PIT_BLOCK_LINEAR_TOKENS", "128", 1), 0);
  test::run_sparse_ffn_cases(Device::cuda(), {DType::bf16}, bits_way);
  ASSERT_EQ(unsetenv("PIT_BLOCK_LINEAR_TOKENS"), 0);
}

// The bits' kernels write rows in 16-byte units: outputs that do not start 16-byte aligned are
// refused with the reason, not written out of place.
TEST(SparseFfnCuda, BitsNeedAlignedOutputs) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
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
// bits' way (the op copies it): the same gradients as with an aligned copy of it, bit for bit, and
// the pair's with either (within rounding).
TEST(SparseFfnCuda, MisalignedGradient) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const Device gpu = Device::cuda();
  const BlockLayer fc = block_layer(128, 64, 1.0, 8), proj = block_layer(64, 128, 1.0, 10);
  const Tensor x = test::dense_random({70, 64}, 12, DType::bf16, gpu);
  ASSERT_TRUE(ops::sparse_relu_ffn_fuses(x, {Variable(fc.values), Variable(), fc.layout},
                                         {Variable(proj.values), Variable(), proj.layout}));
  const Tensor flat = test::dense_random({70 * 64 + 1}, 13, DType::bf16, gpu);
  const Tensor g = flat.slice(0, 1, 70 * 64 + 1).view({70, 64});  // 2 bytes past alignment
  const Tensor g_aligned = g.clone();
  ASSERT_NE(reinterpret_cast<uintptr_t>(g.data_ptr()) % 16, 0u);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(g_aligned.data_ptr()) % 16, 0u);
  const auto grads = [&](bool pair, const Tensor& dy) {
    Variable xv(x, true), a(fc.values, true), b(proj.values, true);
    Variable y = pair ? ops::sparse_linear(ops::sparse_linear(xv, a, Variable(), fc.layout, {.relu = true}), b, Variable(),
                                           proj.layout)
                      : ops::sparse_relu_ffn(xv, {a, Variable(), fc.layout}, {b, Variable(), proj.layout});
    y.backward(dy);
    return std::vector<Tensor>{xv.grad(), a.grad(), b.grad()};
  };
  const std::vector<Tensor> got = grads(false, g), aligned = grads(false, g_aligned);
  const std::vector<Tensor> pair = grads(true, g), pair_aligned = grads(true, g_aligned);
  // The pair's dx GEMM takes the transposing way for a misaligned dy (another summation order).
  const double tol = test::tol_for(DType::bf16);
  const char* names[] = {"dx", "dW1 values", "dW2 values"};
  for (size_t i = 0; i < got.size(); ++i) {
    test::expect_close(got[i], aligned[i], 0.0, 0.0, std::string(names[i]) + ": misaligned against aligned gradient");
    test::expect_close(aligned[i], pair_aligned[i], tol, tol, std::string(names[i]) + ": op against the pair, aligned");
    test::expect_close(pair[i], pair_aligned[i], tol, tol, std::string(names[i]) + ": the pair, misaligned against aligned");
  }
}

// A proj without blocks (its pattern pruned away) under an fc with some: the pair, whose proj
// gives zeros (no bias), so every gradient through it is zero; before, the bits' way threw in the
// backward (proj's dx kernel has no blocks to read).
TEST(SparseFfnCuda, AnEmptyProjTakesThePair) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const Device gpu = Device::cuda();
  const BlockLayer fc = block_layer(128, 64, 1.0, 20), proj = block_layer(64, 128, 0.0, 22);
  ASSERT_EQ(proj.values.numel(), 0);
  const Tensor x = test::dense_random({70, 64}, 24, DType::bf16, gpu);
  Variable xv(x, true), a(fc.values, true), b(proj.values, true);
  const ops::SparseLayer l1{a, Variable(), fc.layout}, l2{b, Variable(), proj.layout};
  EXPECT_FALSE(ops::sparse_relu_ffn_fuses(x, l1, l2));
  Variable y = ops::sparse_relu_ffn(xv, l1, l2);
  y.backward(test::dense_random({70, 64}, 26, DType::bf16, gpu));
  test::expect_close(y.data(), zeros({70, 64}, DType::bf16, gpu), 0.0, 0.0, "y");
  test::expect_close(xv.grad(), zeros({70, 64}, DType::bf16, gpu), 0.0, 0.0, "dx");
  test::expect_close(a.grad(), zeros(fc.values.shape(), DType::bf16, gpu), 0.0, 0.0, "dW1 values");
}
