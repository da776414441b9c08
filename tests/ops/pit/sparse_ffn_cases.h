#pragma once
// sparse_relu_ffn (proj(relu(fc(x))) as one op) against the pair of sparse_linear ops it replaces
// (the same values and gradients: exactly, but for fc's bias gradient, summed in another order)
// and against dense autograd of linear(relu(linear(x, W1 * m1, b1)), W2 * m2, b2): 64 x 64 blocks
// (on CUDA in bf16 / f16 the bits' way: fc writes the ReLU's bits, proj's dx applies them), other
// micro-tiles, patterns empty / partial / full, ragged token counts (not multiples of the 128- or
// 256-token tiles), hidden widths not a multiple of 64, and a bias that zeroes every activation.
// Run on the CPU (sparse_ffn_test.cpp) and on CUDA (sparse_ffn_cuda_test.cpp).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/compact.h"
#include "ops/pit/pit_ops.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/gemm_cases.h"
#include "tests/ops/pit/sparse_data.h"
#include "tests/ops/pit/sparse_linear_cases.h"

namespace pit::test {

struct FfnCase {
  sparse::MicroTile tile;
  int64_t tokens, in, hidden, out;
  double density;
  double bias_shift;  // added to fc's bias: -100 makes every activation zero
  sparse::MicroTile proj_tile{0, 0};  // proj's micro-tile where it differs from fc's ({0, 0}: the same)
  sparse::MicroTile proj() const { return proj_tile.rows == 0 ? tile : proj_tile; }
};

inline std::vector<FfnCase> ffn_cases() {
  std::vector<FfnCase> cases;
  for (const double d : {0.0, 0.3, 1.0}) cases.push_back({{64, 64}, 300, 136, 200, 72, d, 0.0});
  cases.push_back({{64, 64}, 600, 64, 256, 136, 0.5, 0.0});
  cases.push_back({{64, 64}, 37, 136, 128, 64, 0.5, 0.0});
  cases.push_back({{64, 64}, 300, 136, 200, 72, 0.5, -100.0});
  cases.push_back({{32, 1}, 74, 45, 70, 33, 0.4, 0.0});  // not blocks: the pair on every device
  // The pair too, as proj's dx kernel (which applies the bits) cannot take them: 10 outputs (dy's
  // rows not in 16-byte units), and proj in 32 x 32 blocks under fc's 64 x 64.
  cases.push_back({{64, 64}, 300, 136, 200, 10, 0.5, 0.0});
  cases.push_back({{64, 64}, 300, 136, 200, 72, 0.5, 0.0, {32, 32}});
  return cases;
}

// fuses(c, dtype): whether the case must take the bits' way there.
template <class Fuses>
void run_sparse_ffn_cases(Device dev, const std::vector<DType>& dtypes, Fuses&& fuses) {
  uint64_t seed = 31000;
  for (const DType dt : dtypes)
    for (const FfnCase& c : ffn_cases()) {
      const std::string what = std::string("sparse_relu_ffn ") + c.tile.str() + (c.proj() == c.tile ? "" : " / " + c.proj().str()) +
                               " " + dtype_name(dt) + " T " +
                               std::to_string(c.tokens) + " " + std::to_string(c.in) + " -> " + std::to_string(c.hidden) +
                               " -> " + std::to_string(c.out) + " density " + std::to_string(c.density) +
                               (c.bias_shift != 0.0 ? " all activations zero" : "");
      const Tensor m1 = compact_case_mask({c.tile, false}, c.hidden, c.in, c.density, ++seed, dev);
      const Tensor m2 = compact_case_mask({c.proj(), false}, c.out, c.hidden, c.density, ++seed, dev);
      const Tensor w1 = dense_random({c.hidden, c.in}, ++seed, dt, dev), w2 = dense_random({c.out, c.hidden}, ++seed, dt, dev);
      const Tensor b1 = kernels::binary(BinaryOp::add, dense_random({c.hidden}, ++seed, dt, dev),
                                        full({1}, c.bias_shift, dt, dev));
      const Tensor b2 = dense_random({c.out}, ++seed, dt, dev);
      const Tensor x = dense_random({c.tokens, c.in}, ++seed, dt, dev), g = dense_random({c.tokens, c.out}, ++seed, dt, dev);
      const sparse::CompactLayout l1 = sparse::compact_layout(m1, c.tile, false, 2.0);
      const sparse::CompactLayout l2 = sparse::compact_layout(m2, c.proj(), false, 2.0);
      const Tensor v1 = sparse::compact_values(l1, w1, m1), v2 = sparse::compact_values(l2, w2, m2);

      // The op, and the pair it replaces.
      const auto run = [&](bool pair) {
        std::vector<Variable> in = {Variable(x, true), Variable(v1, true), Variable(b1, true), Variable(v2, true),
                                    Variable(b2, true)};
        // With the dense weight gradients RigL asks for at its updates.
        const auto d1 = std::make_shared<Tensor>(), d2 = std::make_shared<Tensor>();
        const ops::SparseLayer fc{in[1], in[2], l1, d1}, proj{in[3], in[4], l2, d2};
        Variable y = pair ? ops::sparse_linear(ops::sparse_linear(in[0], in[1], in[2], l1, {.dense_weight_grad = d1, .relu = true}),
                                               in[3], in[4], l2, {.dense_weight_grad = d2})
                          : ops::sparse_relu_ffn(in[0], fc, proj);
        y.backward(g);
        std::vector<Tensor> out = {y.data()};
        for (const Variable& v : in) out.push_back(v.grad());
        out.push_back(*d1);
        out.push_back(*d2);
        return out;
      };
      const ops::SparseLayer fc{Variable(v1), Variable(b1), l1}, proj{Variable(v2), Variable(b2), l2};
      // A random pattern at a density below 1 may come out empty: no values for the kernels to read.
      const bool patterns = l1.entries > 0 && l2.entries > 0;
      const bool fused = ops::sparse_relu_ffn_fuses(x, fc, proj);
      EXPECT_EQ(fused, patterns && fuses(c, dt)) << what;
      const std::vector<Tensor> got = run(false), pair = run(true);
      const char* names[] = {"y", "dx", "dW1 values", "db1", "dW2 values", "db2", "dense dW1", "dense dW2"};
      const double tol = tol_for(dt);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_TRUE(got[i].defined()) << what << " " << names[i];
        if (!fused) continue;  // the op is the pair itself there: dense autograd below is the check
        // Exactly, but fc's bias gradient (summed by token tiles on the bits' way) and K lists' dx on
        // CUDA (condense_gemm_tn adds its partial sums atomically, in a varying order): within rounding.
        const bool exact = i != 3 && ((c.tile.rows == c.tile.cols && c.proj().rows == c.proj().cols) || dev.is_cpu());
        const double t = exact ? 0.0 : tol;
        expect_close(got[i], pair[i], t, t, what + " " + names[i] + " against the pair");
      }

      // Dense autograd, with the ReLU where the op's h > 0 (values within rounding of the kink
      // may fall on either side in the two computations).
      const Tensor h = ops::sparse_linear(Variable(x), Variable(v1), Variable(b1), l1, {.relu = true}).data();
      Variable xr(x, true), w1r(w1, true), b1r(b1, true), w2r(w2, true), b2r(b2, true);
      const Variable pre = ops::linear(xr, ops::mul(w1r, Variable(m1.to(dt))), b1r);
      expect_relu_pattern(h, pre.data(), tol_for(dt), what + " h's relu pattern");
      Variable yr = ops::linear(ops::mul(pre, Variable(positive(h))), ops::mul(w2r, Variable(m2.to(dt))), b2r);
      yr.backward(g);
      expect_close(got[0], yr.data(), tol, tol, what + " y against dense");
      expect_close(got[1], xr.grad(), tol, tol, what + " dx against dense");
      expect_close(got[2], sparse::compact_values(l1, w1r.grad(), m1), tol, tol, what + " dW1 against dense");
      expect_close(got[3], b1r.grad(), tol, tol, what + " db1 against dense");
      expect_close(got[4], sparse::compact_values(l2, w2r.grad(), m2), tol, tol, what + " dW2 against dense");
      expect_close(got[5], b2r.grad(), tol, tol, what + " db2 against dense");
      // The dense gradients are whole (RigL scores the pruned places too); at the pattern, dense autograd's.
      expect_close(kernels::binary(BinaryOp::mul, got[6], m1.to(dt)), w1r.grad(), tol, tol,
                   what + " dense dW1 at the pattern against dense");
      expect_close(kernels::binary(BinaryOp::mul, got[7], m2.to(dt)), w2r.grad(), tol, tol,
                   what + " dense dW2 at the pattern against dense");
      if (c.bias_shift != 0.0) {
        EXPECT_EQ(kernels::sum(kernels::unary(UnaryOp::abs, got[3].to(DType::f32))).item<float>(), 0.f)
            << what << ": no activation passes, so db1 is 0";
      }
      if (::testing::Test::HasFailure()) return;
    }
}

}  // namespace pit::test
