#pragma once
// PIT GEMMs (ops/pit/gemm.h) against the dense product computed in f64 on the CPU, on fresh
// random inputs: ragged shapes, densities 0 .. 1, every micro-tile, dtypes; outputs poisoned
// (NaN) first so that an unwritten element fails. Run on the CPU (gemm_test.cpp) and, through
// the same dispatcher, on CUDA where the kernels are built.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "tests/core/worst.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/index_check.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

// Tolerances (relative to the output's scale, see expect_close): f32 sums of ~1000 products in
// a different order; f16/bf16 round inputs and the output once (2^-11, 2^-8).
inline double tol_for(DType dt) {
  switch (dt) {
    case DType::f64: return 1e-12;
    case DType::f32: return 2e-5;
    case DType::f16: return 4e-3;
    default: return 2e-2;
  }
}

inline Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  return kernels::matmul(a.to(Device::cpu(), DType::f64), b.to(Device::cpu(), DType::f64));
}

struct GemmShape {
  int64_t m, k, n;
};
inline const GemmShape kGemmShapes[] = {{1, 1, 1}, {17, 33, 9}, {128, 64, 96}, {200, 777, 133}};
// No rows, no inner dim, no columns: every product is empty or zeros, and nothing is written past it.
inline const std::vector<GemmShape> kEmptyGemmShapes = {{0, 33, 9}, {17, 0, 9}, {17, 33, 0}};
inline const double kGemmDensities[] = {0.0, 0.01, 0.1, 0.5, 1.0};

inline std::string gemm_name(const char* kind, GemmShape s, int64_t t, double d, DType dt) {
  return std::string(kind) + " " + std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n) +
         " tile " + std::to_string(t) + " density " + (d < 0 ? std::string("skewed") : std::to_string(d)) + " " +
         dtype_name(dt);
}

