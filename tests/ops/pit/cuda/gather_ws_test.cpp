// The M-gather on the persistent, warp-specialised engine and its ping-pong variant
// (Engine::wgmma_persistent and wgmma_pingpong: ops/pit/cuda/gather_ws.cu, weight_grad_ws.cu; the
// weight gradient also with TMA loads, wgmma_tma and wgmma_tma_pingpong) and on the wide engine
// (Engine::wgmma_wide, gather_wide.cu: bit for bit the ping-pong engine's where nothing is
// accumulated; where it stores a compact C by TMA, also bit for bit its SWrite; in clusters of two
// blocks sharing B, bit for bit without) against the CPU
// M-gather in f64 on the same operands and an index made on the CPU from the same routing or
// pattern, outputs poisoned (NaN) first: expert segments (SRead of x's rows into compact outputs with a per-expert bias and GELU, or with B [K, N]; compact rows
// SWritten to their tokens, gate-weighted and accumulated over top-2, with B either way) under
// uniform routing, one expert taking every
// token's first slot, and experts without tokens; whole rows at sparsity 0-100 %; 1 x 64 K-chunk
// segments; experts whose last row tile has 0, 1, 63, 64, 65, 127 rows; the weight gradients of
// expert segments. Ragged shapes (1000 tokens, K = 264, N = 200: none a multiple of the 128 x 128
// x 64 tile). Tolerances as in gemm_cuda_test.cpp (relative to the output's scale); accumulated
// outputs round once per contribution, so twice the dtype's. Skips without a GPU.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "ops/pit/cuda/gemm.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/gemm_cases.h"

using namespace pit;

namespace {

const Device kGpu = Device::cuda();
const std::vector<DType> kHalfTypes = {DType::bf16, DType::f16};
constexpr int64_t kTokens = 1000, kK = 264, kN = 200, kExperts = 6;

Tensor f64(const Tensor& t) { return t.defined() ? t.to(Device::cpu(), DType::f64) : t; }

// Sets one of sparse::cuda's switches for tests for its lifetime (set returns the previous value).
template <typename V, V (*kSet)(V)>
class Switch {
 public:
  explicit Switch(V v) : previous_(kSet(v)) {}
  ~Switch() { kSet(previous_); }
  Switch(const Switch&) = delete;
  Switch& operator=(const Switch&) = delete;

 private:
  V previous_;
};
#if PIT_WITH_CUDA
// Caps the persistent engines' grid (set_persistent_grid_cap), so that each block walks many
// tiles: on a large GPU these cases give each block one tile at most, and the ping-pong engine's
// turns and skipped stages would go untested.
using GridCap = Switch<int, sparse::cuda::set_persistent_grid_cap>;
// Whether the ping-pong M-gather loads B by TMA (set_gather_tma_b).
using TmaB = Switch<bool, sparse::cuda::set_gather_tma_b>;
// Whether it loads a compact A by TMA too (set_gather_tma_a).
using TmaA = Switch<bool, sparse::cuda::set_gather_tma_a>;
// Whether the wide engine stores a compact C by TMA (set_wide_tma_store).
using WideTmaStore = Switch<bool, sparse::cuda::set_wide_tma_store>;
// Whether the wide engine runs in clusters of two blocks sharing B (set_wide_cluster).
using WideCluster = Switch<bool, sparse::cuda::set_wide_cluster>;
#else
int no_switch(int v) { return v; }  // (the tests skip without CUDA)
using GridCap = Switch<int, no_switch>;
using TmaB = Switch<int, no_switch>;
using TmaA = Switch<int, no_switch>;
using WideTmaStore = Switch<int, no_switch>;
using WideCluster = Switch<int, no_switch>;
#endif

// No cap (a block a tile or so), one block walking every tile, three.
constexpr int kGridCaps[] = {0, 1, 3};
std::string grid_name(int cap) { return cap == 0 ? "" : " (grid of " + std::to_string(cap) + ")"; }

// The persistent engines: cp.async and TMA loads, each with shared and ping-pong consumers; the
// M-gather's also on the wide engine (after the ping-pong one: they are compared).
const sparse::Engine kWgradEngines[] = {sparse::Engine::wgmma_persistent, sparse::Engine::wgmma_pingpong,
                                        sparse::Engine::wgmma_tma, sparse::Engine::wgmma_tma_pingpong};
const sparse::Engine kGatherEngines[] = {sparse::Engine::wgmma_persistent, sparse::Engine::wgmma_pingpong,
                                         sparse::Engine::wgmma_tma, sparse::Engine::wgmma_tma_pingpong,
                                         sparse::Engine::wgmma_wide};
bool is_tma(sparse::Engine e) { return e == sparse::Engine::wgmma_tma || e == sparse::Engine::wgmma_tma_pingpong; }
// The engines that take expert segments (or one shared B) only, not K-chunks.
bool segments_only(sparse::Engine e) { return is_tma(e) || e == sparse::Engine::wgmma_wide; }

// Elements of two outputs of the same shape that differ (NaN equal to NaN: rows the index leaves
// out keep their poison in both).
int64_t bits_differ(const Tensor& x, const Tensor& y) {
  const std::vector<double> a = test::values(x), b = test::values(y);
  int64_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += !(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])));
  return differ;
}

