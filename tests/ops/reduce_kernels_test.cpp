// kernels::sum, mean, var, max and sum_to: CPU f64 results against brute-force references
// computed here, edge cases (non-contiguous inputs, ties, NaN, zero-size dims, validation), and
// the CUDA kernels against the CPU on the same (rounded) inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu(), DType::f64).to_vector<double>();
}

enum class Kind { sum, mean, var, abs_sum };

// Brute force over every element: the output each one belongs to, then the statistic.
Tensor reference(const Tensor& x, std::vector<int64_t> dims, bool keepdim, Kind kind,
                 int64_t correction = 1) {
  const Shape& shape = x.shape();
  const int64_t nd = x.dim();
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  std::vector<bool> mask(static_cast<size_t>(nd), false);
  for (int64_t d : dims) mask[static_cast<size_t>(d < 0 ? d + nd : d)] = true;
  Shape out_shape, kept_shape;
  for (int64_t d = 0; d < nd; ++d) {
    if (!mask[static_cast<size_t>(d)]) kept_shape.push_back(shape[static_cast<size_t>(d)]);
    if (!mask[static_cast<size_t>(d)] || keepdim)
      out_shape.push_back(mask[static_cast<size_t>(d)] ? 1 : shape[static_cast<size_t>(d)]);
  }
  const std::vector<double> v = values(x);
  const int64_t outputs = shape_numel(kept_shape);
  const auto out_index = [&](int64_t e) {
    int64_t j = 0, scale = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t size = shape[static_cast<size_t>(d)], i = e % size;
      e /= size;
      if (!mask[static_cast<size_t>(d)]) {
        j += i * scale;
        scale *= size;
      }
    }
    return j;
  };
  std::vector<double> sum(static_cast<size_t>(outputs), 0.0), count(sum), dev(sum);
  for (int64_t e = 0; e < static_cast<int64_t>(v.size()); ++e) {
    const size_t j = static_cast<size_t>(out_index(e));
    sum[j] +=
        kind == Kind::abs_sum ? std::abs(v[static_cast<size_t>(e)]) : v[static_cast<size_t>(e)];
    count[j] += 1;
  }
  for (int64_t e = 0; e < static_cast<int64_t>(v.size()); ++e) {
    const size_t j = static_cast<size_t>(out_index(e));
    const double d = v[static_cast<size_t>(e)] - sum[j] / count[j];
    dev[j] += d * d;
  }
  std::vector<double> out(static_cast<size_t>(outputs));
  for (size_t j = 0; j < out.size(); ++j) {
    switch (kind) {
      case Kind::sum:
      case Kind::abs_sum:
        out[j] = sum[j];
        break;
      case Kind::mean:
        out[j] = sum[j] / count[j];
        break;
      case Kind::var:
        out[j] = dev[j] / std::max(0.0, count[j] - static_cast<double>(correction));
        break;
    }
  }
  return from_vector(out, out_shape);
}

// First maximum along dim (NaN largest), brute force.
void reference_max(const Tensor& x, int64_t dim, std::vector<double>& vals,
                   std::vector<int64_t>& idx) {
  const Shape& s = x.shape();
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= s[static_cast<size_t>(k)];
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= s[static_cast<size_t>(k)];
  const int64_t n = s[static_cast<size_t>(d)];
  const std::vector<double> v = values(x);
  vals.assign(static_cast<size_t>(outer * inner), 0.0);
  idx.assign(vals.size(), -1);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double best = 0;
      int64_t at = -1;
      for (int64_t m = 0; m < n; ++m) {
        const double e = v[static_cast<size_t>((o * n + m) * inner + i)];
        if (std::isnan(best) && at >= 0) break;
        if (at < 0 || std::isnan(e) || e > best) {
          best = e;
          at = m;
        }
      }
      vals[static_cast<size_t>(o * inner + i)] = best;
      idx[static_cast<size_t>(o * inner + i)] = at;
    }
}

