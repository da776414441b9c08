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