// gather_gemm on the GPU (the persistent engines; with `segments` also those that take expert
// segments only: TMA and wide) against the CPU's in f64, C of shape `c_shape` (and Epilogue::pre,
// when args has one: each call gets it poisoned anew). The ping-pong engine runs three times: B and
// a compact A by TMA (its default on expert segments), A by cp.async, both by cp.async: the same
// MMAs on the same tiles, so bit for bit the same C where nothing is accumulated; so is the wide
// engine's (the same sums in the same order, the same epilogue), in clusters of two (off by
// default) and without.
void expect_gather(const Tensor& a, const sparse::RowSetIndex& gpu_idx, const sparse::RowSetIndex& cpu_idx,
                   const Tensor& b, const Shape& c_shape, sparse::GatherGemmArgs args, double tol,
                   const std::string& what, bool segments = true) {
  const bool with_pre = args.epilogue.pre.defined();
  const bool once = args.epilogue.write != sparse::Write::accumulate;  // each output written once
  Tensor pp_c, pp_pre;  // the ping-pong engine's outputs
  for (const sparse::Engine engine : kGatherEngines) {
    if (segments_only(engine) && !segments) continue;
    args.engine = engine;
    sparse::GatherGemmArgs ref = args;
    ref.engine = sparse::Engine::automatic;
    ref.epilogue.bias = f64(args.epilogue.bias);
    if (with_pre) ref.epilogue.pre = test::poisoned(c_shape, DType::f64);
    Tensor want = test::poisoned(c_shape, DType::f64);
    sparse::gather_gemm(f64(a), cpu_idx, f64(b), want, ref);
    if (with_pre) args.epilogue.pre.fill_(std::numeric_limits<double>::quiet_NaN());
    Tensor c = test::poisoned(c_shape, a.dtype(), kGpu);
    const WideTmaStore tma_store(true);  // (the wide engine: TMA stores where it can; SWrite below)
    const WideCluster cluster(true);     // (and in clusters of two; a block a tile below)
    sparse::gather_gemm(a, gpu_idx, b, c, args);
    if (with_pre)
      test::expect_close(args.epilogue.pre, ref.epilogue.pre, tol, tol, what + " pre (" + test::engine_name(engine) + ")");
    if (engine == sparse::Engine::wgmma_pingpong) {
      // Again with a compact A by cp.async (B by TMA), then both by cp.async.
      for (const bool b_tma : {true, false}) {
        const TmaA a_cp(false);
        const TmaB b_way(b_tma);
        Tensor c2 = test::poisoned(c_shape, a.dtype(), kGpu);
        sparse::gather_gemm(a, gpu_idx, b, c2, args);
        const std::string way = b_tma ? "A by cp.async, B by TMA" : "A and B by cp.async";
        test::expect_close(c2, want, tol, tol, what + " (ping-pong, " + way + ")");
        // Bit for bit where each output is written once (atomic adds of many K-chunks land in any order).
        if (once) {
          EXPECT_EQ(bits_differ(c2, c), 0) << what << ": the ping-pong engine's default loads and " << way << " differ";
        }
      }
      pp_c = c;
      if (with_pre) pp_pre = args.epilogue.pre.clone();
    }
    if (engine == sparse::Engine::wgmma_wide && once && pp_c.defined()) {
      EXPECT_EQ(bits_differ(c, pp_c), 0) << what << ": the wide and ping-pong engines differ";
      if (with_pre) {
        EXPECT_EQ(bits_differ(args.epilogue.pre, pp_pre), 0) << what << ": pre of the wide and ping-pong engines differ";
      }
      // The wide engine again with one of its switches changed (make_switch's guard): the same C
      // and pre, bit for bit.
      const auto expect_same = [&](const std::string& how, const auto& make_switch) {
        const Tensor pre_first = with_pre ? args.epilogue.pre.clone() : Tensor();
        if (with_pre) args.epilogue.pre.fill_(std::numeric_limits<double>::quiet_NaN());
        const auto setting = make_switch();
        Tensor c2 = test::poisoned(c_shape, a.dtype(), kGpu);
        sparse::gather_gemm(a, gpu_idx, b, c2, args);
        EXPECT_EQ(bits_differ(c2, c), 0) << what << ": the wide engine " << how << " differ";
        if (with_pre) {
          EXPECT_EQ(bits_differ(args.epilogue.pre, pre_first), 0) << what << ": pre of the wide engine " << how << " differ";
        }
      };
      // Without clusters (each block loading all of B's stages; the grid caps round to whole
      // clusters, so a cap of 1 or 3 ran one cluster of two).
      expect_same("in clusters of two and without", [] { return WideCluster(false); });
      // Where it stores a compact C by TMA (gathered rows of A, no bias; C and pre 16-byte
      // aligned), with SWrite: the same elements.
      const auto aligned16 = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
      if (args.a_gathered && !args.c_scattered && !args.epilogue.bias.defined() && c_shape[1] % 8 == 0 &&
          (!with_pre || aligned16(args.epilogue.pre)))
        expect_same("with TMA stores and SWrite", [] { return WideTmaStore(false); });
    }
    test::expect_close(c, want, tol, tol, what + " (" + test::engine_name(engine) + ")");
  }
}

