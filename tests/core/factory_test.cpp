// Factories of core/tensor.h (zeros, ones, full, arange, from_vector, rand, randn) and the
// random numbers of core/random.h: Philox known answers, Generator, seeding and offsets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/core.h"
#include "tests/core/expect_error.h"

using namespace pit;
using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;

namespace {

std::vector<double> as_doubles(const Tensor& t) { return t.to_vector<double>(); }

bool same_bytes(const Tensor& a, const Tensor& b) {
  const Tensor x = a.contiguous(), y = b.contiguous();
  return x.dtype() == y.dtype() && x.shape() == y.shape() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

}  // namespace

// ---- zeros, ones, full -----------------------------------------------------------------------

TEST(Factory, ZerosOnesFullForEveryDtype) {
  for (DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_name(d));
    const Tensor z = zeros({2, 3}, d);
    EXPECT_EQ(z.dtype(), d);
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    EXPECT_EQ(z.device(), Device::cpu());
    EXPECT_EQ(as_doubles(z), std::vector<double>(6, 0.0));
    EXPECT_EQ(as_doubles(ones({4}, d)), std::vector<double>(4, 1.0));
    const double expected = d == DType::boolean ? 1.0 : 5.0;
    EXPECT_EQ(as_doubles(full({3}, 5.0, d)), std::vector<double>(3, expected));
    EXPECT_EQ(as_doubles(full({}, 1.0, d)), std::vector<double>{1.0});
    EXPECT_EQ(zeros({0}, d).numel(), 0);
  }
}

