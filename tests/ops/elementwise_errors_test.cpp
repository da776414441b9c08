// kernels::unary / unary_backward / binary / broadcast_shapes / add_scaled_ on the CPU: bad
// broadcasts, dtypes and shapes throw naming what is wrong; zero-size tensors.
#include <gtest/gtest.h>

#include <string>

#include "ops/kernels.h"
#include "tests/ops/elementwise_refs.h"

using namespace pit;
using namespace pit::test::elementwise;

// ---- errors ------------------------------------------------------------------------------------

TEST(ElementwiseCpu, BadBroadcastThrowsNamingBothShapes) {
  const std::string msg = error_of([] { kernels::broadcast_shapes({2, 3}, {4}); });
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  const std::string msg2 = error_of([] {
    kernels::binary(BinaryOp::add, zeros({2, 3}, DType::f64), zeros({3, 2}, DType::f64));
  });
  EXPECT_NE(msg2.find("[2, 3]"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("[3, 2]"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("add"), std::string::npos) << msg2;
  EXPECT_NE(error_of([] { kernels::broadcast_shapes({0}, {3}); }), "");
}

TEST(ElementwiseCpu, MixedDtypesThrowNamingBoth) {
  const Tensor a = ones({2, 3}, DType::f32), b = ones({2, 3}, DType::f64);
  const std::string msg = error_of([&] { kernels::binary(BinaryOp::add, a, b); });
  EXPECT_NE(msg.find("f32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("add"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { kernels::unary_backward(UnaryOp::exp, b, b, a); }).find("f32"),
            std::string::npos);
  Tensor dst = ones({2, 3}, DType::f64);
  EXPECT_NE(error_of([&] { kernels::add_scaled_(dst, a); }).find("f32"), std::string::npos);
}

TEST(ElementwiseCpu, OtherBadCallsThrow) {
  const Tensor ints = arange(6, DType::i32);
  EXPECT_NE(error_of([&] { kernels::unary(UnaryOp::exp, ints); }).find("i32"), std::string::npos);
  EXPECT_NE(error_of([&] { kernels::binary(BinaryOp::add, ints, ints); }).find("i32"), std::string::npos);
  EXPECT_NE(error_of([] { kernels::unary(UnaryOp::exp, Tensor()); }).find("undefined"), std::string::npos);
  const Tensor x = ones({2, 3}, DType::f64);
  const std::string msg = error_of([&] { kernels::unary_backward(UnaryOp::exp, ones({3, 2}, DType::f64), x, x); });
  EXPECT_NE(msg.find("[3, 2]"), std::string::npos) << msg;
  Tensor dst = ones({2, 3}, DType::f64);
  EXPECT_NE(error_of([&] { kernels::add_scaled_(dst, ones({4}, DType::f64)); }), "");
  Tensor expanded = ones({1, 3}, DType::f64).expand({2, 3});
  EXPECT_NE(error_of([&] { kernels::add_scaled_(expanded, x); }).find("broadcast"), std::string::npos);
}

TEST(ElementwiseCpu, ZeroSizeTensors) {
  const Tensor x = zeros({0, 3}, DType::f64);
  EXPECT_EQ(kernels::unary(UnaryOp::exp, x).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::unary_backward(UnaryOp::exp, x, x, x).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::binary(BinaryOp::add, x, ones({1, 3}, DType::f64)).shape(), (Shape{0, 3}));
  Tensor dst = zeros({0, 3}, DType::f64);
  EXPECT_EQ(kernels::add_scaled_(dst, x).shape(), (Shape{0, 3}));
}
