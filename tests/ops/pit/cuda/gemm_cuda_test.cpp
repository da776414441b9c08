// CUDA PIT GEMMs (ops/pit/cuda through the ops/pit/gemm.h dispatcher) against the dense product of
// the densified operand, computed in f64 on the CPU, on fresh random inputs with outputs poisoned
// (NaN) first. Shared cases in tests/ops/pit/gemm_cases.h (every micro-tile, mode and dtype on
// small ragged shapes) plus the large ragged shape 1000 x 777 x 333 at sparsity 0, 50, 90, 99 and
// 100 %. Skips without a GPU (fails with PIT_REQUIRE_GPU=1).
//
// Tolerances (tol_for, relative to the output's largest magnitude): f32 2e-5 (f32 FMAs in another
// order over <= 777 terms); bf16 2e-2 and f16 4e-3: inputs are exact in the dtype, products are
// accumulated in f32 and rounded once on store (2^-9, 2^-11 relative), except where several tiles
// meet one output element (K-chunk segments, MoE combine), whose atomic adds round once per
// contribution: kChunkTol below allows that for the 13 chunks of 777 / 64.
#include <cstdlib>
#include <string>
#include <vector>

#include "core/device.h"
#include "ops/pit/cuda/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/gemm_cases.h"

using namespace pit;

namespace {

const Device kGpu = Device::cuda();
const std::vector<test::GemmShape> kSmall(std::begin(test::kGemmShapes), std::end(test::kGemmShapes));
const std::vector<DType> kAll = {DType::f32, DType::bf16, DType::f16};

double chunk_tol(DType dt) { return dt == DType::f32 ? 2e-5 : dt == DType::f16 ? 1e-2 : 4e-2; }

// The CUDA backend's condense_gemm on the GPU's current stream with a forced engine (the public
// API lets the kernel choose). A build without CUDA has no such function: the tests skip before
// reaching this, but must still link.
void condense_on_gpu(const sparse::KListIndex& ki, const Tensor& b, Tensor& c, const sparse::Epilogue& epilogue,
                     sparse::Engine engine = sparse::Engine::automatic) {
#if PIT_WITH_CUDA
  sparse::cuda::condense_gemm(ki, b, c, epilogue, current_stream(kGpu), engine);
#else
  (void)ki, (void)b, (void)c, (void)epilogue, (void)engine;
  PIT_THROW("condense_on_gpu: pit was built without CUDA");
#endif
}

}  // namespace

TEST(PitGemmCuda, CondenseAndBlocksSmall) {
  PIT_REQUIRE_CUDA();
  test::run_tile_gemm_cases(kGpu, {16, 32, 64, 128}, {16, 32, 64}, kAll, kSmall);
}

TEST(PitGemmCuda, EmptyShapes) {
  PIT_REQUIRE_CUDA();
  test::run_tile_gemm_cases(kGpu, {32, 128}, {16, 64}, kAll, test::kEmptyGemmShapes);
}

// 64 x 64 blocks in f16/bf16: the kernel reading x and writing y as they are (block_linear.cu),
// with its output tiles of 256 tokens and, as PIT_BLOCK_LINEAR_TOKENS=128 asks, of 128, and the
// sampled dW with four blocks an item and, as PIT_BLOCK_SAMPLED_BLOCKS=2 asks, two; 32 x 32 and
// f32: the transposing way.
TEST(PitGemmCuda, BlockLinear) {
  PIT_REQUIRE_CUDA();
  test::run_block_linear_cases(kGpu, {64, 32}, kAll);
  ASSERT_EQ(setenv("PIT_BLOCK_LINEAR_TOKENS", "128", 1), 0);
  ASSERT_EQ(setenv("PIT_BLOCK_SAMPLED_BLOCKS", "2", 1), 0);
  test::run_block_linear_cases(kGpu, {64}, {DType::bf16, DType::f16});
  unsetenv("PIT_BLOCK_LINEAR_TOKENS");
  unsetenv("PIT_BLOCK_SAMPLED_BLOCKS");
}

TEST(PitGemmCuda, CondenseAndBlocksRaggedLarge) {
  PIT_REQUIRE_CUDA();
  test::run_tile_gemm_cases(kGpu, {32, 128}, {32}, kAll, {{1000, 777, 333}});
}

