#pragma once
// sparse::moe_activation_backward (ops/pit/moe_grad.h) against a straightforward host
// recomputation in f64 on fresh random inputs: every (expert, token, slot) in the index's order,
// dpre = w * gu * act'(pre) and dgates = <gu, act(pre)> by slot. Routings: top-1/2/3, idle
// experts, one expert taking every token, dropped slots (-1), tokens naming one expert in two or
// three slots; F ragged (1, 37, 100) and aligned (64, 96, 4096); with and without entry weights;
// i32 and i64 ids; outputs apart, dpre over gu (in place), dgates only, dpre only; operands one
// element off a 16-byte boundary. Outputs are poisoned (NaN) first: every slot of dgates must be
// written, and the rows of dpre past the count must stay as they were. Run on the CPU (moe_grad_test.cpp) and CUDA
// (moe_grad_cuda_test.cpp).
//
// Tolerances (relative to the output's largest magnitude, expect_close):
//   dpre    f64 1e-12; f32 2e-5 (the derivative's tanh / exp / erf in f32); f16 1e-3 and bf16
//           4e-3: one rounding on store (2^-11, 2^-9 relative at most) over the f32 math.
//   dgates  f32 whatever the inputs: 1e-6 for f64 (one rounding to f32), else 2e-5 (f32 sums of
//           up to 4096 products of gu and act(pre) in f32, in another order than the f64
//           reference).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/moe_grad.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/gemm_cases.h"
#include "tests/ops/pit/moe_cases.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

// f64 and f32 as the PIT GEMMs' (tol_for); f16 / bf16 tighter, as nothing accumulates in them.
inline double dpre_tol(DType dt) {
  return dt == DType::f16 ? 1e-3 : dt == DType::bf16 ? 4e-3 : tol_for(dt);
}
inline double dgates_tol(DType dt) { return dt == DType::f64 ? 1e-6 : 2e-5; }

struct MoeGradCase {
  int64_t tokens, k, experts, f;
  Routing routing;
  bool repeats;  // some tokens name one expert in two slots (k = 2) or all three (k = 3)
  UnaryOp act;
};

inline const MoeGradCase kMoeGradCases[] = {
    {37, 1, 4, 37, Routing::uniform, false, UnaryOp::relu},
    {130, 2, 6, 100, Routing::uniform, false, UnaryOp::gelu_tanh},
    {77, 2, 8, 64, Routing::some_idle, false, UnaryOp::silu},
    {90, 2, 5, 100, Routing::all_on_one, false, UnaryOp::gelu_tanh},
    {101, 3, 4, 37, Routing::with_drops, false, UnaryOp::relu},
    {60, 2, 4, 96, Routing::skewed, true, UnaryOp::silu},
    {45, 3, 5, 37, Routing::with_drops, true, UnaryOp::gelu_tanh},
    {33, 2, 4, 4096, Routing::skewed, false, UnaryOp::gelu_tanh},
    {10, 2, 3, 1, Routing::with_drops, false, UnaryOp::gelu_erf},
};

// The routing of case c; with repeats every third token's slot 1 takes slot 0's expert and every
// seventh token's slots all do.
inline std::vector<int64_t> moe_grad_routing(const MoeGradCase& c, uint64_t seed) {
  std::vector<int64_t> ids = make_routing(c.routing, c.tokens, c.k, c.experts, seed);
  if (!c.repeats) return ids;
  for (int64_t t = 0; t < c.tokens; ++t) {
    int64_t* row = ids.data() + t * c.k;
    if (row[0] < 0) continue;
    if (t % 7 == 0)
      for (int64_t j = 1; j < c.k; ++j) row[j] = row[0];
    else if (t % 3 == 0)
      row[1] = row[0];
  }
  return ids;
}

struct MoeGradRef {
  Tensor dpre;    // f64 [count, F]: the entries' rows
  Tensor dgates;  // f64 [T, k]
  int64_t count = 0;
};

// Entries in the index's order: by expert, then token, then slot.
inline MoeGradRef moe_grad_reference(UnaryOp act, const Tensor& gu, const Tensor& pre,
                                     const std::vector<int64_t>& ids, int64_t k, int64_t experts,
                                     const std::vector<float>& gates) {
  const std::vector<double> g = values(gu), p = values(pre);
  const int64_t f = gu.size(1), tokens = static_cast<int64_t>(ids.size()) / k;
  std::vector<double> dpre, dgates(ids.size(), 0.0);
  int64_t e = 0;
  for (int64_t s = 0; s < experts; ++s)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t j = 0; j < k; ++j) {
        const size_t slot = static_cast<size_t>(t * k + j);
        if (ids[slot] != s) continue;
        const double w = gates.empty() ? 1.0 : gates[slot];
        double dot = 0;
        for (int64_t q = e * f; q < (e + 1) * f; ++q) {
          const auto i = static_cast<size_t>(q);
          const double y = apply_unary<double>(act, p[i], 0.0);
          dot += g[i] * y;
          dpre.push_back(w * g[i] * unary_derivative<double>(act, p[i], y, 0.0));
        }
        dgates[slot] = dot;
        ++e;
      }
  return {from_vector(dpre, {e, f}), from_vector(dgates, {tokens, k}), e};
}

