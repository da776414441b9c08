// CPU PIT GEMMs (the reference path) against dense f64 products (tests/ops/pit/gemm_cases.h).
#include "tests/ops/pit/gemm_cases.h"
#include "tests/ops/pit/index_check.h"

using namespace pit;

namespace {
const Device kCpu = Device::cpu();
const std::vector<test::GemmShape> kShapes(std::begin(test::kGemmShapes), std::end(test::kGemmShapes));
}  // namespace

TEST(PitGemmCpu, CondenseAndBlocksF32) { test::run_tile_gemm_cases(kCpu, {16, 32, 64, 128}, {16, 32, 64}, {DType::f32}, kShapes); }
TEST(PitGemmCpu, CondenseAndBlocksHalf) {
  test::run_tile_gemm_cases(kCpu, {32}, {16}, {DType::bf16, DType::f16, DType::f64}, {{200, 777, 133}});
}
TEST(PitGemmCpu, EmptyShapes) { test::run_tile_gemm_cases(kCpu, {32}, {16}, {DType::f32}, test::kEmptyGemmShapes); }
TEST(PitGemmCpu, RaggedLarge) { test::run_tile_gemm_cases(kCpu, {32}, {32}, {DType::f32}, {{1000, 777, 333}}); }
TEST(PitGemmCpu, BlockLinear) { test::run_block_linear_cases(kCpu, {16, 64}, {DType::f32, DType::bf16}); }
TEST(PitGemmCpu, Gather) { test::run_gather_cases(kCpu, {DType::f32, DType::bf16, DType::f16}); }
TEST(PitGemmCpu, Moe) {
  for (const DType dt : {DType::f32, DType::bf16})
    for (const bool skewed : {false, true}) test::run_moe_cases(kCpu, dt, skewed);
}

TEST(PitGemmCpu, ErrorsNameTheProblem) {
  const Tensor a = test::sparse_tensor(64, 32, 16, 1, 0.5, 1);
  const sparse::KListIndex idx = sparse::detect_k_lists(a, 16);
  Tensor c = zeros({64, 8});
  const auto msg = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "no throw";
  };
  EXPECT_NE(msg([&] { sparse::condense_gemm(idx, zeros({31, 8}), c); }).find("K = 32"), std::string::npos);
  EXPECT_NE(msg([&] { sparse::condense_gemm(idx, zeros({32, 8}, DType::bf16), c); }).find("one dtype per call"),
            std::string::npos);
  Tensor small = zeros({63, 8});
  EXPECT_NE(msg([&] { sparse::condense_gemm(idx, zeros({32, 8}), small); }).find("must be [64, 8]"), std::string::npos);
  const sparse::KListIndex nov = sparse::detect_k_lists(a, 16, {.values = false});
  EXPECT_NE(msg([&] { sparse::condense_gemm(nov, zeros({32, 8}), c); }).find("no values"), std::string::npos);
  const sparse::RowSetIndex chunks = sparse::detect_rows(a, 8);
  Tensor cc = zeros({64, 8});
  EXPECT_NE(msg([&] { sparse::gather_gemm(a, chunks, zeros({32, 8}), cc, {}); }).find("Write::accumulate"),
            std::string::npos);
  // K-chunks of an index built for a narrower A: its columns past the last chunk were skipped.
  const sparse::RowSetIndex narrow = sparse::detect_rows(a.slice(1, 0, 16), 8);
  EXPECT_NE(msg([&] {
              sparse::gather_gemm(a, narrow, zeros({32, 8}), cc, {.epilogue = {.write = sparse::Write::accumulate}});
            }).find("has 2 K-chunk segments of 8 columns, but A's K = 32 needs 4"),
            std::string::npos);
  // Epilogue::pre: needs an activation and a store, C's shape and dtype, bytes of its own.
  const sparse::RowSetIndex rows = sparse::detect_rows(a);
  const Tensor b = zeros({32, 8});
  Tensor pre = zeros({64, 8});
  EXPECT_NE(msg([&] { sparse::gather_gemm(a, rows, b, cc, {.epilogue = {.pre = pre}}); }).find("activation = true"),
            std::string::npos);
  EXPECT_NE(msg([&] {
              sparse::gather_gemm(a, rows, b, cc, {.epilogue = {.activation = true, .pre = zeros({64, 7})}});
            }).find("Epilogue::pre (C's shape) must be [64, 8]"),
            std::string::npos);
  EXPECT_NE(msg([&] {
              sparse::gather_gemm(a, rows, b, cc, {.epilogue = {.activation = true, .pre = zeros({64, 8}, DType::f64)}});
            }).find("one dtype per call"),
            std::string::npos);
  Tensor both = zeros({128, 8});
  Tensor top = both.slice(0, 0, 64), overlapping = both.slice(0, 32, 96);
  EXPECT_NE(msg([&] { sparse::gather_gemm(a, rows, b, top, {.epilogue = {.activation = true, .pre = overlapping}}); })
                .find("must not share bytes with C"),
            std::string::npos);
  EXPECT_NE(msg([&] { sparse::condense_gemm(idx, b, c, {.activation = true, .pre = c}); }).find("must not share bytes"),
            std::string::npos);
  // The gates after an activation: there must be one (pre is optional).
  EXPECT_NE(msg([&] { sparse::gather_gemm(a, rows, b, cc, {.epilogue = {.scale_after_activation = true}}); })
                .find("scale_after_activation needs activation = true"),
            std::string::npos);
  // use_weights: one f32 weight per entry of the capacity, or the kernels would read past them.
  sparse::RowSetIndex short_weights = rows;
  short_weights.weights = ones({rows.rows.numel() - 1});
  EXPECT_NE(msg([&] { sparse::gather_gemm(a, short_weights, b, cc, {.use_weights = true}); }).find("one per entry"),
            std::string::npos);
  Tensor dw = zeros({32, 8});
  EXPECT_NE(msg([&] { sparse::gather_weight_grad(a, cc, short_weights, dw, {.use_weights = true}); }).find("one per entry"),
            std::string::npos);
  short_weights.weights = ones({rows.rows.numel()});
  EXPECT_EQ(msg([&] { sparse::gather_weight_grad(a, cc, short_weights, dw, {.use_weights = true}); }), "no throw");
}
