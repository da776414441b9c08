// kernels::add_scaled_ on the CPU: in place on a strided view (the rest keeps its bits), a
// broadcast row, b aliasing or overlapping a, f32/f16/bf16 and ragged sizes.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/ops/elementwise_refs.h"

using namespace pit;
using namespace pit::test::elementwise;

// ---- add_scaled_ -------------------------------------------------------------------------------

TEST(ElementwiseCpu, AddScaledUpdatesOnlyTheView) {
  manual_seed(9);
  Tensor dst = make_normal({6, 10});
  const std::vector<double> before = values(dst);
  Tensor view = dst.slice(1, 2, 8, 2);  // columns 2, 4, 6
  const Tensor b = make_normal({6, 3});
  const std::vector<double> bv = values(b);
  Tensor& r = kernels::add_scaled_(view, b, -0.5);
  EXPECT_EQ(&r, &view);
  const std::vector<double> after = values(dst);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 10; ++j) {
      const size_t k = static_cast<size_t>(i * 10 + j);
      if (j >= 2 && j < 8 && j % 2 == 0)
        EXPECT_DOUBLE_EQ(after[k], before[k] - 0.5 * bv[static_cast<size_t>(i * 3 + (j - 2) / 2)]);
      else
        EXPECT_EQ(after[k], before[k]) << "element (" << i << ", " << j << ") outside the view changed";
    }
}

TEST(ElementwiseCpu, AddScaledBroadcastAliasAndOverlap) {
  manual_seed(10);
  Tensor a = make_normal({4, 5});
  const std::vector<double> av = values(a);
  const Tensor row = make_normal({5});
  const std::vector<double> rv = values(row);
  kernels::add_scaled_(a, row, 2.0);
  std::vector<double> want(av.size());
  for (size_t i = 0; i < av.size(); ++i) want[i] = av[i] + 2.0 * rv[i % 5];
  EXPECT_TRUE(all_close(values(a), want, 1e-15, 0));

  // b is a itself: a += 1.5 a
  const std::vector<double> a2 = values(a);
  kernels::add_scaled_(a, a, 1.5);
  for (size_t i = 0; i < a2.size(); ++i) want[i] = a2[i] + 1.5 * a2[i];
  EXPECT_TRUE(all_close(values(a), want, 1e-15, 0));

  // b overlaps a shifted by one element: b must be read before a is written.
  Tensor base = make_normal({100});
  const std::vector<double> bb = values(base);
  Tensor dst = base.slice(0, 1, 100);
  kernels::add_scaled_(dst, base.slice(0, 0, 99), 1.0);
  const std::vector<double> got = values(base);
  EXPECT_EQ(got[0], bb[0]);
  for (size_t i = 1; i < 100; ++i) EXPECT_DOUBLE_EQ(got[i], bb[i] + bb[i - 1]) << i;
}

TEST(ElementwiseCpu, AddScaledReducedAndRagged) {
  manual_seed(11);
  for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
      Tensor a = make_normal({n}, dt);
      const Tensor b = make_normal({n}, dt);
      // Reference: the same update in f32, rounded once.
      Tensor want = a.to(DType::f32).clone();
      kernels::add_scaled_(want, b.to(DType::f32), 0.25);
      kernels::add_scaled_(a, b, 0.25);
      const double rtol = dt == DType::f32 ? 0 : half_ulp(dt);
      EXPECT_TRUE(all_close(a, want, rtol, 0x1p-25)) << dt << " n=" << n;
    }
  }
}
