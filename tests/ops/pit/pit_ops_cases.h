#pragma once
// pit_matmul / pit_linear against dense autograd of the same function with the pattern held
// constant (see ops/pit/pit_ops.h): values and every gradient, every index kind, densities
// 0 .. 1, dtypes; and the proof that backward runs no detection. Run on the CPU
// (pit_ops_test.cpp) and on CUDA (pit_ops_cuda_test.cpp).
#include <gtest/gtest.h>

#include <string>

#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/pattern.h"
#include "ops/pit/pit_ops.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/gemm_cases.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

struct KindCase {
  sparse::Kernel kernel;
  int64_t tile;
};
inline const KindCase kKinds[] = {{sparse::Kernel::k_lists, 16}, {sparse::Kernel::k_lists, 32},
                                  {sparse::Kernel::k_lists, 128}, {sparse::Kernel::blocks, 16},
                                  {sparse::Kernel::blocks, 32},  {sparse::Kernel::rows, 0},
                                  {sparse::Kernel::dense, 0}};

// A's shapes: [70, 45] (ragged against every tile), the same rows as [2, 35, 45], one row.
struct MatmulShape {
  Shape lead;  // A is lead + [k]
  int64_t m;   // rows: the product of lead
};
inline const MatmulShape kMatmulShapes[] = {{{70}, 70}, {{2, 35}, 70}, {{1}, 1}};

// Densities 0 .. 1 of random micro-tiles, and -1: skewed, every non-zero in A's first 16 rows (one
// row tile holds them all, the others are empty).
inline Tensor matmul_case_a(int64_t m, int64_t k, int64_t tr, int64_t tc, double d, uint64_t seed, DType dt,
                            Device dev) {
  if (d >= 0) return sparse_tensor(m, k, tr, tc, d, seed, dt, dev);
  const Tensor a = dense_random({m, k}, seed, dt, dev);
  const Tensor first = full({std::min<int64_t>(m, 16), k}, 1.0, dt, dev);
  return kernels::binary(BinaryOp::mul, a,
                         kernels::cat({first, zeros({m - first.size(0), k}, dt, dev)}, 0));
}

inline void run_pit_matmul_cases(Device dev, const std::vector<DType>& dtypes) {
  uint64_t seed = 9000;
  for (const DType dt : dtypes)
    for (const KindCase kc : kKinds)
      for (const MatmulShape& shape : kMatmulShapes)
      for (const double d : {0.0, 0.1, 0.5, 1.0, -1.0})
        for (const bool sparse_grad : {true, false}) {
          const int64_t m = shape.m, k = 45, n = 33;
          const int64_t tr = kc.kernel == sparse::Kernel::rows ? 1 : std::max<int64_t>(kc.tile, 1);
          const int64_t tc = kc.kernel == sparse::Kernel::blocks ? kc.tile : (kc.kernel == sparse::Kernel::rows ? k : 1);
          Shape a_shape = shape.lead, y_shape = shape.lead;
          a_shape.push_back(k);
          y_shape.push_back(n);
          const Tensor a = matmul_case_a(m, k, tr, tc, d, ++seed, dt, dev).view(a_shape);
          const Tensor b = dense_random({k, n}, ++seed, dt, dev);
          const Tensor g = dense_random({m, n}, ++seed, dt, dev).view(y_shape);
          const std::string what = std::string(sparse::kernel_name(kc.kernel)) + " " + std::to_string(kc.tile) +
                                   (d < 0 ? std::string(" skewed") : " density " + std::to_string(d)) + " " +
                                   dtype_name(dt) + " A " + shape_str(a_shape) +
                                   (sparse_grad ? " sparse grad" : " dense grad");
          Variable av(a, true), bv(b, true);
          const uint64_t before = sparse::detection_calls();
          Variable y = ops::pit_matmul(av, bv, {.kernel = kc.kernel, .tile = std::max<int64_t>(kc.tile, 16), .sparse_grad = sparse_grad});
          const uint64_t after_forward = sparse::detection_calls();
          y.backward(g);
          EXPECT_EQ(sparse::detection_calls(), after_forward) << what << ": backward ran a detection";
          EXPECT_LE(after_forward - before, 1u) << what;
          // Dense reference: matmul(a * P, b) with P = (a != 0) constant.
          Variable ar(a, true), br(b, true);
          const Tensor p = a.to(DType::boolean).to(dt);
          Variable yr = ops::matmul(sparse_grad ? ops::mul(ar, Variable(p)) : ar, br);
          yr.backward(g);
          const double tol = tol_for(dt);
          expect_close(y.data(), yr.data(), tol, tol, what + " value");
          expect_close(av.grad(), ar.grad(), tol, tol, what + " dA");
          expect_close(bv.grad(), br.grad(), tol, tol, what + " dB");
          if (::testing::Test::HasFailure()) return;
        }
}

