// kernels::matmul against a naive triple loop (CPU) and the CPU result (CUDA).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "ops/cpu/gemm.h"
#include "ops/kernels.h"
#include "tests/gpu.h"
#if PIT_WITH_CUDA
#include "ops/cuda/gemm.h"
#endif

using namespace pit;

namespace {

// Naive reference in f64 for (..., M, K) x (..., K, N) with equal batch dims after expand.
Tensor reference(const Tensor& a_in, const Tensor& b_in) {
  const Shape batch = kernels::broadcast_shapes(Shape(a_in.shape().begin(), a_in.shape().end() - 2),
                                                Shape(b_in.shape().begin(), b_in.shape().end() - 2));
  const int64_t m = a_in.size(-2), k = a_in.size(-1), n = b_in.size(-1);
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {m, k});
  sb.insert(sb.end(), {k, n});
  so.insert(so.end(), {m, n});
  const auto a = a_in.expand(sa).to(DType::f64).contiguous().to_vector<double>();
  const auto b = b_in.expand(sb).to(DType::f64).contiguous().to_vector<double>();
  std::vector<double> c(static_cast<size_t>(shape_numel(so)));
  const int64_t nb = shape_numel(batch);
  for (int64_t z = 0; z < nb; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += a[(z * m + i) * k + p] * b[(z * k + p) * n + j];
        c[(z * m + i) * n + j] = s;
      }
  return from_vector(c, so);
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  ASSERT_EQ(got.shape(), want.shape());
  const auto g = got.to(DType::f64).to_vector<double>(), w = want.to(DType::f64).to_vector<double>();
  double worst_abs = 0, worst_rel = 0;
  size_t where = 0;
  bool ok = true;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - w[i]);
    if (err > worst_abs) {
      worst_abs = err;
      where = i;
    }
    worst_rel = std::max(worst_rel, err / std::max(std::abs(w[i]), 1e-30));
    if (!(err <= atol + rtol * std::abs(w[i]))) ok = false;
  }
  EXPECT_TRUE(ok) << "worst abs error " << worst_abs << " at " << where << " (got " << g[where]
                  << ", want " << w[where] << "), worst rel error " << worst_rel;
}

struct Case {
  Shape a, b;
  bool transpose_a = false, transpose_b = false;  // pass the operand as a transposed view
};

const std::vector<Case> kCases{
    {{5, 7}, {7, 3}},         {{1, 1}, {1, 1}},           {{33, 17}, {17, 65}},
    {{2, 5, 7}, {2, 7, 3}},   {{4, 5, 7}, {7, 3}},        {{5, 7}, {3, 7, 2}},
    {{2, 1, 5, 7}, {3, 7, 4}}, {{7, 5}, {7, 3}, true},    {{5, 7}, {3, 7}, false, true},
    {{2, 7, 5}, {2, 3, 7}, true, true}, {{6, 0}, {0, 4}}, {{0, 3}, {3, 2}}};

Tensor make(const Shape& s, bool transposed, DType dtype, Device device) {
  if (!transposed) return randn(s, DType::f32).to(device, dtype);
  Shape t = s;
  std::swap(t[t.size() - 1], t[t.size() - 2]);
  return randn(t, DType::f32).to(device, dtype).transpose(-1, -2);  // logical shape: swapped back
}

}  // namespace

TEST(MatmulKernel, CpuMatchesNaiveReference) {
  manual_seed(3);
  for (const Case& c : kCases) {
    for (DType dt : {DType::f64, DType::f32}) {
      Shape sa = c.a, sb = c.b;
      if (c.transpose_a) std::swap(sa[sa.size() - 1], sa[sa.size() - 2]);
      if (c.transpose_b) std::swap(sb[sb.size() - 1], sb[sb.size() - 2]);
      SCOPED_TRACE(shape_str(sa) + " x " + shape_str(sb) + " " + dtype_name(dt));
      const Tensor a = make(sa, c.transpose_a, dt, Device::cpu());
      const Tensor b = make(sb, c.transpose_b, dt, Device::cpu());
      // f32: a K-term dot product of N(0,1) values has rounding error ~1e-6 * sqrt(K) * |terms|.
      expect_close(kernels::matmul(a, b), reference(a, b), dt == DType::f64 ? 1e-12 : 1e-5,
                   dt == DType::f64 ? 1e-12 : 1e-5);
    }
  }
}