// |got - want| <= atol + rtol * |want| everywhere (NaN matches NaN); on failure reports the
// worst absolute and relative errors and where they are.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what, const std::vector<double>& atol_each = {}) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  double worst_abs = 0, worst_rel = 0;
  size_t at_abs = 0, at_rel = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      if (std::isnan(w[i]) != std::isnan(g[i])) ++bad;
      continue;
    }
    const double err = std::abs(g[i] - w[i]), rel = err / std::max(std::abs(w[i]), 1e-300);
    if (err > worst_abs) worst_abs = err, at_abs = i;
    if (rel > worst_rel) worst_rel = rel, at_rel = i;
    const double tol = (atol_each.empty() ? atol : atol_each[i]) + rtol * std::abs(w[i]);
    if (!(err <= tol)) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " outside tolerance (rtol "
                    << rtol << ", atol " << atol << "); worst abs error " << worst_abs
                    << " at flat index " << at_abs << " (got " << g[at_abs] << ", want "
                    << w[at_abs] << "), worst rel error " << worst_rel << " at flat index "
                    << at_rel << " (got " << g[at_rel] << ", want " << w[at_rel] << ")";
}

std::vector<int64_t> dims_of(int mask, int nd) {
  std::vector<int64_t> dims;
  for (int d = 0; d < nd; ++d)
    if (mask & (1 << d)) dims.push_back(d);
  return dims;
}

std::string label(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return std::string(op) + " of " + shape_str(x.shape()) + " " + dtype_name(x.dtype()) + " over " +
         shape_str(dims) + (keepdim ? " keepdim" : "");
}

// Compares sum, mean, var (corrections 0 and 1) with the references over every dim combination.
void check_all_combinations(const Tensor& x, double tol) {
  const int nd = static_cast<int>(x.dim());
  for (int mask = 0; mask < (1 << nd); ++mask) {
    const std::vector<int64_t> dims = dims_of(mask, nd);  // mask 0: all dims
    for (const bool keepdim : {false, true}) {
      expect_close(kernels::sum(x, dims, keepdim), reference(x, dims, keepdim, Kind::sum), tol, tol,
                   label("sum", x, dims, keepdim));
      expect_close(kernels::mean(x, dims, keepdim), reference(x, dims, keepdim, Kind::mean), tol,
                   tol, label("mean", x, dims, keepdim));
      for (const int64_t c : {0, 1})
        expect_close(kernels::var(x, dims, c, keepdim), reference(x, dims, keepdim, Kind::var, c),
                     tol, tol, label("var", x, dims, keepdim) + " correction " + std::to_string(c));
    }
  }
}

// ---- CPU ----------------------------------------------------------------------------------

TEST(ReduceKernels, EveryDimCombinationOf3D) {
  check_all_combinations(randn({3, 4, 5}, DType::f64), 1e-12);
  check_all_combinations(randn({2, 37, 70}, DType::f64), 1e-12);  // long runs and > 64 columns
}

TEST(ReduceKernels, NegativeAndUnorderedDims) {
  const Tensor x = randn({3, 4, 5}, DType::f64);
  expect_close(kernels::sum(x, {-1, 0}), reference(x, {0, 2}, false, Kind::sum), 1e-12, 1e-12,
               "sum over {-1, 0}");
  expect_close(kernels::var(x, {2, -2}, 1, true), reference(x, {1, 2}, true, Kind::var), 1e-12,
               1e-12, "var over {2, -2}");
}