// condense_gemm / block_gemm (store with bias + relu, and accumulate), their _tn and sampled, at
// densities 0 .. 1 and skewed (density -1: the first row tile dense, the rest at 1%).
inline void run_tile_gemm_cases(Device dev, const std::vector<int64_t>& rs, const std::vector<int64_t>& bs,
                                const std::vector<DType>& dtypes, const std::vector<GemmShape>& shapes) {
  uint64_t seed = 1000;
  for (const GemmShape s : shapes)
    for (const DType dt : dtypes)
      for (const double d : {0.0, 0.01, 0.1, 0.5, 1.0, -1.0})
        for (int kind = 0; kind < 2; ++kind)
          for (const int64_t t : kind == 0 ? rs : bs) {
            const std::string what = gemm_name(kind == 0 ? "condense" : "block", s, t, d, dt);
            Tensor a = sparse_tensor(s.m, s.k, t, kind == 0 ? 1 : t, d < 0 ? 0.01 : d, ++seed, dt, dev);
            if (d < 0 && s.m > 0) a.slice(0, 0, std::min(s.m, t)).copy_(dense_random({std::min(s.m, t), s.k}, ++seed, dt, dev));
            const Tensor b = dense_random({s.k, s.n}, ++seed, dt, dev);
            const Tensor g = dense_random({s.m, s.n}, ++seed, dt, dev);
            const Tensor bias = dense_random({s.n}, ++seed, dt, dev);
            sparse::KListIndex ki;
            sparse::BlockListIndex bi;
            if (kind == 0) ki = sparse::detect_k_lists(a, t, {.values = true, .transposed = true});
            else bi = sparse::detect_blocks(a, t, {.values = true, .transposed = true});
            const double tol = tol_for(dt);
            const Tensor ab = ref_matmul(a, b);
            // store
            Tensor c = poisoned({s.m, s.n}, dt, dev);
            if (kind == 0) sparse::condense_gemm(ki, b, c);
            else sparse::block_gemm(bi, b, c);
            expect_close(c, ab, tol, tol, what + " store");
            // store + bias + relu
            sparse::Epilogue ep;
            ep.bias = bias;
            ep.activation = true;
            ep.act = UnaryOp::relu;
            c = poisoned({s.m, s.n}, dt, dev);
            if (kind == 0) sparse::condense_gemm(ki, b, c, ep);
            else sparse::block_gemm(bi, b, c, ep);
            const Tensor biased = kernels::binary(BinaryOp::add, ab, bias.to(Device::cpu(), DType::f64));
            expect_close(c, kernels::unary(UnaryOp::relu, biased), tol, tol, what + " bias+relu");
            // the same, with the values before the relu kept (Epilogue::pre), in a view one row
            // into a larger buffer: with an odd N its rows are not aligned like C's
            ep.pre = poisoned({s.m + 1, s.n}, dt, dev).slice(0, 1, s.m + 1);
            c = poisoned({s.m, s.n}, dt, dev);
            if (kind == 0) sparse::condense_gemm(ki, b, c, ep);
            else sparse::block_gemm(bi, b, c, ep);
            expect_close(ep.pre, biased, tol, tol, what + " bias+relu, pre");
            expect_close(c, kernels::unary(UnaryOp::relu, biased), tol, tol, what + " bias+relu with pre");
            // accumulate
            const Tensor c0 = dense_random({s.m, s.n}, ++seed, dt, dev);
            c = c0.clone();
            if (kind == 0) sparse::condense_gemm(ki, b, c, {.write = sparse::Write::accumulate});
            else sparse::block_gemm(bi, b, c, {.write = sparse::Write::accumulate});
            expect_close(c, kernels::binary(BinaryOp::add, ab, c0.to(Device::cpu(), DType::f64)), tol, tol,
                         what + " accumulate");
            // dB = A^T G
            Tensor db = poisoned({s.k, s.n}, dt, dev);
            if (kind == 0) sparse::condense_gemm_tn(ki, g, db);
            else sparse::block_gemm_tn(bi, g, db);
            const Tensor atg = ref_matmul(a.t(), g);
            expect_close(db, atg, tol, tol, what + " tn");
            // sampled: (G B^T) at A's micro-tiles, B given as [N, K]... here op(B) = b^T
            const Tensor bt = dense_random({s.n, s.k}, ++seed, dt, dev);  // [N, K]
            const Tensor cover = kind == 0 ? sparse::cover_mask(ki) : sparse::cover_mask(bi);
            const Tensor want = kernels::binary(BinaryOp::mul, ref_matmul(g, bt), cover.to(Device::cpu(), DType::f64));
            if (kind == 0) {
              sparse::KListIndex out = sparse::with_new_values(ki, dt);
              out.values.fill_(std::numeric_limits<double>::quiet_NaN());
              sparse::sampled_gemm(g, bt, out, false, false);
              expect_close(sparse::to_dense(out), want, tol, tol, what + " sampled");
              // the same with transposed operands: op(A) = (g^T)^T, op(B) = (bt^T)^T
              sparse::KListIndex out2 = sparse::with_new_values(ki, dt);
              out2.values.fill_(std::numeric_limits<double>::quiet_NaN());
              sparse::sampled_gemm(g.t().contiguous(), bt.t().contiguous(), out2, true, true);
              expect_close(sparse::to_dense(out2), want, tol, tol, what + " sampled, transposed operands");
              // A as given, B as [N, K] (sparse_linear's K lists: dy^T and x^T, both along T)
              sparse::KListIndex out3 = sparse::with_new_values(ki, dt);
              out3.values.fill_(std::numeric_limits<double>::quiet_NaN());
              sparse::sampled_gemm(g, bt.t().contiguous(), out3, false, true);
              expect_close(sparse::to_dense(out3), want, tol, tol, what + " sampled, B given as [N, K]");
            } else {
              sparse::BlockListIndex out = sparse::with_new_values(bi, dt);
              out.values.fill_(std::numeric_limits<double>::quiet_NaN());
              sparse::sampled_gemm(g, bt, out, false, false);
              expect_close(sparse::to_dense(out), want, tol, tol, what + " sampled");
            }
            if (::testing::Test::HasFailure()) return;
          }
}

