// A NaN reaching a fused ReLU stays NaN, as ops::relu's does (a ReLU that maps NaN to 0 hides a
// diverged step): the epilogues of the M-gather on each engine, of the K-condense on each and of
// the 64 x 64 block Linear with and without its ReLU bits. A bias whose column kNanCol is NaN makes
// that output column NaN in every row; every other column stays finite and >= 0. Skips without a
// GPU (fails with PIT_REQUIRE_GPU=1).
#include <cmath>
#include <string>
#include <vector>

#include "ops/pit/compact.h"
#include "ops/pit/cuda/gemm.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/gemm_cases.h"

using namespace pit;

namespace {

constexpr int64_t kM = 130, kK = 64, kN = 64, kNanCol = 5;

// A bf16 bias [n] on the GPU: 0.25 everywhere but NaN at kNanCol.
Tensor nan_bias(int64_t n) {
  std::vector<float> b(static_cast<size_t>(n), 0.25f);
  b[kNanCol] = std::nanf("");
  return from_vector(b, {n}).to(Device::cuda(), DType::bf16);
}

void expect_nan_column(const Tensor& y, const std::string& what) {
  const std::vector<float> v = y.to(Device::cpu(), DType::f32).to_vector<float>();
  const int64_t rows = y.size(0), cols = y.size(1);
  int64_t wrong = 0;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const float x = v[static_cast<size_t>(i * cols + j)];
      const bool ok = j == kNanCol ? std::isnan(x) : std::isfinite(x) && x >= 0.f;
      if (!ok && wrong++ == 0)
        ADD_FAILURE() << what << ": y[" << i << "][" << j << "] = " << x
                      << (j == kNanCol ? " where the bias is NaN" : " where the bias is finite");
    }
  EXPECT_EQ(wrong, 0) << what << ": elements wrong";
}

}  // namespace

TEST(ReluNanCuda, GatherEveryEngine) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const Device gpu = Device::cuda();
  const Tensor a = test::dense_random({kM, kK}, 1, DType::bf16, gpu);
  const Tensor w = test::dense_random({kN, kK}, 2, DType::bf16, gpu);
  const sparse::RowSetIndex rows = sparse::detect_rows(a);
  for (const sparse::Engine e :
       {sparse::Engine::mma, sparse::Engine::wgmma, sparse::Engine::wgmma_persistent, sparse::Engine::wgmma_deep,
        sparse::Engine::wgmma_pingpong, sparse::Engine::wgmma_tma, sparse::Engine::wgmma_tma_pingpong,
        sparse::Engine::wgmma_wide}) {
    Tensor c = test::poisoned({kM, kN}, DType::bf16, gpu);
    sparse::gather_gemm(a, rows, w, c,
                        {.b_trans = true,
                         .zero_c = true,
                         .epilogue = {.bias = nan_bias(kN), .activation = true, .act = UnaryOp::relu},
                         .engine = e});
    expect_nan_column(c, std::string("gather_gemm on ") + test::engine_name(e));
  }
}

TEST(ReluNanCuda, CondenseEveryEngine) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const Device gpu = Device::cuda();
  const Tensor a = test::sparse_tensor(2 * kM, kK, 128, 1, 0.5, 3, DType::bf16, gpu);
  const Tensor b = test::dense_random({kK, kN}, 4, DType::bf16, gpu);
  const sparse::KListIndex ki = sparse::detect_k_lists(a, 128, {.values = true});
  for (const sparse::Engine e : {sparse::Engine::mma, sparse::Engine::wgmma, sparse::Engine::wgmma_persistent}) {
    Tensor c = test::poisoned({2 * kM, kN}, DType::bf16, gpu);
#if PIT_WITH_CUDA  // the CUDA backend's call: the public one lets the kernel choose its engine
    sparse::cuda::condense_gemm(ki, b, c, {.bias = nan_bias(kN), .activation = true, .act = UnaryOp::relu},
                                current_stream(gpu), e);
#endif
    expect_nan_column(c, std::string("condense_gemm on ") + test::engine_name(e));
  }
}

TEST(ReluNanCuda, BlockLinearAndItsBits) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  const Device gpu = Device::cuda();
  const int64_t out = 128, in = 64;
  const Tensor mask = full({out, in}, 1.0, DType::boolean, gpu);
  const sparse::CompactLayout layout = sparse::compact_layout(mask, {64, 64}, false);
  const Tensor values = sparse::compact_values(layout, test::dense_random({out, in}, 5, DType::bf16, gpu), mask);
  const sparse::BlockListIndex v = sparse::blocks_with(layout, values);
  const Tensor x = test::dense_random({kM, in}, 6, DType::bf16, gpu);
  Tensor y = test::poisoned({kM, out}, DType::bf16, gpu);
  sparse::block_linear(x, v, y, nan_bias(out), /*relu=*/true);
  expect_nan_column(y, "block_linear with relu");
  ASSERT_TRUE(sparse::relu_bits_take(x, v));
  y = test::poisoned({kM, out}, DType::bf16, gpu);
  const Tensor bits = sparse::block_linear_relu_bits(x, v, y, nan_bias(out));
  expect_nan_column(y, "block_linear_relu_bits");
  // The bit says y > 0: not set for NaN, so the backward passes no gradient through it.
  const std::vector<uint8_t> b = bits.to(Device::cpu()).to_vector<uint8_t>();
  for (int64_t t = 0; t < kM; ++t)
    EXPECT_EQ((b[static_cast<size_t>(t * (out / 8) + kNanCol / 8)] >> (kNanCol % 8)) & 1u, 0u) << "token " << t;
}