// 128-row K lists on each tensor-core engine the CUDA condense_gemm has for them (and its own choice):
// mma.sync, wgmma, the persistent warp-specialised wgmma. 2000 x 333 x 2056 has 16 x 17 = 272
// output tiles, more than an H200 has SMs, so the persistent blocks walk several tiles each (the
// stage ring carried across tiles); 1000 x 777 x 336 has a partial last row block and a partial
// last column tile. N is a multiple of 8 (16-byte rows: the persistent engine's condition).
// Densities 0 (empty lists, the epilogue alone), 1 %, 50 % (lists of different lengths), 100 % and
// skewed (one dense row block among 1 % ones: uneven work per tile).
TEST(PitGemmCuda, CondenseEveryEngine) {
  PIT_REQUIRE_CUDA();
  uint64_t seed = 7000;
  for (const test::GemmShape s : {test::GemmShape{2000, 333, 2056}, test::GemmShape{1000, 777, 336}})
    for (const DType dt : {DType::bf16, DType::f16})
      for (const double d : {0.0, 0.01, 0.5, 1.0, -1.0}) {
        const int64_t r = 128;
        Tensor a = test::sparse_tensor(s.m, s.k, r, 1, d < 0 ? 0.01 : d, ++seed, dt, kGpu);
        // d < 0: skewed, the second row block dense and the others at 1 %.
        if (d < 0) a.slice(0, r, 2 * r).copy_(test::dense_random({r, s.k}, ++seed, dt, kGpu));
        const Tensor b = test::dense_random({s.k, s.n}, ++seed, dt, kGpu);
        const Tensor bias = test::dense_random({s.n}, ++seed, dt, kGpu);
        const Tensor c0 = test::dense_random({s.m, s.n}, ++seed, dt, kGpu);
        const sparse::KListIndex ki = sparse::detect_k_lists(a, r, {.values = true});
        const Tensor ab = test::ref_matmul(a, b);
        const Tensor relu = kernels::unary(UnaryOp::relu, kernels::binary(BinaryOp::add, ab, bias.to(Device::cpu(), DType::f64)));
        const Tensor acc = kernels::binary(BinaryOp::add, ab, c0.to(Device::cpu(), DType::f64));
        const double tol = test::tol_for(dt);
        for (const sparse::Engine e : {sparse::Engine::automatic, sparse::Engine::mma, sparse::Engine::wgmma,
                                       sparse::Engine::wgmma_persistent}) {
          const std::string what = test::gemm_name("condense", s, r, d, dt) +
                                   (e == sparse::Engine::automatic ? " automatic"
                                    : e == sparse::Engine::mma     ? " mma.sync"
                                    : e == sparse::Engine::wgmma   ? " wgmma"
                                                                   : " persistent wgmma");
          Tensor c = test::poisoned({s.m, s.n}, dt, kGpu);
          condense_on_gpu(ki, b, c, {}, e);
          test::expect_close(c, ab, tol, tol, what + " store");
          c = test::poisoned({s.m, s.n}, dt, kGpu);
          condense_on_gpu(ki, b, c, {.bias = bias, .activation = true, .act = UnaryOp::relu}, e);
          test::expect_close(c, relu, tol, tol, what + " bias+relu");
          c = c0.clone();
          condense_on_gpu(ki, b, c, {.write = sparse::Write::accumulate}, e);
          test::expect_close(c, acc, tol, tol, what + " accumulate");
          if (::testing::Test::HasFailure()) return;
        }
      }
}