// expert_of [T, 2] for a routing kind: 0 uniform, 1 every first slot on expert 2, 2 only experts
// 1 and 4 (the others get no token).
Tensor routing(int kind, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(kTokens * 2));
  uint64_t state = seed;
  const auto next = [&]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int32_t>(state >> 33);
  };
  for (int64_t t = 0; t < kTokens; ++t) {
    constexpr int32_t kE = static_cast<int32_t>(kExperts);
    int32_t e0 = next() % kE, e1 = (e0 + 1 + next() % (kE - 1)) % kE;
    if (kind == 1) e0 = 2, e1 = (2 + 1 + next() % (kE - 1)) % kE;
    if (kind == 2) e0 = next() % 2 ? 1 : 4, e1 = e0 == 1 ? 4 : 1;
    ids[static_cast<size_t>(2 * t)] = e0;
    ids[static_cast<size_t>(2 * t + 1)] = e1;
  }
  return from_vector(ids, {kTokens, 2});
}

// A routing of kind `kind` with random gates, its index on each device and tokens x [T, K].
struct Experts {
  sparse::RowSetIndex gpu, cpu;
  Tensor x;
};

Experts experts_case(int kind, DType dt, uint64_t& seed) {
  const Tensor ids = routing(kind, ++seed);
  const Tensor gates = test::dense_random({kTokens, 2}, ++seed, DType::f32);
  return {sparse::rows_from_routing(ids.to(kGpu), kExperts, gates.to(kGpu)),
          sparse::rows_from_routing(ids, kExperts, gates), test::dense_random({kTokens, kK}, ++seed, dt, kGpu)};
}

}  // namespace