TEST(ReduceKernels, NonContiguousInputs) {
  const Tensor base = randn({4, 6, 8}, DType::f64);
  const std::vector<std::pair<std::string, Tensor>> views = {
      {"transpose(0, 2)", base.transpose(0, 2)},
      {"permute(1, 2, 0)", base.permute({1, 2, 0})},
      {"slice(1, 1, 5)", base.slice(1, 1, 5)},
      {"slice(2, 1, 8, 3)", base.slice(2, 1, 8, 3)},
      {"slice(0, 1, 3).transpose(1, 2)", base.slice(0, 1, 3).transpose(1, 2)},
      {"expand", randn({1, 6, 1}, DType::f64).expand({4, 6, 5})},
  };
  for (const auto& [name, x] : views) {
    SCOPED_TRACE(name);
    check_all_combinations(x, 1e-12);
    for (int64_t d = 0; d < 3; ++d) {
      std::vector<double> vals;
      std::vector<int64_t> idx;
      reference_max(x, d, vals, idx);
      const auto r = kernels::max(x, d);
      EXPECT_EQ(values(r.values), vals) << name << " max over " << d;
      EXPECT_EQ(r.indices.to_vector<int64_t>(), idx) << name << " argmax over " << d;
    }
  }
}

TEST(ReduceKernels, LowPrecisionDtypesOnCpu) {
  // Same values in every dtype; the kernels accumulate in f64, so the only error is the final
  // rounding to the dtype (plus f32 for the f32 reference inputs).
  const Tensor x64 = randn({5, 33, 9}, DType::f64);
  for (const auto& [dtype, tol] :
       {std::pair{DType::f32, 1e-6}, std::pair{DType::bf16, 8e-3}, std::pair{DType::f16, 1e-3}}) {
    const Tensor x = x64.to(dtype);
    for (const std::vector<int64_t>& dims :
         {std::vector<int64_t>{}, std::vector<int64_t>{1}, std::vector<int64_t>{0, 2}}) {
      const std::vector<double> abs_sum = values(reference(x, dims, false, Kind::abs_sum));
      std::vector<double> atol(abs_sum.size());
      for (size_t i = 0; i < atol.size(); ++i) atol[i] = 1e-6 * abs_sum[i];
      const Tensor got = kernels::sum(x, dims);
      EXPECT_EQ(got.dtype(), dtype);
      expect_close(got, reference(x, dims, false, Kind::sum), tol, 0, label("sum", x, dims, false),
                   atol);
      expect_close(kernels::var(x, dims), reference(x, dims, false, Kind::var), tol, 1e-6,
                   label("var", x, dims, false));
    }
  }
}

TEST(ReduceKernels, MaxWithTies) {
  // Values from {0, 1, 2}: many ties; the index must be the first maximum.
  const std::vector<double> raw = values(rand({4, 5, 6}, DType::f64));
  std::vector<double> v(raw.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::floor(raw[i] * 3);
  const Tensor x = from_vector(v, {4, 5, 6});
  for (int64_t d = -3; d < 3; ++d) {
    for (const bool keepdim : {false, true}) {
      std::vector<double> vals;
      std::vector<int64_t> idx;
      reference_max(x, d, vals, idx);
      const auto r = kernels::max(x, d, keepdim);
      Shape shape = x.shape();
      if (keepdim)
        shape[static_cast<size_t>(d < 0 ? d + 3 : d)] = 1;
      else
        shape.erase(shape.begin() + (d < 0 ? d + 3 : d));
      EXPECT_EQ(r.values.shape(), shape);
      EXPECT_EQ(r.indices.shape(), shape);
      EXPECT_EQ(r.indices.dtype(), DType::i64);
      EXPECT_EQ(values(r.values), vals) << "dim " << d;
      EXPECT_EQ(r.indices.to_vector<int64_t>(), idx) << "dim " << d;
    }
  }
  const auto r = kernels::max(from_vector(std::vector<double>{1, 7, 3, 7, 7}), 0);
  EXPECT_EQ(r.values.item<double>(), 7);
  EXPECT_EQ(r.indices.item<int64_t>(), 1);
}

TEST(ReduceKernels, MaxPropagatesNaNAndHandlesInfinity) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x =
      from_vector(std::vector<double>{1, kNaN, 5, kNaN, -inf, -inf, -inf, -inf}, {2, 4});
  const auto r = kernels::max(x, 1);
  const std::vector<double> v = values(r.values);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], -inf);
  EXPECT_EQ(r.indices.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
}

