#include <gtest/gtest.h>

#include "autograd/gradcheck.h"
#include "tests/autograd/toy_ops.h"

using namespace pit;
using namespace pit::test;

TEST(Gradcheck, PassesForCorrectBackward) {
  const auto r = gradcheck([](const std::vector<Variable>& in) { return sin_op(times(in[0], in[1])); },
                           {from_vector(std::vector<double>{0.3, -0.7, 1.1}),
                            from_vector(std::vector<double>{1.5, 0.2, -0.4})});
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_LT(r.max_abs_error, 1e-8);
}

TEST(Gradcheck, CatchesAWrongBackward) {
  // d sin(x) claimed to be sin(x): the check must fail and name the input and element.
  auto wrong = [](const std::vector<Variable>& in) {
    const Tensor sa = in[0].data();
    return record("bad_sin", {in[0]}, map2(sa, sa, [](double x, double) { return std::sin(x); }),
                  [=](const Tensor& g) -> std::vector<Tensor> {
                    return {map2(g, sa, [](double gg, double x) { return gg * std::sin(x); })};
                  });
  };
  const auto r = gradcheck(wrong, {from_vector(std::vector<double>{0.3, 1.2})});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.report.find("input 0"), std::string::npos) << r.report;
  EXPECT_NE(r.report.find("FAILED"), std::string::npos) << r.report;
}

TEST(Gradcheck, RejectsOutputsThatIgnoreInputs) {
  EXPECT_THROW(gradcheck([](const std::vector<Variable>&) { return Variable(zeros({2}, DType::f64)); },
                         {zeros({2}, DType::f64)}),
               Error);
}

// a * b with b's gradient off: by `scale` (relative), or dropped to one row of a broadcast b.
// The check must fail on input 1 alone, with input 0's gradient right.
Variable times_wrong_in_b(const Variable& a, const Variable& b, double scale) {
  const Tensor sa = a.data(), sb = b.data();
  return record("times_wrong_b", {a, b}, map2(sa, sb, [](double x, double y) { return x * y; }),
                [=](const Tensor& g) -> std::vector<Tensor> {
                  Tensor gb = map2(g, sa, [](double x, double y) { return x * y; });
                  for (int64_t i = 0; i < gb.numel(); ++i) gb.data<double>()[i] *= scale;
                  return {map2(g, sb, [](double x, double y) { return x * y; }), gb};
                });
}

TEST(Gradcheck, CatchesAWrongGradientOfTheSecondInputBySmallAmounts) {
  // 1e-3 relative: ten times the default rtol, so within reach of a loose check only.
  for (const double scale : {2.0, 1.001}) {
    const auto r = gradcheck([&](const std::vector<Variable>& in) { return times_wrong_in_b(in[0], in[1], scale); },
                             {from_vector(std::vector<double>{0.3, -0.7, 1.1}),
                              from_vector(std::vector<double>{1.5, 0.2, -0.4})});
    EXPECT_FALSE(r.ok) << scale;
    EXPECT_NE(r.report.find("input 1"), std::string::npos) << r.report;
    EXPECT_EQ(r.report.find("input 0"), std::string::npos) << r.report;
  }
}

TEST(Gradcheck, CatchesABroadcastGradientThatIsNotSummed) {
  // y[i, j] = a[i, j] + b[j]: b's gradient must sum g over i; this one takes row 0 only.
  auto wrong = [](const std::vector<Variable>& in) {
    const Tensor sa = in[0].data().contiguous(), sb = in[1].data().contiguous();
    const int64_t rows = sa.size(0), cols = sa.size(1);
    Tensor y = Tensor::empty({rows, cols}, DType::f64);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        y.data<double>()[i * cols + j] = sa.data<double>()[i * cols + j] + sb.data<double>()[j];
    return record("bad_broadcast_add", {in[0], in[1]}, y, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor gc = g.contiguous();
      Tensor gb = Tensor::empty({cols}, DType::f64);
      for (int64_t j = 0; j < cols; ++j) gb.data<double>()[j] = gc.data<double>()[j];
      return {gc, gb};
    });
  };
  const auto r = gradcheck(wrong, {from_vector(std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3}),
                                   from_vector(std::vector<double>{1.0, 2.0, 3.0})});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.report.find("input 1"), std::string::npos) << r.report;
}
