// The weight gradient's lean kernel (ops/pit/cuda/weight_grad_lean.cu) and its wide, persistent
// variant (weight_grad_wide.cu, 128 x 256 tiles), which gather_weight_grad takes by itself for
// f16/bf16 with aligned rows, no entry weights and dB stored (the wide one where dB has over 128
// columns): bit-identical to the general wgmma kernel (Engine::wgmma: the same MMAs in the same
// order) and within rounding of the CPU's f64, outputs poisoned (NaN) first. Experts of 0, 1, 63,
// 64, 65, 127, 128, 129 and 300 entries (stages that end part-way, experts with none), top-1 and
// top-2, P and Q multiples of 8 but not of the tiles (Q = 200 within one 256-column tile, 264 in
// two), every combination of gathered and compact operands, dB [E, K, N] and transposed; the wide
// kernel also with its grid capped at 1 and 3 blocks, so that each block walks many tiles (its
// loads run on from one tile into the next). The cases they do not take are named by
// gather_weight_grad_lean_takes / _wide_takes and still computed right. Skips without a GPU.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ops/pit/cuda/gemm.h"
#include "tests/gpu.h"
#include "tests/ops/pit/gemm_cases.h"

using namespace pit;

namespace {

const Device kGpu = Device::cuda();
constexpr int64_t kK = 264, kN = 200;  // multiples of 8, not of 128

Tensor f64(const Tensor& t) { return t.defined() ? t.to(Device::cpu(), DType::f64) : t; }

// expert_of [T, top]: top-1 with the experts' counts dealt in a shuffled order, or top-2 with the
// second choice spread over the other experts.
Tensor routing(int top, uint64_t seed) {
  const std::vector<int> counts = {0, 1, 63, 64, 65, 127, 128, 129, 300};
  std::vector<int32_t> first;
  for (size_t e = 0; e < counts.size(); ++e) first.insert(first.end(), static_cast<size_t>(counts[e]), static_cast<int32_t>(e));
  uint64_t state = seed;
  const auto next = [&]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (size_t i = first.size(); i > 1; --i) std::swap(first[i - 1], first[next() % i]);
  const int32_t experts = static_cast<int32_t>(counts.size());
  std::vector<int32_t> ids;
  for (const int32_t e : first) {
    ids.push_back(e);
    if (top == 2) ids.push_back((e + 1 + static_cast<int32_t>(next() % (experts - 1))) % experts);
  }
  return from_vector(ids, {static_cast<int64_t>(first.size()), top});
}

constexpr int64_t kExperts = 9;

// PIT_WEIGHT_GRAD_WIDE=0 for its lifetime (the lean kernel keeps the cases the wide one takes).
class NoWide {
 public:
  NoWide() { EXPECT_EQ(setenv("PIT_WEIGHT_GRAD_WIDE", "0", 1), 0); }
  ~NoWide() { EXPECT_EQ(unsetenv("PIT_WEIGHT_GRAD_WIDE"), 0); }
  NoWide(const NoWide&) = delete;
  NoWide& operator=(const NoWide&) = delete;
};

// The persistent kernels' grid capped at `blocks` for its lifetime (0: no cap).
class GridCap {
 public:
  explicit GridCap(int blocks) : previous_(sparse::cuda::set_persistent_grid_cap(blocks)) {}
  ~GridCap() { sparse::cuda::set_persistent_grid_cap(previous_); }
  GridCap(const GridCap&) = delete;
  GridCap& operator=(const GridCap&) = delete;

 private:
  int previous_;
};

// The kernels under test: the wide one with no grid cap, 1 and 3 blocks; the lean one.
struct Variant {
  std::string name;
  bool wide;
  int grid_cap;
};
const std::vector<Variant> kVariants = {
    {"wide", true, 0}, {"wide, grid of 1", true, 1}, {"wide, grid of 3", true, 3}, {"lean", false, 0}};

}  // namespace