TEST(ReduceKernels, ZeroSizeDims) {
  const Tensor x = zeros({2, 0, 3}, DType::f64);
  // A sum over zero elements is 0.
  const Tensor s1 = kernels::sum(x, {1});
  EXPECT_EQ(s1.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(s1), std::vector<double>(6, 0.0));
  const Tensor all = kernels::sum(x);
  EXPECT_EQ(all.shape(), Shape{});
  EXPECT_EQ(all.item<double>(), 0.0);
  EXPECT_EQ(kernels::sum(x, {1}, true).shape(), (Shape{2, 1, 3}));
  // Reducing a non-empty dim of an empty tensor gives an empty result.
  EXPECT_EQ(kernels::sum(x, {0}).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::mean(x, {2}).shape(), (Shape{2, 0}));
  // Mean and var over zero elements are NaN (0 / 0), as in PyTorch.
  for (const double m : values(kernels::mean(x, {1}))) EXPECT_TRUE(std::isnan(m));
  for (const double m : values(kernels::var(x, {1}))) EXPECT_TRUE(std::isnan(m));
  // Max over an empty dim throws; over another dim it is empty.
  EXPECT_THROW(kernels::max(x, 1), Error);
  const auto r = kernels::max(x, 0);
  EXPECT_EQ(r.values.shape(), (Shape{0, 3}));
  EXPECT_EQ(r.indices.shape(), (Shape{0, 3}));
}

TEST(ReduceKernels, VarianceOfOneElement) {
  const Tensor x = from_vector(std::vector<double>{4, 5}, {2, 1});
  EXPECT_EQ(values(kernels::var(x, {1}, 0)), (std::vector<double>{0, 0}));
  for (const double v : values(kernels::var(x, {1}, 1))) EXPECT_TRUE(std::isnan(v));  // 0 / 0
}

TEST(ReduceKernels, ZeroDimTensor) {
  const Tensor x = full({}, 2.5, DType::f64);
  EXPECT_EQ(kernels::sum(x).item<double>(), 2.5);
  EXPECT_EQ(kernels::sum(x, {0}).shape(), Shape{});
  EXPECT_EQ(kernels::mean(x, {-1}, true).item<double>(), 2.5);
  const auto r = kernels::max(x, 0);
  EXPECT_EQ(r.values.item<double>(), 2.5);
  EXPECT_EQ(r.indices.item<int64_t>(), 0);
  EXPECT_THROW(kernels::sum(x, {1}), Error);
}

TEST(ReduceKernels, OutputIsContiguousOnTheInputsDevice) {
  const Tensor x = randn({4, 5, 6}, DType::f64).transpose(0, 2);
  for (const Tensor& t :
       {kernels::sum(x, {1}), kernels::mean(x, {0, 2}, true), kernels::var(x, {2})}) {
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(t.device(), Device::cpu());
    EXPECT_EQ(t.dtype(), DType::f64);
  }
}

