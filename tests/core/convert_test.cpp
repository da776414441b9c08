// core/convert.h through Tensor::to(DType) on the CPU: every dtype pair, rounding to f16/bf16,
// bool semantics and float -> integer truncation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/convert.h"
#include "core/core.h"

using namespace pit;

namespace {

bool is_signed_dtype(DType d) { return d != DType::u8 && d != DType::boolean; }

// `x` as a value of T, for the small integers used below (exact in every dtype).
template <typename T>
T make(double x) {
  if constexpr (std::is_same_v<T, bool>) {
    return x != 0.0;
  } else if constexpr (is_reduced_float_v<T>) {
    return T(static_cast<float>(x));
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<int64_t>(x));  // u8 wraps, as convert.h documents
  } else {
    return static_cast<T>(x);
  }
}

// The value of an element of T as a double.
template <typename T>
double as_double(T v) {
  if constexpr (is_reduced_float_v<T>)
    return static_cast<double>(static_cast<float>(v));
  else
    return static_cast<double>(v);
}

// A tensor of `dtype` holding `xs`, built element by element (not through to()).
Tensor typed_tensor(DType dtype, const std::vector<double>& xs) {
  return dispatch(dtype, "test", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      std::vector<bool> v;
      for (double x : xs) v.push_back(x != 0.0);
      return from_vector(v);
    } else {
      std::vector<T> v;
      for (double x : xs) v.push_back(make<T>(x));
      return from_vector(v);
    }
  });
}

// The elements of t (of any dtype) as doubles, read through data<T>() (not through to()).
std::vector<double> read_back(const Tensor& t) {
  const Tensor c = t.contiguous();
  return dispatch(c.dtype(), "test", [&]<typename T>() {
    std::vector<double> out;
    const T* p = c.data<T>();
    for (int64_t i = 0; i < c.numel(); ++i) out.push_back(as_double(p[i]));
    return out;
  });
}

std::vector<uint16_t> reduced_bits(const Tensor& t) {
  std::vector<uint16_t> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.contiguous().data_ptr(), out.size() * 2);
  return out;
}

}  // namespace

TEST(Convert, EveryDtypePairOnSmallIntegers) {
  for (DType src : kAllDTypes) {
    std::vector<double> xs = {0, 1, 2, 3, 4, 5};
    if (is_signed_dtype(src)) xs.insert(xs.end(), {-1, -2, -5});
    if (src == DType::boolean) xs = {0, 1, 1, 0};
    const Tensor s = typed_tensor(src, xs);
    for (DType dst : kAllDTypes) {
      const Tensor d = s.to(dst);
      ASSERT_EQ(d.dtype(), dst);
      ASSERT_EQ(d.shape(), s.shape());
      std::vector<double> expected;
      for (double x : xs) {
        if (dst == DType::boolean)
          expected.push_back(x != 0.0 ? 1.0 : 0.0);
        else if (dst == DType::u8)
          expected.push_back(static_cast<double>(static_cast<uint8_t>(static_cast<int64_t>(x))));
        else
          expected.push_back(x);
      }
      EXPECT_EQ(read_back(d), expected) << dtype_name(src) << " -> " << dtype_name(dst);
      if (src == dst) EXPECT_TRUE(d.shares_storage(s)) << "to() of the same dtype is a no-op";
      else EXPECT_FALSE(d.shares_storage(s));
    }
  }
}

TEST(Convert, NonContiguousSource) {
  const Tensor x = arange(6.0).view({2, 3}).t();
  const Tensor y = x.to(DType::i32);
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{0, 3, 1, 4, 2, 5}));
}

TEST(Convert, FloatToIntegerTruncatesTowardZero) {
  const std::vector<double> xs = {2.7, -2.7, 0.9, -0.9, 2.5, -2.5, 10.9, -0.0};
  const std::vector<double> truncated = {2, -2, 0, 0, 2, -2, 10, 0};  // f16 and bf16 keep 10.9 above 10
  for (DType src : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    const Tensor s = from_vector<double>(xs).to(src);
    EXPECT_EQ(read_back(s.to(DType::i32)), truncated) << dtype_name(src);
    EXPECT_EQ(read_back(s.to(DType::i64)), truncated) << dtype_name(src);
  }
  EXPECT_EQ(from_vector<float>({2.7f, 255.9f}).to(DType::u8).to_vector<uint8_t>(),
            (std::vector<uint8_t>{2, 255}));
  // "through i64": a negative float reaches u8 the way a negative i64 does.
  EXPECT_EQ(from_vector<float>({-1.5f}).to(DType::u8).to_vector<uint8_t>(), (std::vector<uint8_t>{255}));
}

TEST(Convert, ToBoolIsNonZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> fs = {0.0f, -0.0f, 0.5f, -1e-30f, 1e-45f, nan, inf, -inf};
  const std::vector<double> expected = {0, 0, 1, 1, 1, 1, 1, 1};
  for (DType src : {DType::f32, DType::f64}) {
    EXPECT_EQ(read_back(from_vector(fs).to(src).to(DType::boolean)), expected) << dtype_name(src);
  }
  // In f16, -1e-30 and 1e-45 have already rounded to zero: false.
  EXPECT_EQ(read_back(from_vector(fs).to(DType::f16).to(DType::boolean)),
            (std::vector<double>{0, 0, 1, 0, 0, 1, 1, 1}));
  EXPECT_EQ(read_back(from_vector<int32_t>({0, 256, -1}).to(DType::boolean)),
            (std::vector<double>{0, 1, 1}))
      << "256 is true: it is not narrowed to u8 first";
  EXPECT_EQ(read_back(from_vector<int64_t>({int64_t{1} << 40, 0}).to(DType::boolean)),
            (std::vector<double>{1, 0}));
  EXPECT_EQ(read_back(from_vector<uint8_t>({0, 7}).to(DType::boolean)), (std::vector<double>{0, 1}));
}