TEST(WeightGradLeanCuda, BitIdenticalToTheWgmmaEngineAndCloseToTheCpu) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  uint64_t seed = 700;
  for (const Variant& v : kVariants)
    for (const DType dt : {DType::bf16, DType::f16})
      for (const int top : {1, 2}) {
        const Tensor ids = routing(top, ++seed);
        const int64_t tokens = ids.size(0), entries = tokens * top;
        const Tensor gates = test::dense_random({tokens, top}, ++seed, DType::f32);
        const sparse::RowSetIndex gi = sparse::rows_from_routing(ids.to(kGpu), kExperts, gates.to(kGpu));
        const sparse::RowSetIndex ci = sparse::rows_from_routing(ids, kExperts, gates);
        for (const bool a_gathered : {true, false})
          for (const bool g_gathered : {true, false})
            for (const bool trans : {false, true}) {
              const std::string what = v.name + ", " + std::string(dtype_name(dt)) + " top-" + std::to_string(top) +
                                       (a_gathered ? " A gathered" : " A compact") +
                                       (g_gathered ? " G gathered" : " G compact") + (trans ? " b_trans" : "");
              const Tensor a = test::dense_random({a_gathered ? tokens : entries, kK}, ++seed, dt, kGpu);
              const Tensor g = test::dense_random({g_gathered ? tokens : entries, kN}, ++seed, dt, kGpu);
              const Shape shape = trans ? Shape{kExperts, kN, kK} : Shape{kExperts, kK, kN};
              const sparse::GatherWeightGradArgs args{.a_gathered = a_gathered, .g_gathered = g_gathered, .b_trans = trans};
              Tensor got = test::poisoned(shape, dt, kGpu);
              {
                std::optional<NoWide> lean;
                if (!v.wide) lean.emplace();
                const GridCap cap(v.grid_cap);
                ASSERT_TRUE(sparse::cuda::gather_weight_grad_lean_takes(a, g, gi, got, args)) << what;
                EXPECT_EQ(sparse::cuda::gather_weight_grad_wide_takes(a, g, gi, got, args), v.wide) << what;
                sparse::gather_weight_grad(a, g, gi, got, args);
              }
              sparse::GatherWeightGradArgs general = args;
              general.engine = sparse::Engine::wgmma;
              Tensor want = test::poisoned(shape, dt, kGpu);
              sparse::gather_weight_grad(a, g, gi, want, general);
              EXPECT_EQ(test::values(got), test::values(want)) << what << ": not bit-identical to the wgmma engine";
              Tensor ref = test::poisoned(shape, DType::f64);
              sparse::gather_weight_grad(f64(a), f64(g), ci, ref, args);
              test::expect_close(got, ref, test::tol_for(dt), test::tol_for(dt), what + " against the CPU");
              if (::testing::Test::HasFailure()) return;
            }
      }
}