TEST(Factory, FullConvertsTheValueLikeACast) {
  EXPECT_EQ(as_doubles(full({2}, 2.5)), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(as_doubles(full({1}, 2.7, DType::i32)), (std::vector<double>{2}));
  EXPECT_EQ(as_doubles(full({1}, -2.7, DType::i64)), (std::vector<double>{-2}));
  EXPECT_EQ(as_doubles(full({1}, 0.25, DType::boolean)), (std::vector<double>{1}));
  EXPECT_EQ(as_doubles(full({1}, 0.0, DType::boolean)), (std::vector<double>{0}));
  EXPECT_EQ(as_doubles(full({1}, 1.0 / 3.0, DType::f16)),
            (std::vector<double>{half_bits_to_float(0x3555)}));
  EXPECT_EQ(as_doubles(full({1}, 0.1, DType::f64)), (std::vector<double>{0.1}));
  EXPECT_EQ(as_doubles(full({1}, 1e6, DType::f16)),
            (std::vector<double>{std::numeric_limits<double>::infinity()}));
}

// ---- arange ----------------------------------------------------------------------------------

TEST(Factory, Arange) {
  EXPECT_EQ(as_doubles(arange(5.0)), (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(5.0).dtype(), DType::f32);
  EXPECT_EQ(as_doubles(arange(2, 8, 2)), (std::vector<double>{2, 4, 6}));
  EXPECT_EQ(as_doubles(arange(0, 10, 3)), (std::vector<double>{0, 3, 6, 9}));
  EXPECT_EQ(as_doubles(arange(5, 0, -1)), (std::vector<double>{5, 4, 3, 2, 1}));
  EXPECT_EQ(as_doubles(arange(1, -1, -0.5)), (std::vector<double>{1, 0.5, 0, -0.5}));
  EXPECT_EQ(as_doubles(arange(0, 1, 0.25)), (std::vector<double>{0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(as_doubles(arange(-1.5, 1.5, 0.5, DType::f64)),
            (std::vector<double>{-1.5, -1, -0.5, 0, 0.5, 1}));
  EXPECT_EQ(arange(0, 1, 0.1, DType::f64).numel(), 10);
  EXPECT_EQ(arange(0, 1, 0.1, DType::f64).to_vector<double>()[3], 3 * 0.1)
      << "element i is start + i * step";
  const Tensor i = arange(0, 5, 1, DType::i64);
  EXPECT_EQ(i.dtype(), DType::i64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(3.0, DType::u8).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 2}));
}

TEST(Factory, ArangeEmptyRanges) {
  EXPECT_EQ(arange(3, 3).shape(), (Shape{0}));
  EXPECT_EQ(arange(5, 0).shape(), (Shape{0})) << "positive step, end below start";
  EXPECT_EQ(arange(0, 5, -1).shape(), (Shape{0})) << "negative step, end above start";
  EXPECT_EQ(arange(0.0).numel(), 0);
}

TEST(Factory, ArangeRejectsBadArguments) {
  expect_error_contains([] { (void)arange(0, 5, 0); }, "step must be finite and non-zero");
  expect_error_contains([] { (void)arange(0, 5, std::nan("")); }, "step");
  expect_error_contains([] { (void)arange(0, std::numeric_limits<double>::infinity(), 1); },
                        "bounds must be finite");
}

// ---- from_vector -----------------------------------------------------------------------------

TEST(Factory, FromVector) {
  const Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(from_vector<int64_t>({7, 8}).shape(), (Shape{2}));
  EXPECT_EQ(from_vector<int64_t>({7, 8}).dtype(), DType::i64);
  const Tensor b = from_vector<bool>({true, false, true});
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_EQ(b.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(from_vector<double>({}).shape(), (Shape{0}));
  EXPECT_EQ(from_vector<float>({2.5f}, Shape{}).item<float>(), 2.5f);
}

TEST(Factory, FromVectorShapeMismatchThrows) {
  expect_error_contains_all([] { (void)from_vector<float>({1, 2, 3}, {2, 2}); },
                            {"3 values", "[2, 2]", "4 elements"});
  expect_error_contains([] { (void)from_vector<float>({1, 2}, Shape{}); }, "2 values");
}

// ---- rand and randn --------------------------------------------------------------------------

TEST(Random, RandIsInUnitIntervalWithPlausibleMoments) {
  manual_seed(2024);
  const std::vector<float> v = rand({100000}).to_vector<float>();
  double sum = 0, sum_sq = 0;
  float lo = 1, hi = 0;
  for (float x : v) {
    sum += x;
    sum_sq += static_cast<double>(x) * x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const double mean = sum / v.size(), var = sum_sq / v.size() - mean * mean;
  EXPECT_GE(lo, 0.0f);
  EXPECT_LT(hi, 1.0f);
  EXPECT_NEAR(mean, 0.5, 0.02);
  EXPECT_NEAR(var, 1.0 / 12.0, 0.01);
  EXPECT_LT(lo, 0.001f) << "1e5 draws should come close to 0";
  EXPECT_GT(hi, 0.999f) << "1e5 draws should come close to 1";
}

TEST(Random, RandStaysBelowOneInEveryFloatingDtype) {
  // Rounding to f16 or bf16 must not turn draws just below 1 into 1.
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    manual_seed(7);
    const std::vector<double> v = rand({100000}, d).to_vector<double>();
    double lo = 1, hi = 0, sum = 0;
    for (double x : v) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
    }
    EXPECT_GE(lo, 0.0) << dtype_name(d);
    EXPECT_LT(hi, 1.0) << dtype_name(d);
    EXPECT_NEAR(sum / v.size(), 0.5, 0.02) << dtype_name(d);
  }
}

TEST(Random, RandnHasZeroMeanAndUnitStd) {
  for (DType d : {DType::f32, DType::f64}) {
    manual_seed(99);
    const std::vector<double> v = randn({100000}, d).to_vector<double>();
    double sum = 0, sum_sq = 0;
    for (double x : v) {
      ASSERT_TRUE(std::isfinite(x));
      sum += x;
      sum_sq += x * x;
    }
    const double mean = sum / v.size(), std = std::sqrt(sum_sq / v.size() - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.02) << dtype_name(d);
    EXPECT_NEAR(std, 1.0, 0.02) << dtype_name(d);
  }
}

TEST(Random, RandnF16AndBF16AreRoundedF32Draws) {
  for (DType d : {DType::f16, DType::bf16}) {
    manual_seed(5);
    const Tensor f = randn({1000});
    manual_seed(5);
    const Tensor r = randn({1000}, d);
    EXPECT_TRUE(same_bytes(r, f.to(d))) << dtype_name(d);
  }
}

TEST(Random, RejectsIntegerDtypes) {
  expect_error_contains_all([] { (void)rand({2}, DType::i32); }, {"rand", "i32", "not supported"});
  expect_error_contains_all([] { (void)randn({2}, DType::boolean); }, {"randn", "bool"});
}

TEST(Random, SameSeedSameValuesSuccessiveDrawsDiffer) {
  manual_seed(42);
  EXPECT_EQ(default_generator().seed(), 42u);
  EXPECT_EQ(default_generator().offset(), 0u);
  const Tensor a = rand({1000});
  const Tensor a2 = rand({1000});
  manual_seed(42);
  const Tensor b = rand({1000});
  EXPECT_TRUE(same_bytes(a, b)) << "same seed, same values";
  EXPECT_FALSE(same_bytes(a, a2)) << "successive draws differ";
  manual_seed(43);
  EXPECT_FALSE(same_bytes(a, rand({1000}))) << "another seed, other values";
  manual_seed(42);
  const Tensor n1 = randn({1000});
  manual_seed(42);
  EXPECT_TRUE(same_bytes(n1, randn({1000})));
}

TEST(Random, DrawsFollowTheDocumentedCounterLayout) {
  // Element i of a draw at (seed, offset) is philox_uniform(seed, offset, i); each draw of n
  // elements advances the offset by ceil(n / 4).
  manual_seed(11);
  const std::vector<float> first = rand({5}).to_vector<float>();
  EXPECT_EQ(default_generator().offset(), 2u);
  const std::vector<float> second = rand({3}).to_vector<float>();
  EXPECT_EQ(default_generator().offset(), 3u);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(first[i], philox_uniform(11, 0, i)) << i;
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(second[i], philox_uniform(11, 2, i)) << i;
  manual_seed(11);
  const std::vector<float> whole = rand({12}).to_vector<float>();
  EXPECT_EQ(second[0], whole[8]) << "the second draw starts at block 2, element 8";
  const std::vector<float> normal = randn({6}).to_vector<float>();  // at offset 3
  for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(normal[i], philox_normal(11, 3, i)) << i;
}

TEST(Random, DrawsInPiecesEqualOneDrawWhenAlignedToBlocks) {
  manual_seed(3);
  const std::vector<float> whole = rand({1000}).to_vector<float>();
  manual_seed(3);
  std::vector<float> pieces = rand({500}).to_vector<float>();
  const std::vector<float> rest = rand({500}).to_vector<float>();
  pieces.insert(pieces.end(), rest.begin(), rest.end());
  EXPECT_EQ(pieces, whole);
}

TEST(Random, SetOffsetResumesTheSequence) {
  manual_seed(8);
  (void)rand({10});
  const uint64_t saved = default_generator().offset();
  const Tensor a = randn({16});
  default_generator().set_offset(saved);
  EXPECT_TRUE(same_bytes(a, randn({16})));
}

TEST(Random, EmptyDrawReservesNothing) {
  manual_seed(1);
  EXPECT_EQ(rand({0}).numel(), 0);
  EXPECT_EQ(default_generator().offset(), 0u);
}

TEST(Random, GeneratorReserve) {
  Generator g(7);
  EXPECT_EQ(g.seed(), 7u);
  EXPECT_EQ(g.offset(), 0u);
  EXPECT_EQ(g.reserve(5), 0u);
  EXPECT_EQ(g.offset(), 2u) << "5 elements take two blocks of four";
  EXPECT_EQ(g.reserve(4), 2u);
  EXPECT_EQ(g.offset(), 3u);
  EXPECT_EQ(g.reserve(0), 3u);
  EXPECT_EQ(g.offset(), 3u);
  EXPECT_EQ(g.reserve(1), 3u);
  EXPECT_EQ(g.offset(), 4u);
  g.set_offset(100);
  EXPECT_EQ(g.reserve(9), 100u);
  EXPECT_EQ(g.offset(), 103u);
  g.manual_seed(9);
  EXPECT_EQ(g.seed(), 9u);
  EXPECT_EQ(g.offset(), 0u) << "reseeding restarts the offset";
  EXPECT_EQ(&default_generator(), &default_generator());
}

TEST(Random, UniformFromBits) {
  EXPECT_EQ(uniform_from_bits(0), 0.0f);
  EXPECT_EQ(uniform_from_bits(0xffffffffu), 1.0f - 0x1p-24f);
  EXPECT_EQ(uniform_from_bits(0x80000000u), 0.5f);
  EXPECT_EQ(uniform_from_bits(0xff), 0.0f) << "the low 8 bits are dropped";
}

// ---- Philox known answers (Random123, kat_vectors, philox4x32 with 10 rounds) ----------------

namespace {

Philox4x32 philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  const uint64_t lo = c0 | (static_cast<uint64_t>(c1) << 32);
  const uint64_t hi = c2 | (static_cast<uint64_t>(c3) << 32);
  const uint64_t key = k0 | (static_cast<uint64_t>(k1) << 32);
  return philox4x32_10(lo, hi, key);
}

void expect_block(const Philox4x32& got, uint32_t e0, uint32_t e1, uint32_t e2, uint32_t e3) {
  EXPECT_EQ(got.v[0], e0) << std::hex << got.v[0];
  EXPECT_EQ(got.v[1], e1) << std::hex << got.v[1];
  EXPECT_EQ(got.v[2], e2) << std::hex << got.v[2];
  EXPECT_EQ(got.v[3], e3) << std::hex << got.v[3];
}

}  // namespace

TEST(Philox, KnownAnswerZeros) {
  expect_block(philox(0, 0, 0, 0, 0, 0), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
}

TEST(Philox, KnownAnswerAllOnes) {
  const uint32_t f = 0xffffffffu;
  expect_block(philox(f, f, f, f, f, f), 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);
}

TEST(Philox, KnownAnswerPiDigits) {
  expect_block(philox(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u),
               0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

TEST(Philox, NormalUsesBoxMullerPairs) {
  // Elements 2k and 2k+1 share a radius: their squares sum to -2 log(u1).
  const Philox4x32 r = philox4x32_10(5, 0, 77);
  for (unsigned pair : {0u, 2u}) {
    const double u1 = (static_cast<double>(r.v[pair] >> 8) + 1.0) * 0x1p-24;
    // elements 20 + pair and 21 + pair of a draw at offset 0 use block 5
    const double x = philox_normal(77, 0, 20 + pair), y = philox_normal(77, 0, 21 + pair);
    EXPECT_NEAR(x * x + y * y, -2.0 * std::log(u1), 1e-5 * (1 - 2.0 * std::log(u1)));
  }
}
