#pragma once
// moe_ffn against a reference that loops over experts and slots with dense autograd ops
// (index_select, matmul, the activation, a gate scale, scatter_add): the output and the
// gradients of x, the gates and both expert weights. Routings: uniform, skewed (one expert takes
// most tokens), experts that get no token, every token on one expert, dropped slots (id -1);
// token counts that are multiples of no tile. Run on the CPU (moe_test.cpp) and CUDA
// (moe_cuda_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "ops/functional.h"
#include "ops/pit/moe.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/gemm_cases.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

enum class Routing { uniform, skewed, some_idle, all_on_one, with_drops };

inline const char* routing_name(Routing r) {
  switch (r) {
    case Routing::uniform: return "uniform";
    case Routing::skewed: return "skewed";
    case Routing::some_idle: return "some experts idle";
    case Routing::all_on_one: return "all on one expert";
    case Routing::with_drops: return "dropped slots";
  }
  return "?";
}

// expert_of [t, k] (row-major) under rule r: the k experts of a token are distinct (as top-k
// gives them); -1 marks a dropped slot.
inline std::vector<int64_t> make_routing(Routing r, int64_t t, int64_t k, int64_t experts, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int64_t> ids(static_cast<size_t>(t * k));
  std::vector<int64_t> order(static_cast<size_t>(experts));
  for (int64_t i = 0; i < t; ++i) {
    order.resize(static_cast<size_t>(experts));  // some_idle shrinks it to the odd experts
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), gen);
    if (r == Routing::skewed && gen() % 10 < 7) std::swap(order[0], *std::find(order.begin(), order.end(), 0));
    if (r == Routing::all_on_one) std::swap(order[0], *std::find(order.begin(), order.end(), experts - 1));
    if (r == Routing::some_idle) {  // only the odd experts (there are at least k of them)
      std::vector<int64_t> odd;
      for (const int64_t e : order)
        if (e % 2 == 1) odd.push_back(e);
      order = odd;
    }
    for (int64_t j = 0; j < k; ++j) {
      int64_t e = order[static_cast<size_t>(j)];
      if (r == Routing::with_drops && gen() % 4 == 0) e = -1;
      ids[static_cast<size_t>(i * k + j)] = e;
    }
  }
  return ids;
}

// The same function from dense autograd ops, one (expert, slot) group at a time.
inline Variable moe_reference(const Variable& x, const std::vector<int64_t>& ids, int64_t k, const Variable& gates,
                              const Variable& w1, const Variable& w2, UnaryOp act) {
  const int64_t t = x.size(0), d = x.size(1), experts = w1.size(0), f = w1.size(1);
  const Device dev = x.device();
  Variable y(zeros({t, d}, x.dtype(), dev));
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t j = 0; j < k; ++j) {
      std::vector<int64_t> toks, rows;
      for (int64_t i = 0; i < t; ++i)
        if (ids[static_cast<size_t>(i * k + j)] == e) {
          toks.push_back(i);
          rows.insert(rows.end(), static_cast<size_t>(d), i);
        }
      if (toks.empty()) continue;
      const int64_t n = static_cast<int64_t>(toks.size());
      const Tensor it = from_vector(toks, dev);
      const Variable w1e = ops::reshape(ops::slice(w1, 0, e, e + 1), {f, d});
      const Variable w2e = ops::reshape(ops::slice(w2, 0, e, e + 1), {d, f});
      const Variable he = ops::unary(act, ops::matmul(ops::index_select(x, 0, it), ops::transpose(w1e, 0, 1)));
      const Variable oe = ops::matmul(he, ops::transpose(w2e, 0, 1));
      const Variable ge = ops::index_select(ops::slice(gates, 1, j, j + 1), 0, it);  // [n, 1] f32
      const Variable part = ops::mul(ops::cast(oe, DType::f32), ge);
      y = ops::add(y, ops::cast(ops::scatter_add(Variable(zeros({t, d}, DType::f32, dev)), 0,
                                                 from_vector(rows, {n, d}, dev), part), x.dtype()));
    }
  return y;
}

struct MoeCase {
  int64_t tokens, d, ffn, experts, k;
  Routing routing;
  UnaryOp act;
};