TEST(GatherPersistentCuda, Experts) {
  PIT_REQUIRE_CUDA();
  uint64_t seed = 300;
  for (const int cap : kGridCaps)
    for (const DType dt : kHalfTypes)
      for (int kind = 0; kind < 3; ++kind) {
        const GridCap grid(cap);
        const std::string what = std::string(dtype_name(dt)) + " routing " + std::to_string(kind) + grid_name(cap);
        const double tol = test::tol_for(dt);
        const auto [gi, ci, x] = experts_case(kind, dt, seed);
        const Tensor w1 = test::dense_random({kExperts, kN, kK}, ++seed, dt, kGpu);  // [E, N, K]: b_trans
        const Tensor bias = test::dense_random({kExperts, kN}, ++seed, dt, kGpu);
        expect_gather(x, gi, ci, w1, {2 * kTokens, kN},
                      {.a_gathered = true, .c_scattered = false, .b_trans = true,
                       .epilogue = {.bias = bias, .activation = true, .act = UnaryOp::gelu_tanh}},
                      tol, "up (SRead of x, compact, bias + gelu) " + what);
        // As moe_ffn's up GEMM: pre and gate * gelu(pre), pre in a view 2 bytes off a 16-byte
        // boundary on every other case (its stores then take the element-wise path).
        Tensor pre_buf = Tensor::empty({2 * kTokens * kN + 1}, dt, kGpu);
        const int64_t shift = kind % 2;
        expect_gather(x, gi, ci, w1, {2 * kTokens, kN},
                      {.a_gathered = true, .c_scattered = false, .b_trans = true, .use_weights = true,
                       .epilogue = {.activation = true,
                                    .act = UnaryOp::gelu_tanh,
                                    .pre = pre_buf.slice(0, shift, shift + 2 * kTokens * kN).view({2 * kTokens, kN}),
                                    .scale_after_activation = true}},
                      tol, "up (SRead of x, compact, pre and gate * gelu(pre)) " + what);
        const Tensor h = test::dense_random({2 * kTokens, kN}, ++seed, dt, kGpu);
        const Tensor w2 = test::dense_random({kExperts, kN, kK}, ++seed, dt, kGpu);  // [E, K = N, N = K]
        expect_gather(h, gi, ci, w2, {kTokens, kK},
                      {.a_gathered = false, .c_scattered = true, .use_weights = true, .zero_c = true,
                       .epilogue = {.write = sparse::Write::accumulate}},
                      2 * tol, "down (compact A, gated SWrite, top-2 accumulate) " + what);
        // As moe_ffn's gu GEMM (SRead of dy's rows, B_s [K, N], compact C) and its down GEMM (B_s
        // [N, K]: w1's shape stands in).
        const Tensor dy = test::dense_random({kTokens, kK}, ++seed, dt, kGpu);
        const Tensor w2t = test::dense_random({kExperts, kK, kN}, ++seed, dt, kGpu);
        expect_gather(dy, gi, ci, w2t, {2 * kTokens, kN}, {.a_gathered = true, .c_scattered = false}, tol,
                      "gu (SRead of dy, B [K, N], compact) " + what);
        expect_gather(h, gi, ci, w1.transpose(1, 2).contiguous(), {kTokens, kK},
                      {.a_gathered = false, .c_scattered = true, .b_trans = true, .zero_c = true,
                       .epilogue = {.write = sparse::Write::accumulate}},
                      2 * tol, "down (compact A, B [N, K], top-2 accumulate) " + what);
        if (::testing::Test::HasFailure()) return;
      }
}