TEST(ReduceKernels, ValidationMessagesNameOpDimsAndShape) {
  const Tensor x = randn({2, 3, 4}, DType::f64);
  const auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string range = message([&] { kernels::sum(x, {3}); });
  EXPECT_NE(range.find("sum"), std::string::npos) << range;
  EXPECT_NE(range.find("[2, 3, 4]"), std::string::npos) << range;
  EXPECT_NE(range.find("dim 3"), std::string::npos) << range;
  const std::string dup = message([&] { kernels::mean(x, {1, -2}); });
  EXPECT_NE(dup.find("mean"), std::string::npos) << dup;
  EXPECT_NE(dup.find("twice"), std::string::npos) << dup;
  EXPECT_NE(dup.find("[1, -2]"), std::string::npos) << dup;
  EXPECT_THROW(kernels::var(x, {-4}), Error);
  EXPECT_THROW(kernels::var(x, {0}, -1), Error);
  EXPECT_THROW(kernels::max(x, 3), Error);
  const std::string dtype = message([&] { kernels::sum(zeros({3}, DType::i64)); });
  EXPECT_NE(dtype.find("sum"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("i64"), std::string::npos) << dtype;
}

TEST(ReduceKernels, SumTo) {
  const Tensor t = randn({2, 3, 4}, DType::f64);
  const Tensor a = kernels::sum_to(t, {3, 1});
  EXPECT_EQ(a.shape(), (Shape{3, 1}));
  expect_close(a, reference(t, {0, 2}, false, Kind::sum).reshape({3, 1}), 1e-12, 1e-12, "[3, 1]");
  const Tensor b = kernels::sum_to(t, {4});
  EXPECT_EQ(b.shape(), (Shape{4}));
  expect_close(b, reference(t, {0, 1}, false, Kind::sum), 1e-12, 1e-12, "[4]");
  const Tensor c = kernels::sum_to(t, {});
  EXPECT_EQ(c.shape(), Shape{});
  expect_close(c, reference(t, {}, false, Kind::sum), 1e-12, 1e-12, "[]");
  const Tensor d = kernels::sum_to(t, {1, 3, 4});
  EXPECT_EQ(d.shape(), (Shape{1, 3, 4}));
  expect_close(d, reference(t, {0}, true, Kind::sum), 1e-12, 1e-12, "[1, 3, 4]");
  const Tensor e = kernels::sum_to(t, {2, 1, 4});
  expect_close(e, reference(t, {1}, true, Kind::sum), 1e-12, 1e-12, "[2, 1, 4]");
  // Nothing to sum: the same values and shape.
  EXPECT_EQ(values(kernels::sum_to(t, {2, 3, 4})), values(t));
  // The reverse of broadcasting an expanded tensor: each value times the copies.
  const Tensor small = randn({3, 1}, DType::f64);
  std::vector<double> times35 = values(small);
  for (double& v : times35) v *= 35;
  expect_close(kernels::sum_to(small.expand({5, 3, 7}), {3, 1}), from_vector(times35, {3, 1}),
               1e-12, 1e-12, "expanded");
  // Shapes that do not broadcast to [2, 3, 4].
  EXPECT_THROW(kernels::sum_to(t, {5}), Error);
  EXPECT_THROW(kernels::sum_to(t, {2, 3}), Error);
  EXPECT_THROW(kernels::sum_to(t, {1, 2, 3, 4}), Error);
}

// ---- CUDA ---------------------------------------------------------------------------------
// The GPU result is compared with the CPU computing in f64 on the very same (already rounded)
// inputs. Tolerances, per output:
//   sum:  |err| <= kAccumulate * sum|x| + ulp(dtype) * |want|. kAccumulate = 1e-6 bounds f32
//         accumulation (~16 f32 epsilons, relative to the sum of magnitudes); ulp(dtype) covers
//         the final rounding: f32 2^-23 ~ 1.2e-7 (use 1e-6), f16 2^-10 ~ 1e-3, bf16 2^-7 ~ 8e-3.
//   mean: the same divided by the count.
//   var:  relative f32 1e-4 (Welford in f32), f16 2e-3, bf16 1.6e-2 (two ulps), absolute 1e-6.
//   max:  exact, values and indices (no arithmetic; ties are common in bf16).

constexpr double kAccumulate = 1e-6;

double ulp_tol(DType d) { return d == DType::f32 ? 1e-6 : d == DType::f16 ? 1e-3 : 8e-3; }
double var_tol(DType d) { return d == DType::f32 ? 1e-4 : d == DType::f16 ? 2e-3 : 1.6e-2; }

const DType kGpuDtypes[] = {DType::f32, DType::bf16, DType::f16};

// x lives on the GPU; all four reductions over dims against the CPU f64 reference.
void check_gpu(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false) {
  const Tensor host = x.to(Device::cpu(), DType::f64);
  const std::string what = label("", x, dims, keepdim);
  const std::vector<double> abs_sum = values(reference(host, dims, keepdim, Kind::abs_sum));
  const int64_t count = std::max<int64_t>(
      1, host.numel() / std::max<int64_t>(1, static_cast<int64_t>(abs_sum.size())));
  std::vector<double> atol_sum(abs_sum.size()), atol_mean(abs_sum.size());
  for (size_t i = 0; i < abs_sum.size(); ++i) {
    atol_sum[i] = kAccumulate * abs_sum[i];
    atol_mean[i] = atol_sum[i] / static_cast<double>(count);
  }
  const double ulp = ulp_tol(x.dtype());
  const Tensor s = kernels::sum(x, dims, keepdim);
  EXPECT_TRUE(s.is_cuda());
  EXPECT_EQ(s.dtype(), x.dtype());
  expect_close(s, kernels::sum(host, dims, keepdim), ulp, 0, "sum" + what, atol_sum);
  expect_close(kernels::mean(x, dims, keepdim), kernels::mean(host, dims, keepdim), ulp, 0,
               "mean" + what, atol_mean);
  expect_close(kernels::var(x, dims, 1, keepdim), kernels::var(host, dims, 1, keepdim),
               var_tol(x.dtype()), 1e-6, "var" + what);
}

// Equal element for element, NaN equal to NaN.
bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); });
}