// block_linear: y = x V^T for V [out, in] of b x b blocks, x [T, in] as given, and the values'
// gradient dy^T x at V's blocks (sampled_gemm with a_trans), against the dense products; ragged
// T, in and out (not multiples of 64 or of 128 tokens), densities 0 .. 1, and a skewed V (one
// block row dense, the others at 1 %). On CUDA, f16/bf16 with 64 x 64 blocks take the kernels
// that read x and dy and write y as they lie (block_linear.cu, block_sampled.cu), everything
// else the transposing / general ways.
inline void run_block_linear_cases(Device dev, const std::vector<int64_t>& bs, const std::vector<DType>& dtypes) {
  struct Shape3 {
    int64_t t, in, out;
  };
  // The last three: no tokens, no inputs, no outputs (empty products or zeros).
  const Shape3 shapes[] = {{1, 64, 64}, {200, 128, 320}, {1000, 136, 200}, {300, 512, 64}, {0, 128, 64}, {5, 0, 64},
                           {5, 64, 0}};
  uint64_t seed = 7000;
  for (const Shape3 s : shapes)
    for (const int64_t b : bs)
      for (const DType dt : dtypes)
        for (const double d : {0.0, 0.01, 0.1, 0.5, 1.0, -1.0}) {
          const std::string what = std::string("block_linear ") + std::to_string(s.t) + "x" + std::to_string(s.in) +
                                   " -> " + std::to_string(s.out) + " block " + std::to_string(b) + " density " +
                                   (d < 0 ? std::string("skewed") : std::to_string(d)) + " " + dtype_name(dt);
          Tensor v = sparse_tensor(s.out, s.in, b, b, d < 0 ? 0.01 : d, ++seed, dt, dev);
          if (d < 0 && s.out > b) {  // the second block row dense
            const Tensor dense_rows = dense_random({b, s.in}, ++seed, dt, dev);
            v.slice(0, b, 2 * b).copy_(dense_rows);
          }
          const sparse::BlockListIndex vi = sparse::detect_blocks(v, b, {.values = true, .transposed = true});
          const Tensor x = dense_random({s.t, s.in}, ++seed, dt, dev);
          Tensor y = poisoned({s.t, s.out}, dt, dev);
          sparse::block_linear(x, vi, y);
          const Tensor xv = ref_matmul(x, v.t());
          expect_close(y, xv, tol_for(dt), tol_for(dt), what);
          // with a bias, added in the epilogue
          const Tensor bias = dense_random({s.out}, ++seed, dt, dev);
          y = poisoned({s.t, s.out}, dt, dev);
          sparse::block_linear(x, vi, y, bias);
          const Tensor biased = kernels::binary(BinaryOp::add, xv, bias.to(Device::cpu(), DType::f64));
          expect_close(y, biased, tol_for(dt), tol_for(dt), what + " + bias");
          // and the ReLU after it (on CUDA in the same epilogue)
          y = poisoned({s.t, s.out}, dt, dev);
          sparse::block_linear(x, vi, y, bias, /*relu=*/true);
          expect_close(y, kernels::unary(UnaryOp::relu, biased), tol_for(dt), tol_for(dt), what + " + bias, relu");
          // The values' gradient as sparse_linear asks for it: dy^T x at V's blocks, dy and x as
          // they lie (on CUDA, 64 x 64 blocks in f16/bf16: block_sampled.cu).
          const Tensor g = dense_random({s.t, s.out}, ++seed, dt, dev);
          // dx = dy V over the transposed lists (on CUDA, 64 x 64 in f16/bf16: V's blocks as they lie)
          Tensor dx = poisoned({s.t, s.in}, dt, dev);
          sparse::block_linear_dx(g, vi, dx);
          expect_close(dx, ref_matmul(g, v), tol_for(dt), tol_for(dt), what + " dx = dy V");
          sparse::BlockListIndex dv = sparse::with_new_values(vi, dt);
          dv.values.fill_(std::numeric_limits<double>::quiet_NaN());
          sparse::sampled_gemm(g, x, dv, /*a_trans=*/true, /*b_trans=*/false);
          const Tensor want = kernels::binary(BinaryOp::mul, ref_matmul(g.t(), x),
                                              sparse::cover_mask(vi).to(Device::cpu(), DType::f64));
          expect_close(sparse::to_dense(dv), want, tol_for(dt), tol_for(dt), what + " sampled dy^T x");
          if (::testing::Test::HasFailure()) return;
        }
}