// Experts whose last row tile holds every remainder that matters to the engines: none, 1, 63 and
// 64 rows (the ping-pong engine skips the MMAs of rows 64-127 there), 65, 127, whole tiles, one
// row past; for the wide engine's clusters of two, experts of one row tile (a split unit, at one
// column tile with its second empty, or at two) and of two (a pair). Top-1, tokens dealt to the
// experts in a shuffled order.
TEST(GatherPersistentCuda, RowTileRemainders) {
  PIT_REQUIRE_CUDA();
  const std::vector<int> counts = {0, 1, 63, 64, 65, 127, 128, 129, 192, 193, 256};
  std::vector<int32_t> ids;
  for (size_t e = 0; e < counts.size(); ++e)
    ids.insert(ids.end(), static_cast<size_t>(counts[e]), static_cast<int32_t>(e));
  uint64_t state = 77;
  for (size_t i = ids.size(); i > 1; --i) {  // Fisher-Yates with a fixed LCG
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(ids[i - 1], ids[static_cast<size_t>((state >> 33) % i)]);
  }
  const int64_t tokens = static_cast<int64_t>(ids.size()), experts = static_cast<int64_t>(counts.size());
  const Tensor expert_of = from_vector(ids, {tokens, 1});
  const Tensor gates = test::dense_random({tokens, 1}, 5, DType::f32);
  const sparse::RowSetIndex gi = sparse::rows_from_routing(expert_of.to(kGpu), experts, gates.to(kGpu));
  const sparse::RowSetIndex ci = sparse::rows_from_routing(expert_of, experts, gates);
  uint64_t seed = 600;
  for (const int cap : kGridCaps)
    for (const DType dt : kHalfTypes) {
      const GridCap grid(cap);
      const std::string what = std::string(dtype_name(dt)) + grid_name(cap);
      const double tol = test::tol_for(dt);
      const Tensor x = test::dense_random({tokens, kK}, ++seed, dt, kGpu);
      const Tensor w1 = test::dense_random({experts, kN, kK}, ++seed, dt, kGpu);
      expect_gather(x, gi, ci, w1, {tokens, kN}, {.a_gathered = true, .c_scattered = false, .b_trans = true}, tol,
                    "up (SRead of x, compact) " + what);
      // Three column tiles of the wide engine (N = 600): its clusters' split units (an expert's
      // odd last row tile at column tiles 0-1 and 2-3) take one with its second tile empty.
      const Tensor w_wide = test::dense_random({experts, 600, kK}, ++seed, dt, kGpu);
      expect_gather(x, gi, ci, w_wide, {tokens, 600}, {.a_gathered = true, .c_scattered = false, .b_trans = true}, tol,
                    "up (SRead of x, compact, N = 600) " + what);
      // With an activation: pre and gate * silu(pre) (moe_ffn's up GEMM), and relu(gate * sums)
      // without pre (the wide engine's TMA stores take whole 64-row slices, SWrite the rest).
      const Tensor pre = Tensor::empty({tokens, kN}, dt, kGpu);
      expect_gather(x, gi, ci, w1, {tokens, kN},
                    {.a_gathered = true, .c_scattered = false, .b_trans = true, .use_weights = true,
                     .epilogue = {.activation = true, .act = UnaryOp::silu, .pre = pre, .scale_after_activation = true}},
                    tol, "up (SRead of x, compact, pre and gate * silu(pre)) " + what);
      expect_gather(x, gi, ci, w1, {tokens, kN},
                    {.a_gathered = true, .c_scattered = false, .b_trans = true, .use_weights = true,
                     .epilogue = {.activation = true, .act = UnaryOp::relu}},
                    tol, "up (SRead of x, compact, relu(gate * sums)) " + what);
      const Tensor h = test::dense_random({tokens, kN}, ++seed, dt, kGpu);
      const Tensor w2 = test::dense_random({experts, kN, kK}, ++seed, dt, kGpu);
      expect_gather(h, gi, ci, w2, {tokens, kK},
                    {.a_gathered = false, .c_scattered = true, .use_weights = true, .zero_c = true}, tol,
                    "down (compact A, gated SWrite) " + what);
      if (::testing::Test::HasFailure()) return;
    }
}

