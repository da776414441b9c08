#pragma once
// Comparison helpers shared by the ops tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pit::test {

inline std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu(), DType::f64).to_vector<double>();
}

// |got - want| <= atol * max(1, max |want|) + rtol * |want| everywhere (atol is relative to the
// tensor's scale, so that one tolerance serves outputs of any magnitude); on failure the worst
// absolute and relative errors and where they are.
inline void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": result undefined";
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  double scale = 1;
  for (const double v : w) scale = std::max(scale, std::abs(v));
  const double abs_tol = atol * scale;
  double worst_abs = 0, worst_rel = 0;
  size_t at_abs = 0, at_rel = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - w[i]), rel = err / std::max(std::abs(w[i]), 1e-300);
    if (err > worst_abs || std::isnan(err)) worst_abs = err, at_abs = i;
    if (rel > worst_rel) worst_rel = rel, at_rel = i;
    if (!(err <= abs_tol + rtol * std::abs(w[i]))) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " outside tolerance (rtol "
                    << rtol << ", atol " << abs_tol << "); worst abs error " << worst_abs
                    << " at flat index " << at_abs << " (got " << g[at_abs] << ", want "
                    << w[at_abs] << "), worst rel error " << worst_rel << " at flat index "
                    << at_rel << " (got " << g[at_rel] << ", want " << w[at_rel] << ")";
}

// x with the same values one element past a 16-byte boundary (the kernels' unaligned paths).
inline Tensor off_boundary(const Tensor& x) {
  Tensor buf = Tensor::empty({x.numel() + 1}, x.dtype(), x.device());
  Tensor out = buf.slice(0, 1, x.numel() + 1).view(x.shape());
  out.copy_(x);
  return out;
}

}  // namespace pit::test