void check_gpu_max(const Tensor& x, int64_t dim) {
  const Tensor host = x.to(Device::cpu(), DType::f64);
  const auto got = kernels::max(x, dim);
  const auto want = kernels::max(host, dim);
  EXPECT_TRUE(got.values.is_cuda());
  EXPECT_TRUE(same_values(values(got.values), values(want.values)))
      << "max values of " << shape_str(x.shape()) << " " << dtype_name(x.dtype()) << " over "
      << dim;
  EXPECT_EQ(got.indices.to_vector<int64_t>(), want.indices.to_vector<int64_t>())
      << "max indices of " << shape_str(x.shape()) << " " << dtype_name(x.dtype()) << " over "
      << dim;
}

TEST(ReduceKernelsCuda, RaggedShapesEveryDim) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor a = randn({1000, 777}, dtype, gpu);
    for (const std::vector<int64_t>& dims : {std::vector<int64_t>{}, std::vector<int64_t>{0},
                                             std::vector<int64_t>{1}, std::vector<int64_t>{0, 1}})
      check_gpu(a, dims);
    check_gpu_max(a, 0);
    check_gpu_max(a, 1);
    const Tensor b = randn({3, 5, 7}, dtype, gpu);
    for (int mask = 0; mask < 8; ++mask)
      for (const bool keepdim : {false, true}) check_gpu(b, dims_of(mask, 3), keepdim);
    for (int64_t d = 0; d < 3; ++d) check_gpu_max(b, d);
  }
}

TEST(ReduceKernelsCuda, TransformerShape) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = randn({16384, 1024}, dtype, Device::cuda());
    check_gpu(x, {1});  // rows: one warp per row
    check_gpu(x, {0});  // columns: bias gradient, split over rows
    check_gpu(x, {});   // everything: split blocks + second pass
    check_gpu_max(x, 0);
    check_gpu_max(x, 1);
  }
}

TEST(ReduceKernelsCuda, LongRowsAndColumns) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor rows = randn({3, 100003}, dtype, gpu);  // block per row, split
    check_gpu(rows, {1});
    check_gpu_max(rows, 1);
    const Tensor cols = randn({100003, 3}, dtype, gpu);  // three columns, split over rows
    check_gpu(cols, {0});
    check_gpu_max(cols, 0);
    const Tensor flat = randn({(1 << 20) + 7}, dtype, gpu);
    check_gpu(flat, {});
    check_gpu_max(flat, 0);
    const Tensor mid = randn({7, 3000, 33}, dtype, gpu);  // strided middle dim with outer > 1
    check_gpu(mid, {1});
    check_gpu(mid, {0, 2});
    check_gpu_max(mid, 1);
    // Columns read as 16-byte packs of outputs: outer > 1, and a partial last column block.
    check_gpu(randn({7, 300, 64}, dtype, gpu), {1});
    check_gpu(randn({1001, 776}, dtype, gpu), {0});
    const Tensor short_rows = randn({5000, 5}, dtype, gpu);  // rows shorter than a warp
    check_gpu(short_rows, {1});
    check_gpu_max(short_rows, 1);
  }
}

