// sparse::moe_activation_backward on CUDA: against the host recomputation of
// tests/ops/pit/moe_grad_cases.h (f32, bf16, f16; tolerances there), and against the CPU
// implementation on the same inputs. Skips without a GPU (fails with PIT_REQUIRE_GPU=1).
#include <string>
#include <utility>
#include <vector>

#include "tests/gpu.h"
#include "tests/ops/pit/moe_grad_cases.h"

using namespace pit;

TEST(MoeActivationBackwardCuda, AgainstTheHostRecomputation) {
  PIT_REQUIRE_CUDA();
  test::run_moe_grad_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}

// The CUDA kernel and the CPU reference on one top-2 routing with repeats and drops, F = 4096
// (the vector path), same inputs: equal up to the dtype's tolerance (f32 math in both, the
// derivative's transcendental functions and the sums' order differ).
TEST(MoeActivationBackwardCuda, MatchesTheCpu) {
  PIT_REQUIRE_CUDA();
  const test::MoeGradCase c{200, 2, 8, 4096, test::Routing::with_drops, true, UnaryOp::gelu_tanh};
  const std::vector<int64_t> ids = test::moe_grad_routing(c, 31);
  const Tensor ids_t = from_vector(ids, {c.tokens, c.k});
  const Tensor gates = test::dense_random({c.tokens, c.k}, 32);
  for (const DType dt : {DType::f32, DType::bf16, DType::f16}) {
    const int64_t cap = c.tokens * c.k;
    const Tensor gu = test::dense_random({cap, c.f}, 33, dt), pre = test::dense_random({cap, c.f}, 34, dt);
    Tensor out[2][2];  // [cpu, cuda][dpre, dgates]
    for (const int on_gpu : {0, 1}) {
      const Device dev = on_gpu ? Device::cuda() : Device::cpu();
      const sparse::RowSetIndex idx = sparse::rows_from_routing(ids_t.to(dev), c.experts, gates.to(dev));
      out[on_gpu][0] = zeros({cap, c.f}, dt, dev);
      out[on_gpu][1] = test::poisoned({c.tokens, c.k}, DType::f32, dev);
      sparse::moe_activation_backward(c.act, gu.to(dev), pre.to(dev), idx, ids_t.to(dev), out[on_gpu][0], out[on_gpu][1]);
    }
    // Each side rounds dpre once: they may be a unit in the last place apart, twice the tolerance.
    const double tol = 2 * test::dpre_tol(dt);
    test::expect_close(out[1][0], out[0][0], tol, tol, std::string("dpre ") + dtype_name(dt));
    test::expect_close(out[1][1], out[0][1], test::dgates_tol(dt), test::dgates_tol(dt),
                       std::string("dgates ") + dtype_name(dt));
  }
}

// Zero-size operands on the GPU, as on the CPU: no tokens (T = 0, capacity 0) leave dpre [0, F]
// and dgates [0, k] empty and launch nothing; no features (F = 0, T > 0, some slots dropped) make
// every entry's <gu, act(pre)> a sum over nothing, so every slot of dgates is written 0 (the
// contract: every element written) and dpre [capacity, 0] stays empty, as on the CPU.
TEST(MoeActivationBackwardCuda, ZeroTokensOrFeaturesMatchCpu) {
  PIT_REQUIRE_CUDA();
  const int64_t k = 2, experts = 3;
  for (const DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const auto& [tokens, f] : {std::pair<int64_t, int64_t>{0, 64}, {0, 37}, {6, 0}}) {
      const std::string what = std::string(dtype_name(dt)) + " T=" + std::to_string(tokens) + " F=" + std::to_string(f);
      const int64_t cap = tokens * k;
      std::vector<int64_t> ids(static_cast<size_t>(cap));
      for (int64_t i = 0; i < cap; ++i) ids[static_cast<size_t>(i)] = i % 4 == 3 ? -1 : i % experts;  // some dropped
      const Tensor ids_t = from_vector(ids, {tokens, k}), gates = test::dense_random({tokens, k}, 41);
      const Tensor gu = test::dense_random({cap, f}, 42, dt), pre = test::dense_random({cap, f}, 43, dt);
      Tensor out[2][2];  // [cpu, cuda][dpre, dgates]
      for (const int on_gpu : {0, 1}) {
        const Device dev = on_gpu ? Device::cuda() : Device::cpu();
        const sparse::RowSetIndex idx = sparse::rows_from_routing(ids_t.to(dev), experts, gates.to(dev));
        out[on_gpu][0] = test::poisoned({cap, f}, dt, dev);
        out[on_gpu][1] = test::poisoned({tokens, k}, DType::f32, dev);
        sparse::moe_activation_backward(UnaryOp::silu, gu.to(dev), pre.to(dev), idx, ids_t.to(dev), out[on_gpu][0],
                                        out[on_gpu][1]);
      }
      for (const int i : {0, 1}) {
        EXPECT_TRUE(out[1][i].is_cuda()) << what;
        EXPECT_EQ(out[1][i].dtype(), out[0][i].dtype()) << what;
        test::expect_close(out[1][i], out[0][i], 0.0, 0.0, what + (i ? " dgates" : " dpre"));  // NaN: not written
      }
    }
}