inline void run_moe_grad_cases(Device dev, const std::vector<DType>& dtypes) {
  uint64_t seed = 9100;
  bool i64 = false;  // alternates the ids' dtype
  for (const DType dt : dtypes)
    for (const MoeGradCase& c : kMoeGradCases)
      for (const bool weighted : {true, false}) {
        const std::vector<int64_t> ids = moe_grad_routing(c, ++seed);
        Tensor ids_t = from_vector(ids, {c.tokens, c.k}, dev);
        i64 = !i64;
        if (!i64) ids_t = ids_t.to(DType::i32);
        const Tensor gates = dense_random({c.tokens, c.k}, ++seed, DType::f32, dev);
        const sparse::RowSetIndex idx = sparse::rows_from_routing(ids_t, c.experts, weighted ? gates : Tensor());
        const int64_t cap = c.tokens * c.k;
        const Tensor gu = dense_random({cap, c.f}, ++seed, dt, dev);
        const Tensor pre = kernels::binary(BinaryOp::mul, dense_random({cap, c.f}, ++seed, dt, dev),
                                           full({}, 3.0, dt, dev));  // [-3, 3): every part of the activations
        const MoeGradRef ref = moe_grad_reference(c.act, gu, pre, ids, c.k, c.experts,
                                                  weighted ? gates.to_vector<float>() : std::vector<float>());
        const std::string what = std::string(routing_name(c.routing)) + (c.repeats ? " with repeats" : "") +
                                 " T=" + std::to_string(c.tokens) + " k=" + std::to_string(c.k) + " E=" +
                                 std::to_string(c.experts) + " F=" + std::to_string(c.f) + " " +
                                 unary_name(c.act) + " " + dtype_name(dt) + (weighted ? " weighted" : "") +
                                 " ids " + dtype_name(ids_t.dtype());
        // An [cap, F] output against its reference rows; rows past the count must be as `beyond`.
        const auto check_rows = [&](const Tensor& got_all, const Tensor& want, const Tensor& beyond,
                                    const std::string& name) {
          expect_close(got_all.slice(0, 0, ref.count), want, dpre_tol(dt), dpre_tol(dt), what + name);
          const std::vector<double> got = values(got_all.slice(0, ref.count, cap)), was = values(beyond);
          int64_t touched = 0;
          for (size_t i = 0; i < got.size(); ++i)
            touched += !(got[i] == was[i] || (std::isnan(got[i]) && std::isnan(was[i])));
          EXPECT_EQ(touched, 0) << what << name << ": elements past the count were written";
        };
        const auto check_dpre = [&](const Tensor& dpre, const Tensor& beyond, const std::string& mode) {
          check_rows(dpre, ref.dpre, beyond, mode + " dpre");
        };
        const auto check_dgates = [&](const Tensor& dgates, const std::string& mode) {
          expect_close(dgates, ref.dgates, dgates_tol(dt), dgates_tol(dt), what + mode + " dgates");
        };
        // Outputs apart, operands one element off a 16-byte boundary.
        for (const bool shifted : {false, true}) {
          const std::string mode = shifted ? " (operands off 16-byte boundaries)" : "";
          Tensor dpre = poisoned({cap, c.f}, dt, dev), dgates = poisoned({c.tokens, c.k}, DType::f32, dev);
          if (shifted) dpre = off_boundary(dpre);
          sparse::moe_activation_backward(c.act, shifted ? off_boundary(gu) : gu, shifted ? off_boundary(pre) : pre,
                                          idx, ids_t, dpre, dgates);
          check_dpre(dpre, poisoned({cap - ref.count, c.f}, dt), mode);
          check_dgates(dgates, mode);
        }
        if (!weighted) continue;
        {  // dpre over gu
          Tensor inout = gu.clone(), dgates = poisoned({c.tokens, c.k}, DType::f32, dev);
          sparse::moe_activation_backward(c.act, inout, pre, idx, ids_t, inout, dgates);
          check_dpre(inout, gu.slice(0, ref.count, cap), " in place");
          check_dgates(dgates, " in place");
        }
        {  // the gates' gradient only
          Tensor none, dgates = poisoned({c.tokens, c.k}, DType::f32, dev);
          sparse::moe_activation_backward(c.act, gu, pre, idx, ids_t, none, dgates);
          check_dgates(dgates, " dgates only");
        }
        {  // dpre only: no routing needed
          Tensor dpre = poisoned({cap, c.f}, dt, dev), none;
          sparse::moe_activation_backward(c.act, gu, pre, idx, Tensor(), dpre, none);
          check_dpre(dpre, poisoned({cap - ref.count, c.f}, dt), " dpre only");
        }
        if (::testing::Test::HasFailure()) return;
      }
}

}  // namespace pit::test