// gather_gemm over detected rows (one segment), K-chunks, and MoE routing with per-expert B;
// `engine` forces the CUDA kernel's tensor-core engine (the CPU ignores it).
inline void run_gather_cases(Device dev, const std::vector<DType>& dtypes,
                             sparse::Engine engine = sparse::Engine::automatic) {
  uint64_t seed = 5000;
  for (const DType dt : dtypes)
    for (const double d : kGemmDensities) {
      const int64_t m = 300, k = 97, n = 70;
      const double tol = tol_for(dt);
      const std::string what = std::string("gather ") + dtype_name(dt) + " density " + std::to_string(d) +
                               " engine " + std::to_string(static_cast<int>(engine));
      const Tensor a = sparse_tensor(m, k, 1, k, d, ++seed, dt, dev);  // row-sparse
      const Tensor b = dense_random({k, n}, ++seed, dt, dev);
      const Tensor w = dense_random({n, k}, ++seed, dt, dev);  // Linear weight [N, K]
      const sparse::RowSetIndex rows = sparse::detect_rows(a);
      // scattered, zero_c: equals the dense product.
      Tensor c = poisoned({m, n}, dt, dev);
      sparse::gather_gemm(a, rows, b, c, {.zero_c = true, .engine = engine});
      expect_close(c, ref_matmul(a, b), tol, tol, what + " rows");
      c = poisoned({m, n}, dt, dev);
      sparse::gather_gemm(a, rows, w, c, {.b_trans = true, .zero_c = true, .engine = engine});
      expect_close(c, ref_matmul(a, w.t()), tol, tol, what + " rows, b_trans");
      // K-chunk segments: row micro-tiles 1 x 32.
      const Tensor ak = sparse_tensor(m, k, 1, 32, d, ++seed, dt, dev);
      const sparse::RowSetIndex chunks = sparse::detect_rows(ak, 32);
      c = poisoned({m, n}, dt, dev);
      sparse::gather_gemm(ak, chunks, b, c,
                          {.zero_c = true, .epilogue = {.write = sparse::Write::accumulate}, .engine = engine});
      expect_close(c, ref_matmul(ak, b), tol, tol, what + " K-chunks");
      // weight gradient over the rows: dB = A^T G (rows outside the set are zero in A).
      const Tensor g = dense_random({m, n}, ++seed, dt, dev);
      Tensor db = poisoned({k, n}, dt, dev);
      sparse::gather_weight_grad(a, g, rows, db, {.engine = engine});
      expect_close(db, ref_matmul(a.t(), g), tol, tol, what + " weight grad");
      Tensor dbt = poisoned({n, k}, dt, dev);
      sparse::gather_weight_grad(a, g, rows, dbt, {.b_trans = true, .engine = engine});
      expect_close(dbt, ref_matmul(g.t(), a), tol, tol, what + " weight grad, b_trans");
      if (::testing::Test::HasFailure()) return;
    }
}

