#pragma once
// Column sets of K-list operands (ops/pit/column_set.h) against formulas on the host, and
// pit_matmul's K-list backward on skewed columns (W^T as a Linear passes it) against dense
// autograd. Run on the CPU (column_set_test.cpp) and CUDA (column_set_cuda_test.cpp).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/functional.h"
#include "ops/pit/column_set.h"
#include "ops/pit/detect.h"
#include "ops/pit/pit_ops.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/gemm_cases.h"

namespace pit::test {

// A ReLU-like [m, k] with skewed columns: column j is dead with probability `dead`, else each
// element fires with the column's rate (uniform in (0, 1]); `all` overrides: 0 all zero, 1 dense.
inline std::vector<float> skewed_columns(int64_t m, int64_t k, double dead, uint64_t seed, int all = -1) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> rate(static_cast<size_t>(k));
  for (double& r : rate) r = all == 0 ? 0.0 : all == 1 ? 1.0 : (u(gen) < dead ? 0.0 : u(gen) * u(gen) + 1e-3);
  std::vector<float> v(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j)
      v[static_cast<size_t>(i * k + j)] = u(gen) < rate[static_cast<size_t>(j)] ? static_cast<float>(0.25 + u(gen)) : 0.f;
  return v;
}

struct ColumnShape {
  int64_t m, k, r;
};
// k = 20000: the CUDA scan of the active columns takes two rounds of 16384.
inline const ColumnShape kColumnShapes[] = {{70, 45, 16}, {1000, 777, 32}, {300, 1500, 128}, {129, 64, 64}, {512, 640, 32}, {33, 20000, 16}};

inline void run_column_set_cases(Device dev, DType dt) {
  uint64_t seed = 31000;
  for (const ColumnShape s : kColumnShapes)
    for (const int all : {-1, 0, 1}) {
      const std::string what = "m " + std::to_string(s.m) + " k " + std::to_string(s.k) + " r " + std::to_string(s.r) +
                               (all == 0 ? " all zero" : all == 1 ? " dense" : " skewed") + " " + dtype_name(dt);
      const std::vector<float> host = skewed_columns(s.m, s.k, 0.7, ++seed, all);
      const Tensor a = from_vector(host, {s.m, s.k}).to(dev, dt);
      const sparse::KListIndex idx = sparse::detect_k_lists(a, s.r, {.values = true});
      const sparse::ColumnSet cs = sparse::column_set(idx);
      // The active columns on the host.
      std::vector<int32_t> want_rows, want_pos(static_cast<size_t>(s.k), -1);
      for (int64_t j = 0; j < s.k; ++j) {
        bool any = false;
        for (int64_t i = 0; i < s.m; ++i) any = any || host[static_cast<size_t>(i * s.k + j)] != 0.f;
        if (any) {
          want_pos[static_cast<size_t>(j)] = static_cast<int32_t>(want_rows.size());
          want_rows.push_back(static_cast<int32_t>(j));
        }
      }
      const auto offsets = cs.set.offsets.to(Device::cpu()).to_vector<int32_t>();
      ASSERT_EQ(offsets.size(), 2u) << what;
      EXPECT_EQ(offsets[0], 0) << what;
      ASSERT_EQ(offsets[1], static_cast<int32_t>(want_rows.size())) << what;
      const auto rows = cs.set.rows.to(Device::cpu()).to_vector<int32_t>();
      EXPECT_EQ(std::vector<int32_t>(rows.begin(), rows.begin() + offsets[1]), want_rows) << what;
      EXPECT_EQ(cs.pos.to(Device::cpu()).to_vector<int32_t>(), want_pos) << what;
      // At: row e is column rows[e] of A, exactly.
      const int64_t count = offsets[1];
      const Tensor at = sparse::set_columns_t(idx, cs);
      ASSERT_EQ(at.shape(), (Shape{s.k, s.m})) << what;
      const std::vector<double> got = values(at), av = values(a);
      int64_t wrong = 0;
      for (int64_t e = 0; e < count; ++e)
        for (int64_t i = 0; i < s.m; ++i)
          wrong += got[static_cast<size_t>(e * s.m + i)] != av[static_cast<size_t>(i * s.k + want_rows[static_cast<size_t>(e)])];
      EXPECT_EQ(wrong, 0) << what << ": At differs from A's columns";
      // rows_to_columns, with and without a mask laid out like the rows (At itself).
      const int64_t l = s.m;
      const Tensor r = dense_random({s.k, l}, ++seed, dt, dev);
      const std::vector<double> rv = values(r);
      // The rows and the mask one element off a 16-byte boundary too (2-byte elements then move
      // one at a time, not in pairs).
      const Tensor r_off = off_boundary(r), at_off = off_boundary(at);
      for (const int variant : {0, 1, 2}) {
        const bool masked = variant > 0, shifted = variant == 2;
        const Tensor out = sparse::rows_to_columns(shifted ? r_off : r, cs, !masked ? Tensor() : shifted ? at_off : at);
        ASSERT_EQ(out.shape(), (Shape{l, s.k})) << what;
        const std::vector<double> ov = values(out);
        int64_t bad = 0;
        for (int64_t i = 0; i < l; ++i)
          for (int64_t j = 0; j < s.k; ++j) {
            const int32_t p = want_pos[static_cast<size_t>(j)];
            double want = 0;
            if (p >= 0 && (!masked || got[static_cast<size_t>(p * s.m + i)] != 0)) want = rv[static_cast<size_t>(p * l + i)];
            bad += ov[static_cast<size_t>(i * s.k + j)] != want;
          }
        EXPECT_EQ(bad, 0) << what << (masked ? " masked" : "") << (shifted ? " off a 16-byte boundary" : "")
                          << ": rows_to_columns differs";
      }
      if (::testing::Test::HasFailure()) return;
    }
}