// The persistent engine reads B and the values with 16-byte copies only: rows that are not
// 16-byte aligned are refused with a message naming the condition; the automatic choice runs
// them.
TEST(PitGemmCuda, CondensePersistentEngineNeedsAlignedRows) {
  PIT_REQUIRE_CUDA();
  const Tensor a = test::sparse_tensor(256, 64, 128, 1, 0.5, 1, DType::bf16, kGpu);
  const Tensor b = test::dense_random({64, 33}, 2, DType::bf16, kGpu);
  const sparse::KListIndex ki = sparse::detect_k_lists(a, 128, {.values = true});
  Tensor c = test::poisoned({256, 33}, DType::bf16, kGpu);
  EXPECT_THROW(
      {
        try {
          condense_on_gpu(ki, b, c, {}, sparse::Engine::wgmma_persistent);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("16-byte aligned"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  condense_on_gpu(ki, b, c, {});
  test::expect_close(c, test::ref_matmul(a, b), test::tol_for(DType::bf16), test::tol_for(DType::bf16),
                     "automatic engine, N = 33");
}

TEST(PitGemmCuda, GatherSmall) {
  PIT_REQUIRE_CUDA();
  for (const sparse::Engine e :
       {sparse::Engine::automatic, sparse::Engine::mma, sparse::Engine::wgmma, sparse::Engine::wgmma_deep})
    test::run_gather_cases(kGpu, kAll, e);
}

TEST(PitGemmCuda, Moe) {
  PIT_REQUIRE_CUDA();
  for (const DType dt : kAll)
    for (const bool skewed : {false, true})
      for (const sparse::Engine e : {sparse::Engine::automatic, sparse::Engine::mma, sparse::Engine::wgmma,
                                     sparse::Engine::wgmma_deep, sparse::Engine::wgmma_persistent,
                                     sparse::Engine::wgmma_pingpong})
        test::run_moe_cases(kGpu, dt, skewed, e);
}

// M-gather at 1000 x 777 x 333: whole zero rows (one segment; store with bias + gelu, b_trans) and
// 1 x 64 row micro-tiles (K-chunk segments, accumulated), on both tensor-core engines.
TEST(PitGemmCuda, GatherRaggedLarge) {
  PIT_REQUIRE_CUDA();
  const int64_t m = 1000, k = 777, n = 333;
  uint64_t seed = 9000;
  for (const sparse::Engine engine : {sparse::Engine::mma, sparse::Engine::wgmma, sparse::Engine::wgmma_deep})
  for (const DType dt : kAll)
    for (const double d : test::kGemmDensities) {
      const std::string what = std::string("gather 1000x777x333 ") + dtype_name(dt) + " density " + std::to_string(d) +
                               (engine == sparse::Engine::mma ? " mma.sync" : engine == sparse::Engine::wgmma ? " wgmma" : " wgmma deep");
      const double tol = test::tol_for(dt);
      const Tensor b = test::dense_random({k, n}, ++seed, dt, kGpu);
      const Tensor w = test::dense_random({n, k}, ++seed, dt, kGpu);
      const Tensor bias = test::dense_random({n}, ++seed, dt, kGpu);
      // Row-sparse A: rows kept with probability d.
      const Tensor a = test::sparse_tensor(m, k, 1, k, d, ++seed, dt, kGpu);
      const sparse::RowSetIndex rows = sparse::detect_rows(a);
      Tensor c = test::poisoned({m, n}, dt, kGpu);
      sparse::gather_gemm(a, rows, w, c,
                          {.b_trans = true, .zero_c = true,
                           .epilogue = {.bias = bias, .activation = true, .act = UnaryOp::gelu_tanh},
                           .engine = engine});
      // Rows outside the set stay 0 (zero_c), the listed rows get gelu(A W^T + bias).
      const Tensor act = kernels::unary(
          UnaryOp::gelu_tanh, kernels::binary(BinaryOp::add, test::ref_matmul(a, w.t()), bias.to(Device::cpu(), DType::f64)));
      std::vector<double> want = test::values(act);
      const std::vector<double> av = test::values(a);
      for (int64_t i = 0; i < m; ++i) {
        bool any = false;
        for (int64_t j = 0; j < k && !any; ++j) any = av[static_cast<size_t>(i * k + j)] != 0.0;
        if (!any)
          for (int64_t j = 0; j < n; ++j) want[static_cast<size_t>(i * n + j)] = 0.0;
      }
      test::expect_close(c, from_vector(want, {m, n}), tol, tol, what + " rows, b_trans, bias+gelu");
      // 1 x 64 row micro-tiles: K-chunk segments, accumulated into a zeroed C.
      const Tensor ak = test::sparse_tensor(m, k, 1, 64, d, ++seed, dt, kGpu);
      const sparse::RowSetIndex chunks = sparse::detect_rows(ak, 64);
      c = test::poisoned({m, n}, dt, kGpu);
      sparse::gather_gemm(ak, chunks, b, c,
                          {.zero_c = true, .epilogue = {.write = sparse::Write::accumulate}, .engine = engine});
      test::expect_close(c, test::ref_matmul(ak, b), chunk_tol(dt), chunk_tol(dt), what + " 1x64 K-chunks");
      if (::testing::Test::HasFailure()) return;
    }
}

// Few rows and a long K: fewer tiles than the grid has blocks, so the kernel splits each tile's
// k-steps over several blocks and the last to finish adds the partials (split K). Each case runs
// twice: the per-tile counters must be back at zero after a launch. Both engines, plain store and
// bias + activation with b_trans, f32 on the CUDA cores.
TEST(PitGemmCuda, GatherSplitsLongK) {
  PIT_REQUIRE_CUDA();
  const int64_t m = 512, k = 2049, n = 200;
  uint64_t seed = 9500;
  for (const sparse::Engine engine : {sparse::Engine::mma, sparse::Engine::wgmma, sparse::Engine::wgmma_deep})
    for (const DType dt : kAll) {
      const std::string what = std::string("split K ") + dtype_name(dt) + (engine == sparse::Engine::mma ? " mma" : engine == sparse::Engine::wgmma ? " wgmma" : " wgmma deep");
      const double tol = test::tol_for(dt) * 2;  // K = 2049: longer sums than the other cases
      const Tensor a = test::sparse_tensor(m, k, 1, k, 0.02, ++seed, dt, kGpu);  // about 10 rows
      const Tensor b = test::dense_random({k, n}, ++seed, dt, kGpu);
      const Tensor w = test::dense_random({n, k}, ++seed, dt, kGpu);
      const Tensor bias = test::dense_random({n}, ++seed, dt, kGpu);
      const sparse::RowSetIndex rows = sparse::detect_rows(a);
      const Tensor want = test::ref_matmul(a, b);
      for (int run = 0; run < 2; ++run) {
        Tensor c = test::poisoned({m, n}, dt, kGpu);
        sparse::gather_gemm(a, rows, b, c, {.zero_c = true, .engine = engine});
        test::expect_close(c, want, tol, tol, what + " store, run " + std::to_string(run));
      }
      Tensor c = test::poisoned({m, n}, dt, kGpu);
      sparse::gather_gemm(a, rows, w, c,
                          {.b_trans = true, .zero_c = true,
                           .epilogue = {.bias = bias, .activation = true, .act = UnaryOp::relu},
                           .engine = engine});
      std::vector<double> act = test::values(kernels::unary(
          UnaryOp::relu, kernels::binary(BinaryOp::add, test::ref_matmul(a, w.t()), bias.to(Device::cpu(), DType::f64))));
      const std::vector<double> av = test::values(a);
      for (int64_t i = 0; i < m; ++i) {
        bool any = false;
        for (int64_t j = 0; j < k && !any; ++j) any = av[static_cast<size_t>(i * k + j)] != 0.0;
        if (!any)
          for (int64_t j = 0; j < n; ++j) act[static_cast<size_t>(i * n + j)] = 0.0;
      }
      test::expect_close(c, from_vector(act, {m, n}), tol, tol, what + " b_trans, bias+relu");
      if (::testing::Test::HasFailure()) return;
    }
}

// The shared-memory limit of a kernel is a per-function attribute: a call that needs less
// (one segment: a shorter tile prefix) must not leave it lowered for a later call that needs more
// (64 K-chunk segments). This sequence once failed with "invalid argument" at the third launch.
TEST(PitGemmCuda, GatherAfterACallNeedingLessSharedMemory) {
  PIT_REQUIRE_CUDA();
  const int64_t m = 96, k = 64 * 64, n = 40;
  const DType dt = DType::bf16;
  const Tensor b = test::dense_random({k, n}, 31, dt, kGpu);
  const Tensor ak = test::sparse_tensor(m, k, 1, 64, 0.3, 32, dt, kGpu);
  const Tensor ar = test::sparse_tensor(m, k, 1, k, 0.5, 33, dt, kGpu);
  const sparse::RowSetIndex chunks = sparse::detect_rows(ak, 64), rows = sparse::detect_rows(ar);
  ASSERT_EQ(chunks.num_segments, 64);
  for (const bool whole_rows : {false, true, false}) {
    Tensor c = test::poisoned({m, n}, dt, kGpu);
    const Tensor& a = whole_rows ? ar : ak;
    sparse::gather_gemm(a, whole_rows ? rows : chunks, b, c,
                        {.zero_c = true, .epilogue = {.write = sparse::Write::accumulate}});
    test::expect_close(c, test::ref_matmul(a, b), chunk_tol(dt), chunk_tol(dt),
                       whole_rows ? "whole rows after 64 segments" : "64 K-chunk segments");
  }
}