inline void run_pit_linear_cases(Device dev, const std::vector<DType>& dtypes) {
  uint64_t seed = 9500;
  for (const DType dt : dtypes)
    for (const double d : {0.0, 0.3, 1.0}) {
      const int64_t t = 2 * 37, in = 50, out = 29;  // x given as [2, 37, in]
      const double tol = tol_for(dt);
      const Tensor w = dense_random({out, in}, ++seed, dt, dev);
      const Tensor bias = dense_random({out}, ++seed, dt, dev);
      const Tensor g = dense_random({2, 37, out}, ++seed, dt, dev);
      // Row-sparse x from a padding mask: rows outside the set are zero and give the bias. The
      // row set given (from the mask), or detected from x's non-zero rows (the same set: the kept
      // rows hold no zero row).
      for (const bool given : {true, false}) {
        const Tensor rowmask = sparse_tensor(t, 1, 1, 1, d, ++seed, DType::f32, dev).view({t});
        Tensor x = dense_random({t, in}, ++seed, dt, dev);
        x = sparse::apply_pattern(x, rowmask.view({t, 1}).expand({t, in}).contiguous());
        Variable xv(x.view({2, 37, in}), true), wv(w, true), bv(bias, true);
        ops::PitLinearOptions o;
        if (given) o.rows = sparse::detect_rows(x, 0, rowmask);
        Variable y = ops::pit_linear(xv, wv, bv, o);
        const uint64_t calls = sparse::detection_calls();
        y.backward(g);
        EXPECT_EQ(sparse::detection_calls(), calls);
        Variable xr(x.view({2, 37, in}), true), wr(w, true), br(bias, true);
        const Tensor keep = rowmask.to(DType::boolean).to(dt).view({2, 37, 1}).expand({2, 37, in}).contiguous();
        Variable yr = ops::linear(ops::mul(xr, Variable(keep)), wr, br);
        yr.backward(g);
        const std::string what = std::string("pit_linear rows ") + (given ? "given " : "detected ") + dtype_name(dt) +
                                 " density " + std::to_string(d);
        expect_close(y.data(), yr.data(), tol, tol, what + " value");
        expect_close(xv.grad(), xr.grad(), tol, tol, what + " dx");
        expect_close(wv.grad(), wr.grad(), tol, tol, what + " dW");
        expect_close(bv.grad(), br.grad(), tol, tol, what + " db");
      }
      // Pruned W by a block mask (plus element zeros inside kept blocks).
      for (const int64_t b : {int64_t{16}, int64_t{32}}) {
        const Tensor wmask = sparse_tensor(out, in, b, b, d, ++seed, DType::f32, dev).to(DType::boolean);
        const Tensor x = dense_random({2, 37, in}, ++seed, dt, dev);
        Variable xv(x, true), wv(w, true), bv(bias, true);
        Variable y = ops::pit_linear(xv, wv, bv, {.weight_mask = wmask, .block = b});
        const uint64_t calls = sparse::detection_calls();
        y.backward(g);
        EXPECT_EQ(sparse::detection_calls(), calls);
        Variable xr(x, true), wr(w, true), br(bias, true);
        Variable yr = ops::linear(xr, ops::mul(wr, Variable(wmask.to(dt))), br);
        yr.backward(g);
        const std::string what = std::string("pit_linear pruned b=") + std::to_string(b) + " " + dtype_name(dt) +
                                 " density " + std::to_string(d);
        expect_close(y.data(), yr.data(), tol, tol, what + " value");
        expect_close(xv.grad(), xr.grad(), tol, tol, what + " dx");
        expect_close(wv.grad(), wr.grad(), tol, tol, what + " dW");
        expect_close(bv.grad(), br.grad(), tol, tol, what + " db");
      }
      if (::testing::Test::HasFailure()) return;
    }
}

}  // namespace pit::test