// The CPU's f16 / bf16 GEMM (widened to f32, multiplied, rounded back: ops/cpu/gemm.cpp), the
// reference of the reduced-precision CPU tests elsewhere: against f64 loops over the same rounded
// values, with either operand transposed, leading dimensions past the columns (the padding left
// as it was), alpha, beta != 0 and a batch of two with strides.
TEST(MatmulKernel, CpuReducedPrecisionGemmMatchesNaive) {
  manual_seed(31);
  const int64_t m = 13, n = 9, k = 21, batch = 2;
  const double alpha = 0.75, beta = -0.5;
  for (const DType dt : {DType::bf16, DType::f16})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (ta ? " A^T" : " A") + (tb ? " B^T" : " B"));
        const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
        const int64_t sa = (ta ? k : m) * lda, sb = (tb ? n : k) * ldb, sc = m * ldc;
        const Tensor a = randn({batch * sa}, DType::f32).to(dt), b = randn({batch * sb}, DType::f32).to(dt);
        Tensor c = randn({batch * sc}, DType::f32).to(dt);
        const std::vector<double> av = a.to(DType::f64).to_vector<double>(), bv = b.to(DType::f64).to_vector<double>();
        const std::vector<double> c0 = c.to(DType::f64).to_vector<double>();
        GemmArgs g;
        g.dtype = dt;
        g.trans_a = ta;
        g.trans_b = tb;
        g.m = m;
        g.n = n;
        g.k = k;
        g.batch = batch;
        g.a = a.data_ptr();
        g.lda = lda;
        g.stride_a = sa;
        g.b = b.data_ptr();
        g.ldb = ldb;
        g.stride_b = sb;
        g.c = c.data_ptr();
        g.ldc = ldc;
        g.stride_c = sc;
        g.alpha = alpha;
        g.beta = beta;
        cpu::gemm(g);
        const std::vector<double> got = c.to(DType::f64).to_vector<double>();
        const double u = dt == DType::bf16 ? 0x1p-8 : 0x1p-11;
        for (int64_t z = 0; z < batch; ++z)
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const size_t at = static_cast<size_t>(z * sc + i * ldc + j);
              if (j >= n) {  // past the columns: untouched
                ASSERT_EQ(got[at], c0[at]) << "padding at batch " << z << " row " << i << " column " << j;
                continue;
              }
              double s = 0, mag = 0;
              for (int64_t p = 0; p < k; ++p) {
                const double x = av[static_cast<size_t>(z * sa + (ta ? p * lda + i : i * lda + p))];
                const double y = bv[static_cast<size_t>(z * sb + (tb ? j * ldb + p : p * ldb + j))];
                s += x * y;
                mag += std::abs(x * y);
              }
              const double want = alpha * s + beta * c0[at];
              // One rounding to dt (a unit of the value) and f32 sums (1e-5 of the magnitudes).
              ASSERT_LE(std::abs(got[at] - want), u * std::abs(want) + 1e-5 * (alpha * mag + std::abs(beta * c0[at])))
                  << "batch " << z << " row " << i << " column " << j << ": " << got[at] << " against " << want;
            }
      }
}

TEST(MatmulKernel, RejectsBadShapesWithClearErrors) {
  EXPECT_THROW(kernels::matmul(zeros({2, 3}), zeros({4, 2})), Error);
  EXPECT_THROW(kernels::matmul(zeros({3}), zeros({3, 2})), Error);
  EXPECT_THROW(kernels::matmul(zeros({2, 3}), zeros({3, 2}, DType::f64)), Error);
  EXPECT_THROW(kernels::matmul(zeros({2, 3, 4}), zeros({3, 4, 2})), Error);  // batch 2 vs 3
}

// The BLAS libraries take 32-bit sizes: a larger one is an error naming it, never cut to a wrong
// product. The checks come before any operand is read, so null operands do here.
GemmArgs huge(const char* which) {
  GemmArgs g;
  g.m = g.n = g.k = g.lda = g.ldb = g.ldc = 1;
  const int64_t big = int64_t{INT32_MAX} + 2;  // cut to int: 1 for a size, -2147483647 otherwise
  if (std::string(which) == "k") g.k = big;
  if (std::string(which) == "m") g.m = big;
  if (std::string(which) == "ldb") g.ldb = big;
  if (std::string(which) == "batch") g.batch = big;
  return g;
}

void expect_named_error(const std::function<void()>& call, const std::string& what) {
  try {
    call();
    ADD_FAILURE() << "no error for " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what + " = 2147483649 exceeds"), std::string::npos)
        << e.what();
  }
}

TEST(MatmulKernel, SizesBeyond32BitsAreRejected) {
  for (const char* which : {"m", "k", "ldb", "batch"}) expect_named_error([&] { cpu::gemm(huge(which)); }, which);
}

TEST(MatmulKernelCuda, SizesBeyond32BitsAreRejected) {
  PIT_REQUIRE_CUDA();
#if PIT_WITH_CUDA
  for (const char* which : {"m", "k", "ldb", "batch"})
    expect_named_error([&] { cuda::gemm(huge(which), current_stream(Device::cuda())); }, which);
#endif
}

TEST(MatmulKernel, CudaMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(4);
  for (const Case& c : kCases) {
    // Tolerances: f32 and f64 run without TF32, as exact as the CPU; f16/bf16 inputs are
    // rounded identically on both sides and products accumulate in f32, so only the final
    // rounding of the output differs (one ulp: 2^-8 for bf16, 2^-11 for f16, relative).
    for (auto [dt, rtol] : std::vector<std::pair<DType, double>>{
             {DType::f32, 1e-5}, {DType::f64, 1e-12}, {DType::bf16, 1e-2}, {DType::f16, 2e-3}}) {
      Shape sa = c.a, sb = c.b;
      if (c.transpose_a) std::swap(sa[sa.size() - 1], sa[sa.size() - 2]);
      if (c.transpose_b) std::swap(sb[sb.size() - 1], sb[sb.size() - 2]);
      SCOPED_TRACE(shape_str(sa) + " x " + shape_str(sb) + " " + dtype_name(dt));
      const Tensor a = make(sa, c.transpose_a, dt, Device::cuda());
      const Tensor b = make(sb, c.transpose_b, dt, Device::cuda());
      const Tensor want = reference(a.to(Device::cpu()), b.to(Device::cpu()));
      expect_close(kernels::matmul(a, b).to(Device::cpu()), want, rtol, rtol);
    }
  }
}

TEST(MatmulKernel, CudaLargeRaggedBf16) {
  PIT_REQUIRE_CUDA();
  manual_seed(5);
  const Tensor a = randn({1000, 777}, DType::bf16, Device::cuda());
  const Tensor b = randn({777, 333}, DType::bf16, Device::cuda());
  // Sums of 777 products of N(0,1) values: |c| ~ 28; f32 accumulation error ~1e-5 relative, the
  // bf16 output rounding 2^-9 relative.
  expect_close(kernels::matmul(a, b).to(Device::cpu()),
               reference(a.to(Device::cpu()), b.to(Device::cpu())), 8e-3, 5e-2);
}