TEST(Convert, FromBoolIsZeroOrOne) {
  const Tensor b = from_vector<bool>({true, false, true});
  for (DType dst : kAllDTypes)
    EXPECT_EQ(read_back(b.to(dst)), (std::vector<double>{1, 0, 1})) << dtype_name(dst);
}

TEST(Convert, F32ToHalfRoundsToNearestEven) {
  const std::vector<float> fs = {1.0f,
                                 1.0f + 0x1p-11f,      // tie: stays 1
                                 1.0f + 3 * 0x1p-11f,  // tie: up to even
                                 65504.0f,
                                 65520.0f,  // overflow
                                 0x1p-25f,  // half the smallest subnormal: 0
                                 0x1p-24f,
                                 -0.0f,
                                 1.0f / 3.0f};
  EXPECT_EQ(reduced_bits(from_vector(fs).to(DType::f16)),
            (std::vector<uint16_t>{0x3c00, 0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0000, 0x0001, 0x8000,
                                   0x3555}));
  const Tensor nan = from_vector<float>({std::numeric_limits<float>::quiet_NaN()}).to(DType::f16);
  EXPECT_TRUE(std::isnan(nan.item<float>()));
}

TEST(Convert, F32ToBFloat16RoundsToNearestEven) {
  const std::vector<float> fs = {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f,
                                 std::numeric_limits<float>::max(), -0.0f, 0.1f};
  EXPECT_EQ(reduced_bits(from_vector(fs).to(DType::bf16)),
            (std::vector<uint16_t>{0x3f80, 0x3f80, 0x3f82, 0x7f80, 0x8000, 0x3dcd}));
  const Tensor nan = from_vector<float>({std::numeric_limits<float>::quiet_NaN()}).to(DType::bf16);
  EXPECT_TRUE(std::isnan(nan.item<float>()));
}

TEST(Convert, F64ToHalfRoundsTwiceThroughF32) {
  // 1 + 2^-11 + 2^-40 is above the f16 tie, but rounds to the tie itself in f32; convert.h
  // documents that f64 -> f16 goes through f32, so the tie then goes to even.
  const double x = 1.0 + 0x1p-11 + 0x1p-40;
  EXPECT_EQ(reduced_bits(from_vector<double>({x}).to(DType::f16)), (std::vector<uint16_t>{0x3c00}));
  EXPECT_EQ(reduced_bits(from_vector<double>({1.0 + 0x1p-11 + 0x1p-20}).to(DType::f16)),
            (std::vector<uint16_t>{0x3c01}));
}

TEST(Convert, HalfToOtherFloatsIsExact) {
  const Tensor h = from_vector<float>({0.1f, 65504.0f, 0x1p-24f, -3.5f}).to(DType::f16);
  const std::vector<float> f = h.to(DType::f32).to_vector<float>();
  EXPECT_EQ(f[0], half_bits_to_float(float_to_half_bits(0.1f)));
  EXPECT_EQ(f[1], 65504.0f);
  EXPECT_EQ(f[2], 0x1p-24f);
  EXPECT_EQ(f[3], -3.5f);
  EXPECT_EQ(h.to(DType::f64).to_vector<double>()[0], static_cast<double>(f[0]));
  // f16 -> bf16 goes through f32 and rounds there: 0.1 in f16 is 0.0999755859375
  EXPECT_EQ(reduced_bits(h.to(DType::bf16))[0], float_to_bfloat16_bits(f[0]));
}

TEST(Convert, IntegerNarrowingIsModular) {
  EXPECT_EQ(from_vector<int64_t>({(int64_t{1} << 32) + 5, -1}).to(DType::i32).to_vector<int32_t>(),
            (std::vector<int32_t>{5, -1}));
  EXPECT_EQ(from_vector<int32_t>({300, -1, 255}).to(DType::u8).to_vector<uint8_t>(),
            (std::vector<uint8_t>{44, 255, 255}));
}

TEST(Convert, LargeIntegersToFloatRoundToNearest) {
  const int64_t big = (int64_t{1} << 53) + 1;
  EXPECT_EQ(from_vector<int64_t>({big}).to(DType::f64).to_vector<double>()[0], 0x1p53);
  EXPECT_EQ(from_vector<int32_t>({16777217}).to(DType::f32).to_vector<float>()[0], 16777216.0f);
  EXPECT_EQ(from_vector<double>({0.1}).to(DType::f32).to_vector<float>()[0], 0.1f);
}

TEST(Convert, ConvertFunctionDirectly) {
  EXPECT_EQ((convert<int32_t, float>(-2.7f)), -2);
  EXPECT_EQ((convert<bool, float>(0.25f)), true);
  EXPECT_EQ((convert<bool, Half>(Half(0.0f))), false);
  EXPECT_EQ((convert<Half, double>(1.5).bits), 0x3e00);
  EXPECT_EQ((convert<BFloat16, int64_t>(3).bits), 0x4040);
  EXPECT_EQ((convert<float, BFloat16>(BFloat16::from_bits(0x4040))), 3.0f);
  EXPECT_EQ((convert<uint8_t, Half>(Half(200.7f))), 200);
}
