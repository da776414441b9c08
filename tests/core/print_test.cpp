// Printing tensors (core/print.cpp through operator<< and Tensor::str()).
#include <gtest/gtest.h>

#include <limits>
#include <sstream>
#include <string>

#include "core/core.h"

using namespace pit;

namespace {

std::string printed(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(Print, OneDimensional) {
  EXPECT_EQ(printed(from_vector<float>({1, 2.5f, -3})),
            "tensor(shape=[3], dtype=f32, device=cpu)\n[1, 2.5, -3]");
}

TEST(Print, TwoAndThreeDimensional) {
  EXPECT_EQ(printed(arange(6.0).view({2, 3})),
            "tensor(shape=[2, 3], dtype=f32, device=cpu)\n[[0, 1, 2],\n [3, 4, 5]]");
  EXPECT_EQ(printed(arange(8.0, DType::i32).view({2, 2, 2})),
            "tensor(shape=[2, 2, 2], dtype=i32, device=cpu)\n"
            "[[[0, 1],\n  [2, 3]],\n [[4, 5],\n  [6, 7]]]");
}

TEST(Print, NonContiguousPrintsLogicalOrder) {
  EXPECT_EQ(printed(arange(6.0).view({2, 3}).t()),
            "tensor(shape=[3, 2], dtype=f32, device=cpu)\n[[0, 3],\n [1, 4],\n [2, 5]]");
  EXPECT_EQ(printed(arange(10.0).slice(0, 1, 10, 4)),
            "tensor(shape=[3], dtype=f32, device=cpu)\n[1, 5, 9]");
}

TEST(Print, StrMatchesTheStream) {
  const Tensor t = from_vector<double>({0.125, 1e10, -1e-7});
  EXPECT_EQ(t.str(), printed(t));
  EXPECT_EQ(t.str(), "tensor(shape=[3], dtype=f64, device=cpu)\n[0.125, 1e+10, -1e-07]");
}

TEST(Print, LargeTensorIsSummarised) {
  const std::string s = printed(arange(2000.0));
  EXPECT_TRUE(contains(s, "tensor(shape=[2000], dtype=f32, device=cpu)\n")) << s;
  EXPECT_TRUE(contains(s, "[0, 1, 2, ..., 1997, 1998, 1999]")) << s;
  EXPECT_LT(s.size(), 200u) << "a summary, not every value";

  const std::string m = printed(zeros({100, 100}));
  EXPECT_TRUE(contains(m, "...")) << m;
  EXPECT_LT(m.size(), 500u) << m;
  // A summarised matrix keeps 3 rows at each end, each with 3 values at each end.
  EXPECT_TRUE(contains(m, "[[0, 0, 0, ..., 0, 0, 0],\n [0, 0, 0, ..., 0, 0, 0],")) << m;
}

TEST(Print, SmallTensorIsNotSummarised) {
  const std::string s = printed(arange(20.0));
  EXPECT_FALSE(contains(s, "...")) << s;
  EXPECT_TRUE(contains(s, "10, 11, 12")) << s;
}

TEST(Print, BFloat16) {
  const Tensor t = from_vector<float>({1.5f, -2.0f, 0.1f}).to(DType::bf16);
  EXPECT_EQ(printed(t), "tensor(shape=[3], dtype=bf16, device=cpu)\n[1.5, -2, 0.100098]")
      << "0.1 is 0.10009765625 in bf16";
}

TEST(Print, Half) {
  EXPECT_EQ(printed(from_vector<float>({65504.0f, 1e6f}).to(DType::f16)),
            "tensor(shape=[2], dtype=f16, device=cpu)\n[65504, inf]");
}

TEST(Print, BoolAndIntegers) {
  EXPECT_EQ(printed(from_vector<bool>({true, false, true})),
            "tensor(shape=[3], dtype=bool, device=cpu)\n[1, 0, 1]");
  EXPECT_EQ(printed(from_vector<int64_t>({-5, 1234567890123})),
            "tensor(shape=[2], dtype=i64, device=cpu)\n[-5, 1234567890123]");
  EXPECT_EQ(printed(from_vector<uint8_t>({0, 255})),
            "tensor(shape=[2], dtype=u8, device=cpu)\n[0, 255]");
}

TEST(Print, ZeroDim) {
  EXPECT_EQ(printed(full({}, 3.25)), "tensor(shape=[], dtype=f32, device=cpu)\n3.25");
  EXPECT_EQ(printed(full({}, 7.0, DType::i32)), "tensor(shape=[], dtype=i32, device=cpu)\n7");
}

TEST(Print, ZeroSizeAndUndefined) {
  EXPECT_EQ(printed(zeros({0})), "tensor(shape=[0], dtype=f32, device=cpu)\n[]");
  EXPECT_EQ(printed(zeros({2, 0})), "tensor(shape=[2, 0], dtype=f32, device=cpu)\n[[],\n []]");
  EXPECT_EQ(printed(Tensor()), "tensor(undefined)");
}

TEST(Print, NonFiniteValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::string s = printed(from_vector<float>({inf, -inf, std::numeric_limits<float>::quiet_NaN()}));
  EXPECT_TRUE(contains(s, "[inf, -inf, ")) << s;
  EXPECT_TRUE(contains(s, "nan")) << s;
}