// The weight gradient dB_s = sum_e scale_e A[a_row(e)]^T G[g_row(e)] on the persistent engine,
// its ping-pong variant and both with TMA loads, against the CPU's in f64: x's rows gathered with
// compact G (MoE's dW1) and both gathered with gates (dW2; without gates on the TMA engines),
// [E, K, N] and transposed, store and accumulate onto a random dB. The routings' experts end in
// partial stages (the TMA engines' row boxes past the segment read zeros), take every token, or
// none.
TEST(GatherPersistentCuda, WeightGradients) {
  PIT_REQUIRE_CUDA();
  uint64_t seed = 500;
  for (const int cap : kGridCaps)
    for (const DType dt : kHalfTypes)
      for (int kind = 0; kind < 3; ++kind) {
        const GridCap grid(cap);
        const double tol = test::tol_for(dt);
        const auto [gi, ci, x] = experts_case(kind, dt, seed);
        const Tensor dpre = test::dense_random({2 * kTokens, kN}, ++seed, dt, kGpu);  // compact, by entry
        const Tensor dy = test::dense_random({kTokens, kN}, ++seed, dt, kGpu);
        const Tensor start = test::dense_random({kExperts, kK, kN}, ++seed, dt, kGpu);
        for (const sparse::Engine engine : kWgradEngines)
          for (const bool trans : {false, true})
            for (const bool gated : {false, true})
              for (const bool acc : {false, true}) {
                // The TMA engines take no entry weights: both operands gathered, without gates.
                const bool tma = is_tma(engine);
                const std::string what = std::string(dtype_name(dt)) + " routing " + std::to_string(kind) +
                                         (trans ? " b_trans" : "") +
                                         (gated ? (tma ? " both gathered" : " gated (both gathered)") : " compact G") +
                                         (acc ? " accumulate" : " store") + " (" + test::engine_name(engine) + ")" +
                                         grid_name(cap);
                const Tensor& g = gated ? dy : dpre;
                const sparse::GatherWeightGradArgs args{.a_gathered = true, .g_gathered = gated, .b_trans = trans,
                                                        .use_weights = gated && !tma,
                                                        .write = acc ? sparse::Write::accumulate : sparse::Write::store,
                                                        .engine = engine};
                const Tensor init = trans ? start.transpose(1, 2).contiguous() : start;
                Tensor got = acc ? init.clone() : test::poisoned(init.shape(), dt, kGpu);
                sparse::gather_weight_grad(x, g, gi, got, args);
                sparse::GatherWeightGradArgs ref = args;
                ref.engine = sparse::Engine::automatic;
                Tensor want = acc ? f64(init) : test::poisoned(init.shape(), DType::f64);
                sparse::gather_weight_grad(f64(x), f64(g), ci, want, ref);
                test::expect_close(got, want, 2 * tol, 2 * tol, "weight grad " + what);
                if (::testing::Test::HasFailure()) return;
              }
      }
}

