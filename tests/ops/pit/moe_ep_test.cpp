// Expert parallelism (ops/pit/moe_ep.h) against the single-process layer: ctest runs this once
// as one process and once under `mpirun -np 2`. Every rank builds the whole problem (all tokens,
// all experts) from one seed, runs the reference moe_ffn on all of it, then the expert-parallel
// layer on its own tokens and experts, and checks its share: outputs, and the gradients of its
// tokens, gates and experts (an expert's gradient sums every rank's tokens routed to it). The
// CUDA variant (f32, the dispatch index built on the GPU) runs as one process in ctest; on a
// machine with a GPU per rank: mpirun -np 2 test_pit_moe_ep --gtest_filter='*Cuda*'.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/comm.h"
#include "ops/comm_ops.h"
#include "ops/functional.h"
#include "ops/pit/moe_ep.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit {
namespace {

enum class Routing { uniform, all_to_expert_0, with_drops };

// expert_of [tokens, k]: distinct experts per token (k <= experts).
Tensor routing(Routing r, int64_t tokens, int64_t k, int64_t experts, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int64_t> ids(static_cast<size_t>(tokens * k));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < k; ++j) {
      int64_t e = 0;
      bool taken = true;
      while (taken) {
        e = r == Routing::all_to_expert_0 && j == 0 ? 0 : static_cast<int64_t>(gen() % static_cast<uint64_t>(experts));
        taken = false;
        for (int64_t q = 0; q < j; ++q) taken |= ids[static_cast<size_t>(t * k + q)] == e;
      }
      ids[static_cast<size_t>(t * k + j)] = r == Routing::with_drops && gen() % 4 == 0 ? -1 : e;
    }
  return from_vector(ids, {tokens, k});
}

Tensor rows(const Tensor& t, int64_t begin, int64_t end) { return t.slice(0, begin, end).contiguous(); }

void expect_single_process_results(Device dev, DType dtype) {
  Communicator& comm = world();
  const double tol = dtype == DType::f64 ? 1e-12 : 2e-5;
  const int64_t ranks = comm.size(), r = comm.rank();
  const int64_t per_rank = 13, d = 6, ffn = 10, local = 2, experts = local * ranks;
  const int64_t tokens = per_rank * ranks;
  for (const int64_t k : {int64_t{1}, int64_t{2}})
  for (const Routing routing_kind : {Routing::uniform, Routing::all_to_expert_0, Routing::with_drops}) {
    // k = 1 with every token on expert 0: the other ranks' experts receive nothing at all.
    const std::string what = std::string(routing_kind == Routing::uniform ? "uniform" : routing_kind == Routing::with_drops ? "drops" : "skewed") +
                             " top-" + std::to_string(k);
    const Tensor x = test::dense_random({tokens, d}, 1, dtype).to(dev);
    const Tensor gates = test::dense_random({tokens, k}, 2, DType::f32).to(dev);
    const Tensor w1 = test::dense_random({experts, ffn, d}, 3, dtype).to(dev);
    const Tensor w2 = test::dense_random({experts, d, ffn}, 4, dtype).to(dev);
    const Tensor dy = test::dense_random({tokens, d}, 5, dtype).to(dev);
    const Tensor ids = routing(routing_kind, tokens, k, experts, 6).to(dev);

    Variable xr(x, true), gr(gates, true), w1r(w1, true), w2r(w2, true);
    ops::moe_ffn(xr, ids, gr, w1r, w2r).backward(dy);

    const int64_t t0 = r * per_rank, t1 = t0 + per_rank;
    Variable xe(rows(x, t0, t1), true), ge(rows(gates, t0, t1), true);
    Variable w1e(rows(w1, r * local, (r + 1) * local), true), w2e(rows(w2, r * local, (r + 1) * local), true);
    const Variable y = ops::moe_ffn_expert_parallel(xe, rows(ids, t0, t1), ge, w1e, w2e, comm);
    y.backward(rows(dy, t0, t1));

    const Tensor y_ref = ops::moe_ffn(Variable(x), ids, Variable(gates), Variable(w1), Variable(w2)).data();
    EXPECT_EQ(y.data().device(), dev);
    test::expect_close(y.data(), rows(y_ref, t0, t1), tol, tol, what + " y");
    test::expect_close(xe.grad(), rows(xr.grad(), t0, t1), tol, tol, what + " dx");
    test::expect_close(ge.grad(), rows(gr.grad(), t0, t1), 1e-5, 1e-5, what + " dgates");
    const auto local_grad = [&](const Variable& v, const Tensor& like) {
      return v.grad().defined() ? v.grad() : zeros(like.shape(), like.dtype(), like.device());
    };
    test::expect_close(local_grad(w1e, w1e.data()), rows(w1r.grad(), r * local, (r + 1) * local), tol, tol, what + " dW1");
    test::expect_close(local_grad(w2e, w2e.data()), rows(w2r.grad(), r * local, (r + 1) * local), tol, tol, what + " dW2");
    comm.barrier();
  }
}