// pit_matmul on K lists, A with skewed columns, B = W^T (a view) or a plain B: values and every
// gradient against dense autograd with A's pattern held constant.
inline void run_column_set_matmul_cases(Device dev, DType dt) {
  uint64_t seed = 32000;
  for (const ColumnShape s : kColumnShapes)
    for (const bool w_view : {true, false})
      for (const bool sparse_grad : {true, false}) {
        const int64_t n = 72;
        const std::string what = "pit_matmul m " + std::to_string(s.m) + " k " + std::to_string(s.k) + " r " +
                                 std::to_string(s.r) + (w_view ? " B = W^T" : " B") +
                                 (sparse_grad ? " sparse grad " : " dense grad ") + dtype_name(dt);
        const Tensor a = from_vector(skewed_columns(s.m, s.k, 0.8, ++seed), {s.m, s.k}).to(dev, dt);
        const Tensor w = dense_random(w_view ? Shape{n, s.k} : Shape{s.k, n}, ++seed, dt, dev);
        const Tensor g = dense_random({s.m, n}, ++seed, dt, dev);
        const auto operand = [&](const Variable& wv) { return w_view ? ops::transpose(wv, 0, 1) : wv; };
        Variable av(a, true), wv(w, true);
        ops::pit_matmul(av, operand(wv), {.kernel = sparse::Kernel::k_lists, .tile = s.r, .sparse_grad = sparse_grad})
            .backward(g);
        Variable ar(a, true), wr(w, true);
        const Tensor p = a.to(DType::boolean).to(dt);
        ops::matmul(sparse_grad ? ops::mul(ar, Variable(p)) : ar, operand(wr)).backward(g);
        const double tol = tol_for(dt);
        expect_close(av.grad(), ar.grad(), tol, tol, what + " dA");
        expect_close(wv.grad(), wr.grad(), tol, tol, what + " dW");
        EXPECT_TRUE(wv.grad().is_contiguous()) << what << ": W's gradient is not in W's layout";
        if (::testing::Test::HasFailure()) return;
      }
}

}  // namespace pit::test