TEST(GatherPersistentCuda, RowsAndKChunks) {
  PIT_REQUIRE_CUDA();
  uint64_t seed = 400;
  for (const DType dt : kHalfTypes)
    for (const double d : test::kGemmDensities) {
      const std::string what = std::string(dtype_name(dt)) + " density " + std::to_string(d);
      const double tol = test::tol_for(dt);
      const Tensor a = test::sparse_tensor(kTokens, kK, 1, kK, d, ++seed, dt, kGpu);
      const Tensor b = test::dense_random({kK, kN}, ++seed, dt, kGpu);
      const Tensor w = test::dense_random({kN, kK}, ++seed, dt, kGpu);
      const Tensor bias = test::dense_random({kN}, ++seed, dt, kGpu);
      const sparse::RowSetIndex gi = sparse::detect_rows(a), ci = sparse::detect_rows(f64(a));
      expect_gather(a, gi, ci, b, {kTokens, kN}, {.zero_c = true}, tol, "rows, store " + what);
      expect_gather(a, gi, ci, w, {kTokens, kN},
                    {.b_trans = true, .zero_c = true, .epilogue = {.bias = bias, .activation = true, .act = UnaryOp::relu}},
                    tol, "rows, b_trans, bias + relu " + what);
      const Tensor ak = test::sparse_tensor(kTokens, kK, 1, 64, d, ++seed, dt, kGpu);
      const sparse::RowSetIndex gk = sparse::detect_rows(ak, 64), ck = sparse::detect_rows(f64(ak), 64);
      expect_gather(ak, gk, ck, b, {kTokens, kN}, {.zero_c = true, .epilogue = {.write = sparse::Write::accumulate}},
                    2 * tol, "1 x 64 K-chunks " + what, /*segments=*/false);
      if (::testing::Test::HasFailure()) return;
    }
}

// The TMA engines and the wide one refuse what they do not take, naming it: K-chunk segments in
// the M-gather, entry weights in the weight gradient.
TEST(GatherPersistentCuda, TmaEnginesRefuseWhatTheyDoNotTake) {
  PIT_REQUIRE_CUDA();
  for (const sparse::Engine engine : {sparse::Engine::wgmma_tma, sparse::Engine::wgmma_wide}) {
    const std::string name = test::engine_name(engine);
    {
      const Tensor a = test::sparse_tensor(100, 128, 1, 64, 0.5, 3, DType::bf16, kGpu);
      const Tensor b = test::dense_random({128, 64}, 4, DType::bf16, kGpu);
      Tensor c = test::poisoned({100, 64}, DType::bf16, kGpu);
      try {
        sparse::gather_gemm(a, sparse::detect_rows(a, 64), b, c,
                            {.zero_c = true, .epilogue = {.write = sparse::Write::accumulate}, .engine = engine});
        ADD_FAILURE() << "expected an error for K-chunks on the " << name << " engine";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("K-chunks"), std::string::npos) << e.what();
      }
    }
    uint64_t seed = 900;
    const Experts c = experts_case(0, DType::bf16, seed);
    const Tensor dy = test::dense_random({kTokens, kN}, ++seed, DType::bf16, kGpu);
    Tensor db = test::poisoned({kExperts, kK, kN}, DType::bf16, kGpu);
    try {
      sparse::gather_weight_grad(c.x, dy, c.gpu, db,
                                 {.a_gathered = true, .g_gathered = true, .use_weights = true, .engine = engine});
      ADD_FAILURE() << "expected an error for use_weights on the " << name << " engine";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("entry weights"), std::string::npos) << e.what();
    }
  }
}

TEST(GatherPersistentCuda, UnalignedRowsAreRefused) {
  PIT_REQUIRE_CUDA();
  const Tensor a = test::sparse_tensor(100, 97, 1, 97, 0.5, 1, DType::bf16, kGpu);  // K = 97: rows not 16-byte aligned
  const Tensor b = test::dense_random({97, 64}, 2, DType::bf16, kGpu);
  Tensor c = test::poisoned({100, 64}, DType::bf16, kGpu);
  try {
    sparse::gather_gemm(a, sparse::detect_rows(a), b, c, {.zero_c = true, .engine = sparse::Engine::wgmma_persistent});
    ADD_FAILURE() << "expected an error for K = 97";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("16-byte aligned"), std::string::npos) << e.what();
  }
}