// rows: how moe_ffn takes the experts' rows of x and dy (MoeRows::compact: gathered once).
inline void run_moe_cases(Device dev, const std::vector<DType>& dtypes, ops::MoeRows rows = ops::MoeRows::gathered) {
  std::vector<MoeCase> cases = {
      {37, 24, 40, 4, 1, Routing::uniform, UnaryOp::gelu_tanh},
      {130, 33, 70, 6, 2, Routing::uniform, UnaryOp::relu},
      {130, 32, 64, 8, 2, Routing::skewed, UnaryOp::silu},
      {77, 40, 48, 8, 1, Routing::some_idle, UnaryOp::gelu_erf},
      {90, 16, 72, 5, 2, Routing::all_on_one, UnaryOp::gelu_tanh},
      {101, 24, 40, 4, 2, Routing::with_drops, UnaryOp::relu},
      {300, 64, 96, 3, 3, Routing::uniform, UnaryOp::gelu_tanh},
      {5, 8, 16, 16, 2, Routing::uniform, UnaryOp::silu},  // fewer tokens than experts
      {0, 24, 40, 4, 2, Routing::uniform, UnaryOp::gelu_tanh},  // no token (an expert-parallel rank that receives none)
      // Enough row tiles (4200 entries: 33 of 128) times column tiles (640 / 128 = 5) to fill an
      // H200's SMs: the f16/bf16 GEMMs with N = ffn run on the persistent engine on CUDA.
      {2100, 72, 640, 8, 2, Routing::skewed, UnaryOp::gelu_tanh},
  };
  // On CUDA also enough 128 x 256 tiles (33 row tiles times 5 column tiles of ffn = 1280 and of
  // d = 1032, both ragged) to fill the SMs: all four GEMMs run on the wide engine (gather_wide.cu).
  if (dev.is_cuda()) cases.push_back({2100, 1032, 1280, 8, 2, Routing::skewed, UnaryOp::gelu_tanh});
  uint64_t seed = 4200;
  for (const DType dt : dtypes)
    for (const MoeCase& c : cases) {
      const std::vector<int64_t> ids = make_routing(c.routing, c.tokens, c.k, c.experts, ++seed);
      const Tensor ids_t = from_vector(ids, {c.tokens, c.k}, dev).to(DType::i32);
      const Tensor x = dense_random({c.tokens, c.d}, ++seed, dt, dev);
      const Tensor g = ops::softmax(Variable(dense_random({c.tokens, c.k}, ++seed, DType::f32, dev)), 1).data();
      const Tensor w1 = kernels::binary(BinaryOp::mul, dense_random({c.experts, c.ffn, c.d}, ++seed, dt, dev),
                                        full({}, 0.3, dt, dev));
      const Tensor w2 = kernels::binary(BinaryOp::mul, dense_random({c.experts, c.d, c.ffn}, ++seed, dt, dev),
                                        full({}, 0.3, dt, dev));
      const Tensor dy = dense_random({c.tokens, c.d}, ++seed, dt, dev);
      const std::string what = std::string(routing_name(c.routing)) + " T=" + std::to_string(c.tokens) +
                               " d=" + std::to_string(c.d) + " ffn=" + std::to_string(c.ffn) + " E=" +
                               std::to_string(c.experts) + " k=" + std::to_string(c.k) + " " + dtype_name(dt) +
                               (rows == ops::MoeRows::compact ? " (compact rows)" : "");
      Variable xv(x, true), gv(g, true), w1v(w1, true), w2v(w2, true);
      Variable y = ops::moe_ffn(xv, ids_t, gv, w1v, w2v, {.activation = c.act, .rows = rows});
      y.backward(dy);
      Variable xr(x, true), gr(g, true), w1r(w1, true), w2r(w2, true);
      Variable yr = moe_reference(xr, ids, c.k, gr, w1r, w2r, c.act);
      if (yr.requires_grad()) yr.backward(dy);  // with no token, nothing reaches the reference's inputs
      const auto want = [](const Variable& v) { return v.grad().defined() ? v.grad() : zeros(v.shape(), v.dtype(), v.device()); };
      const double tol = tol_for(dt);
      expect_close(y.data(), yr.data(), tol, tol, what + " y");
      expect_close(xv.grad(), want(xr), tol, tol, what + " dx");
      expect_close(gv.grad(), want(gr), tol, tol, what + " dgates");
      expect_close(w1v.grad(), want(w1r), tol, tol, what + " dW1");
      expect_close(w2v.grad(), want(w2r), tol, tol, what + " dW2");
      // A forward with no backward to follow writes no pre: the same y, bit for bit where a
      // token's slots meet in at most two adds (0 + a + b in either order); with three or more,
      // the atomic adds' order may round differently.
      {
        const NoGradGuard no_grad;
        const Tensor y0 = ops::moe_ffn(Variable(x), ids_t, Variable(g), Variable(w1), Variable(w2),
                                       {.activation = c.act, .rows = rows}).data();
        const double exact = c.k <= 2 || !dev.is_cuda() ? 0.0 : tol;
        expect_close(y0, y.data(), exact, exact, what + " y without a backward");
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
}

}  // namespace pit::test