TEST(ReduceKernelsCuda, MisalignedAndNonContiguousViews) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    // Rows start one element into 16-byte packs: the scalar paths.
    const Tensor a = randn({65, 1025}, dtype, gpu).slice(1, 1, 1025);
    check_gpu(a, {1});
    check_gpu(a, {0});
    check_gpu(a, {});
    check_gpu_max(a, 1);
    const Tensor b = randn({40001}, dtype, gpu).slice(0, 1, 40001);
    check_gpu(b, {});
    check_gpu_max(b, 0);
    const Tensor c = randn({4, 5000}, dtype, gpu).slice(1, 1, 5000);  // block rows, misaligned
    check_gpu(c, {1});
    // Transposed: the reduced dim is strided, the outputs contiguous.
    const Tensor t = randn({300, 200}, dtype, gpu).t();
    check_gpu(t, {0});
    check_gpu(t, {1});
    check_gpu_max(t, 0);
    check_gpu_max(t, 1);
    const Tensor p = randn({6, 7, 8}, dtype, gpu).permute({2, 0, 1});
    for (int mask = 0; mask < 8; ++mask) check_gpu(p, dims_of(mask, 3));
  }
}

TEST(ReduceKernelsCuda, TiesAndNaN) {
  PIT_REQUIRE_CUDA();
  std::vector<float> v(3 * 4096);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919) % 5);  // ties
  v[4096 + 1000] = std::numeric_limits<float>::quiet_NaN();
  v[4096 + 3000] = std::numeric_limits<float>::quiet_NaN();
  for (const DType dtype : kGpuDtypes) {
    const Tensor x = from_vector(v, {3, 4096}).to(Device::cuda(), dtype);
    check_gpu_max(x, 1);
    check_gpu_max(x.t().contiguous(), 0);
    const auto r = kernels::max(x, 1);
    EXPECT_EQ(r.indices.to_vector<int64_t>()[1], 1000);
  }
}

TEST(ReduceKernelsCuda, EmptyAndSumTo) {
  PIT_REQUIRE_CUDA();
  const Tensor e = zeros({2, 0, 3}, DType::f32, Device::cuda());
  EXPECT_EQ(values(kernels::sum(e, {1})), std::vector<double>(6, 0.0));
  EXPECT_THROW(kernels::max(e, 1), Error);
  const Tensor t = randn({2, 3, 4}, DType::f32, Device::cuda());
  const Tensor got = kernels::sum_to(t, {3, 1});
  EXPECT_TRUE(got.is_cuda());
  expect_close(got, kernels::sum_to(t.to(Device::cpu(), DType::f64), {3, 1}), 1e-6, 1e-6, "sum_to");
}

TEST(ReduceKernelsCuda, Deterministic) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = randn({4096, 1024}, dtype, Device::cuda());
    for (const std::vector<int64_t>& dims :
         {std::vector<int64_t>{}, std::vector<int64_t>{0}, std::vector<int64_t>{1}}) {
      EXPECT_EQ(values(kernels::sum(x, dims)), values(kernels::sum(x, dims))) << shape_str(dims);
      EXPECT_EQ(values(kernels::var(x, dims)), values(kernels::var(x, dims))) << shape_str(dims);
    }
    EXPECT_EQ(values(kernels::max(x, 0).values), values(kernels::max(x, 0).values));
  }
}

}  // namespace