// ops::all_to_all on its own (one rank, or each of two under mpirun): rank r sends
// 2 + (r + p) % ranks rows to rank p (uneven pairs), each row's values naming its sender and place; rows arrive in rank order with the
// counts reported, and the gradient of sum(y * y) / 2 (y itself) comes back to each row's own
// place: x's gradient is x. On one rank, finite differences too (across ranks a rank's nudge moves
// another rank's output, which a rank's own finite difference cannot see; the check above is the
// one that crosses ranks).
TEST(AllToAllOp, RowsArriveInRankOrderAndGradientsGoBack) {
  Communicator& comm = world();
  const int64_t ranks = comm.size(), me = comm.rank();
  const auto count = [&](int64_t from, int64_t to) { return 2 + (from + to) % ranks; };
  const auto rows_of = [&](int64_t r) {  // what rank r holds: rows for rank 0, then rank 1, ...
    int64_t n = 0;
    for (int64_t p = 0; p < ranks; ++p) n += count(r, p);
    std::vector<double> v(static_cast<size_t>(n * 3));
    for (int64_t i = 0; i < n * 3; ++i) v[static_cast<size_t>(i)] = 1000.0 * static_cast<double>(r) + static_cast<double>(i);
    return from_vector(v, {n, 3});
  };
  std::vector<int64_t> send;
  for (int64_t p = 0; p < ranks; ++p) send.push_back(count(me, p));
  std::vector<double> want;
  for (int64_t q = 0; q < ranks; ++q) {  // q's rows for me start after those for ranks before me
    int64_t start = 0;
    for (int64_t p = 0; p < me; ++p) start += count(q, p);
    const std::vector<double> v = rows_of(q).to_vector<double>();
    want.insert(want.end(), v.begin() + start * 3, v.begin() + (start + count(q, me)) * 3);
  }
  Variable x(rows_of(me), true);
  std::vector<int64_t> recv;
  const Variable y = ops::all_to_all(x, send, comm, &recv);
  for (int64_t q = 0; q < ranks; ++q) EXPECT_EQ(recv[static_cast<size_t>(q)], count(q, me)) << "from rank " << q;
  EXPECT_EQ(y.data().to_vector<double>(), want);
  ops::mul(ops::sum(ops::mul(y, y)), 0.5).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), x.data().to_vector<double>()) << "a row's gradient went elsewhere";
  if (ranks > 1) return;
  const auto r = gradcheck([&](const std::vector<Variable>& in) { return ops::all_to_all(in[0], send, comm); },
                           {test::dense_random(x.shape(), 90, DType::f64, Device::cpu())});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(MoeExpertParallel, EqualsTheSingleProcessLayer) { expect_single_process_results(Device::cpu(), DType::f64); }

TEST(MoeExpertParallel, CudaEqualsTheSingleProcessLayer) {
  PIT_REQUIRE_CUDA();
  expect_single_process_results(Device::cuda(world().local_rank() % cuda_device_count()), DType::f32);
}

}  // namespace
}  // namespace pit
