// sparse::moe_activation_backward on CUDA: against the host recomputation of
// tests/ops/pit/moe_grad_cases.h (f32, bf16, f16; tolerances there), and against the CPU
// implementation on the same inputs. Skips without a GPU (fails with PIT_REQUIRE_GPU=1).
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