// What the lean kernel does not take goes to the general kernel, named by the predicate, and is
// still right: entry weights, accumulation, a dB that does not start 16-byte aligned, rows of A
// not 16-byte aligned (K = 260), f32, another engine asked for, PIT_WEIGHT_GRAD_LEAN=0.
TEST(WeightGradLeanCuda, OtherCasesTakeTheGeneralKernel) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  uint64_t seed = 800;
  const Tensor ids = routing(2, ++seed);
  const int64_t tokens = ids.size(0);
  const Tensor gates = test::dense_random({tokens, 2}, ++seed, DType::f32);
  const sparse::RowSetIndex gi = sparse::rows_from_routing(ids.to(kGpu), kExperts, gates.to(kGpu));
  const sparse::RowSetIndex ci = sparse::rows_from_routing(ids, kExperts, gates);
  struct Case {
    std::string what;
    DType dt;
    int64_t k;
    sparse::GatherWeightGradArgs args;
    bool misaligned_db;
  };
  using sparse::Engine;
  using sparse::Write;
  const std::vector<Case> cases = {
      {"entry weights", DType::bf16, kK, {.use_weights = true}, false},
      {"accumulate", DType::bf16, kK, {.write = Write::accumulate}, false},
      {"dB 2 bytes past alignment", DType::bf16, kK, {}, true},
      {"K = 260 (rows of A not 16-byte aligned)", DType::bf16, 260, {}, false},
      {"f32", DType::f32, kK, {}, false},
      {"Engine::wgmma", DType::bf16, kK, {.engine = Engine::wgmma}, false},
      {"PIT_WEIGHT_GRAD_LEAN=0", DType::bf16, kK, {}, false},
  };
  for (const Case& c : cases) {
    const Tensor a = test::dense_random({tokens, c.k}, ++seed, c.dt, kGpu);
    const Tensor g = test::dense_random({tokens, kN}, ++seed, c.dt, kGpu);
    const Tensor start = test::dense_random({kExperts, c.k, kN}, ++seed, c.dt, kGpu);
    const int64_t size = kExperts * c.k * kN;
    Tensor got = c.misaligned_db ? test::poisoned({size + 1}, c.dt, kGpu).slice(0, 1, size + 1).view(start.shape())
                                 : test::poisoned(start.shape(), c.dt, kGpu);
    if (c.args.write == Write::accumulate) got.copy_(start);
    const bool knob = c.what == "PIT_WEIGHT_GRAD_LEAN=0";
    if (knob) {
      ASSERT_EQ(setenv("PIT_WEIGHT_GRAD_LEAN", "0", 1), 0);
    }
    EXPECT_FALSE(sparse::cuda::gather_weight_grad_lean_takes(a, g, gi, got, c.args)) << c.what;
    sparse::gather_weight_grad(a, g, gi, got, c.args);
    if (knob) {
      ASSERT_EQ(unsetenv("PIT_WEIGHT_GRAD_LEAN"), 0);
    }
    Tensor ref = c.args.write == Write::accumulate ? f64(start) : test::poisoned(start.shape(), DType::f64);
    sparse::GatherWeightGradArgs cpu = c.args;
    cpu.engine = Engine::automatic;
    sparse::gather_weight_grad(f64(a), f64(g), ci, ref, cpu);
    const double tol = 2 * test::tol_for(c.dt);
    test::expect_close(got, ref, tol, tol, c.what);
  }
}

// dB of 128 columns or fewer: the lean kernel, not the wide one (half its tile would be empty);
// right either way.
TEST(WeightGradLeanCuda, NarrowOutputsTakeTheLeanKernel) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  uint64_t seed = 900;
  const Tensor ids = routing(2, ++seed);
  const int64_t tokens = ids.size(0);
  const Tensor gates = test::dense_random({tokens, 2}, ++seed, DType::f32);
  const sparse::RowSetIndex gi = sparse::rows_from_routing(ids.to(kGpu), kExperts, gates.to(kGpu));
  const sparse::RowSetIndex ci = sparse::rows_from_routing(ids, kExperts, gates);
  for (const int64_t n : {8, 128, 136}) {
    const std::string what = "N = " + std::to_string(n);
    const Tensor a = test::dense_random({tokens, kK}, ++seed, DType::bf16, kGpu);
    const Tensor g = test::dense_random({tokens * 2, n}, ++seed, DType::bf16, kGpu);
    const sparse::GatherWeightGradArgs args{.a_gathered = true, .g_gathered = false};
    Tensor got = test::poisoned({kExperts, kK, n}, DType::bf16, kGpu);
    EXPECT_TRUE(sparse::cuda::gather_weight_grad_lean_takes(a, g, gi, got, args)) << what;
    EXPECT_EQ(sparse::cuda::gather_weight_grad_wide_takes(a, g, gi, got, args), n > 128) << what;
    sparse::gather_weight_grad(a, g, gi, got, args);
    Tensor ref = test::poisoned({kExperts, kK, n}, DType::f64);
    sparse::gather_weight_grad(f64(a), f64(g), ci, ref, args);
    test::expect_close(got, ref, test::tol_for(DType::bf16), test::tol_for(DType::bf16), what);
  }
}