// MoE: tokens x [E, K, N] experts, top-2 routing with gates; compact outputs per entry, the
// weighted combine (scatter + accumulate), bias per expert and the expert weight gradients
// (`engine`: the CUDA kernels' tensor-core engine, of every GEMM and gradient here; the CPU ignores
// it). Skewed routing sends 80% of first picks to expert 0 and none to the last expert (idle).
inline void run_moe_cases(Device dev, DType dt, bool skewed, sparse::Engine engine = sparse::Engine::automatic) {
  const int64_t t_count = 203, k = 48, n = 40, experts = 5, top = 2;
  std::vector<int64_t> ids(static_cast<size_t>(t_count * top));
  std::vector<float> gates(ids.size());
  uint64_t state = 77;
  const auto next = [&]() { state = state * 6364136223846793005ull + 1442695040888963407ull; return state >> 33; };
  for (int64_t t = 0; t < t_count; ++t) {
    const int64_t used = skewed ? experts - 1 : experts;  // skewed: the last expert gets no token
    const int64_t e0 = skewed && next() % 10 < 8 ? 0 : static_cast<int64_t>(next() % used);
    ids[static_cast<size_t>(t * 2)] = e0;
    ids[static_cast<size_t>(t * 2 + 1)] = (e0 + 1 + static_cast<int64_t>(next() % (used - 1))) % used;
    gates[static_cast<size_t>(t * 2)] = 0.25f + static_cast<float>(next() % 100) / 200.0f;
    gates[static_cast<size_t>(t * 2 + 1)] = 1.0f - gates[static_cast<size_t>(t * 2)];
  }
  const Tensor idt = from_vector(ids, {t_count, top}).to(dev);
  const Tensor gt = from_vector(gates, {t_count, top}).to(dev);
  const sparse::RowSetIndex r = sparse::rows_from_routing(idt, experts, gt);
  const Tensor x = dense_random({t_count, k}, 1, dt, dev);
  const Tensor we = dense_random({experts, k, n}, 2, dt, dev);
  const Tensor bias = dense_random({experts, n}, 3, dt, dev);
  const double tol = tol_for(dt);
  // Reference on the CPU in f64.
  const auto xv = host(x), wv = host(we), bv = host(bias);
  std::vector<double> comb(static_cast<size_t>(t_count * n), 0.0);
  for (int64_t t = 0; t < t_count; ++t)
    for (int64_t q = 0; q < top; ++q) {
      const int64_t e = ids[static_cast<size_t>(t * 2 + q)];
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += xv[static_cast<size_t>(t * k + p)] * wv[static_cast<size_t>((e * k + p) * n + j)];
        comb[static_cast<size_t>(t * n + j)] += gates[static_cast<size_t>(t * 2 + q)] * s;
      }
    }
  Tensor c = poisoned({t_count, n}, dt, dev);
  sparse::gather_gemm(x, r, we, c,
                      {.use_weights = true, .zero_c = true, .epilogue = {.write = sparse::Write::accumulate}, .engine = engine});
  expect_close(c, from_vector(comb, {t_count, n}), tol, tol, std::string("moe combine ") + dtype_name(dt));
  // Compact per-entry outputs with the expert's bias: check through the index on the host.
  const int64_t cap = t_count * top;
  Tensor h = poisoned({cap, n}, dt, dev);
  sparse::gather_gemm(x, r, we, h, {.c_scattered = false, .epilogue = {.bias = bias}, .engine = engine});
  const auto off = ints(r.offsets), rows = ints(r.rows);
  // The worst relative error of compact outputs against the f64 loop through the index.
  const auto compact_error = [&](const Tensor& out, bool with_bias) {
    const auto got = host(out);
    double worst = 0;
    for (int64_t e = 0; e < experts; ++e)
      for (int64_t q = off[static_cast<size_t>(e)]; q < off[static_cast<size_t>(e + 1)]; ++q)
        for (int64_t j = 0; j < n; ++j) {
          double s = with_bias ? bv[static_cast<size_t>(e * n + j)] : 0.0;
          for (int64_t p = 0; p < k; ++p)
            s += xv[static_cast<size_t>(rows[static_cast<size_t>(q)] * k + p)] * wv[static_cast<size_t>((e * k + p) * n + j)];
          worst = worst_of(worst, std::abs(got[static_cast<size_t>(q * n + j)] - s) / (1.0 + std::abs(s)));
        }
    return worst;
  };
  EXPECT_LE(compact_error(h, true), 4 * tol) << "moe compact outputs " << dtype_name(dt);
  // The same GEMM with an activation that keeps the values before it, with the bias and without
  // (the MoE up GEMM: on CUDA the staged store's fast path): pre is bit for bit the output of the
  // same GEMM without the activation, the output act(pre) within the dtype's rounding. The GEMM
  // without bias is itself checked against the loop first (it is the reference below).
  Tensor plain = poisoned({cap, n}, dt, dev);
  sparse::gather_gemm(x, r, we, plain, {.c_scattered = false, .engine = engine});
  EXPECT_LE(compact_error(plain, false), 4 * tol) << "moe compact outputs without bias " << dtype_name(dt);
  for (const bool with_bias : {true, false})
    for (const UnaryOp act : {UnaryOp::gelu_tanh, UnaryOp::silu}) {
      const Tensor& want = with_bias ? h : plain;
      const std::string what = std::string(with_bias ? "bias, " : "") + unary_name(act) + " " + dtype_name(dt);
      Tensor pre = poisoned({cap, n}, dt, dev), ha = poisoned({cap, n}, dt, dev);
      sparse::gather_gemm(x, r, we, ha,
                          {.c_scattered = false,
                           .epilogue = {.bias = with_bias ? bias : Tensor(), .activation = true, .act = act, .pre = pre},
                           .engine = engine});
      expect_close(pre, want, 0, 0, "moe compact outputs, pre, " + what);
      expect_close(ha, kernels::unary(act, want.to(Device::cpu(), DType::f64)), tol, tol,
                   "moe compact outputs, activation with pre, " + what);
      // With the entries' gates after the activation (moe_ffn's up GEMM): pre as before, the
      // output gate * act(pre); pre one element off its alignment on the second pass.
      Tensor buf = poisoned({cap * n + 1}, dt, dev);
      Tensor pre_g = buf.slice(0, with_bias ? 0 : 1, (with_bias ? 0 : 1) + cap * n).view({cap, n});
      Tensor hg = poisoned({cap, n}, dt, dev);
      sparse::gather_gemm(x, r, we, hg,
                          {.c_scattered = false,
                           .use_weights = true,
                           .epilogue = {.bias = with_bias ? bias : Tensor(), .activation = true, .act = act, .pre = pre_g,
                                        .scale_after_activation = true},
                           .engine = engine});
      expect_close(pre_g, want, 0, 0, "moe compact outputs, pre with gates after, " + what);
      const Tensor gate_col = r.weights.slice(0, 0, cap).to(Device::cpu(), DType::f64).view({cap, 1});
      expect_close(hg, kernels::binary(BinaryOp::mul, kernels::unary(act, want.to(Device::cpu(), DType::f64)), gate_col),
                   tol, tol, "moe compact outputs, gate * act(pre), " + what);
      // The gates after the activation without pre (moe_ffn's forward with no backward to
      // follow): the same output, bit for bit.
      Tensor hn = poisoned({cap, n}, dt, dev);
      sparse::gather_gemm(x, r, we, hn,
                          {.c_scattered = false,
                           .use_weights = true,
                           .epilogue = {.bias = with_bias ? bias : Tensor(), .activation = true, .act = act,
                                        .scale_after_activation = true},
                           .engine = engine});
      expect_close(hn, hg, 0, 0, "moe compact outputs, gate * act(sums) without pre, " + what);
    }
  // Expert weight gradient: dW_e = sum over e's tokens of gate * x^T g (g: gathered by row).
  const Tensor g = dense_random({t_count, n}, 4, dt, dev);
  Tensor dw = poisoned({experts, k, n}, dt, dev);
  sparse::gather_weight_grad(x, g, r, dw, {.use_weights = true, .engine = engine});
  const auto gv = host(g);
  std::vector<double> want(static_cast<size_t>(experts * k * n), 0.0);
  for (int64_t t = 0; t < t_count; ++t)
    for (int64_t q = 0; q < top; ++q) {
      const int64_t e = ids[static_cast<size_t>(t * 2 + q)];
      const double gate = gates[static_cast<size_t>(t * 2 + q)];
      for (int64_t p = 0; p < k; ++p)
        for (int64_t j = 0; j < n; ++j)
          want[static_cast<size_t>((e * k + p) * n + j)] += gate * xv[static_cast<size_t>(t * k + p)] * gv[static_cast<size_t>(t * n + j)];
    }
  expect_close(dw, from_vector(want, {experts, k, n}), tol, tol,
               std::string("moe weight grad ") + dtype_name(dt) + " engine " + std::to_string(static_cast<int>(engine)));
  // The same gradient transposed ([E, N, K] = G^T X: the gates scale the other operand's tile).
  Tensor dwt = poisoned({experts, n, k}, dt, dev);
  sparse::gather_weight_grad(x, g, r, dwt, {.b_trans = true, .use_weights = true, .engine = engine});
  expect_close(dwt, from_vector(want, {experts, k, n}).transpose(1, 2).contiguous(), tol, tol,
               std::string("moe weight grad, b_trans ") + dtype_name(dt));
}

// An engine's name for failure messages.
inline const char* engine_name(sparse::Engine e) {
  switch (e) {
    case sparse::Engine::automatic: return "automatic";
    case sparse::Engine::mma: return "mma.sync";
    case sparse::Engine::wgmma: return "wgmma";
    case sparse::Engine::wgmma_persistent: return "persistent";
    case sparse::Engine::wgmma_deep: return "deep";
    case sparse::Engine::wgmma_pingpong: return "ping-pong";
    case sparse::Engine::wgmma_tma: return "TMA";
    case sparse::Engine::wgmma_tma_pingpong: return "TMA ping-pong";
    case sparse::Engine::wgmma_wide: return "wide";
  }
  return "?";
}

}  // namespace pit::test
