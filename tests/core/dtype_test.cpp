// core/dtype.h: sizes, names, parsing, is_floating, the DType <-> C++ type maps and dispatch.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "core/dtype.h"
#include "tests/core/expect_error.h"

using namespace pit;
using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;

TEST(DType, Sizes) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::i64), 8u);
  EXPECT_EQ(dtype_size(DType::u8), 1u);
  EXPECT_EQ(dtype_size(DType::boolean), 1u);
}

TEST(DType, Names) {
  EXPECT_STREQ(dtype_name(DType::f32), "f32");
  EXPECT_STREQ(dtype_name(DType::f64), "f64");
  EXPECT_STREQ(dtype_name(DType::f16), "f16");
  EXPECT_STREQ(dtype_name(DType::bf16), "bf16");
  EXPECT_STREQ(dtype_name(DType::i32), "i32");
  EXPECT_STREQ(dtype_name(DType::i64), "i64");
  EXPECT_STREQ(dtype_name(DType::u8), "u8");
  EXPECT_STREQ(dtype_name(DType::boolean), "bool");
}

TEST(DType, AllDTypesListsEachOnce) {
  std::set<DType> seen(std::begin(kAllDTypes), std::end(kAllDTypes));
  EXPECT_EQ(seen.size(), 8u);
  std::set<std::string> names;
  for (DType d : kAllDTypes) names.insert(dtype_name(d));
  EXPECT_EQ(names.size(), 8u) << "dtype names must be distinct";
}

TEST(DType, StreamsItsName) {
  std::ostringstream os;
  os << DType::bf16 << ' ' << DType::boolean;
  EXPECT_EQ(os.str(), "bf16 bool");
}

TEST(DType, ParseRoundTripsEveryName) {
  for (DType d : kAllDTypes) EXPECT_EQ(parse_dtype(dtype_name(d)), d) << dtype_name(d);
}

TEST(DType, ParseAcceptsCommonSpellings) {
  EXPECT_EQ(parse_dtype("float32"), DType::f32);
  EXPECT_EQ(parse_dtype("float"), DType::f32);
  EXPECT_EQ(parse_dtype("float64"), DType::f64);
  EXPECT_EQ(parse_dtype("double"), DType::f64);
  EXPECT_EQ(parse_dtype("float16"), DType::f16);
  EXPECT_EQ(parse_dtype("half"), DType::f16);
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_dtype("int32"), DType::i32);
  EXPECT_EQ(parse_dtype("int64"), DType::i64);
  EXPECT_EQ(parse_dtype("uint8"), DType::u8);
}

TEST(DType, ParseUnknownNameThrowsListingAllowedNames) {
  expect_error_contains_all([] { parse_dtype("float8"); },
                            {"'float8'", "f32", "f64", "f16", "bf16", "i32", "i64", "u8", "bool"});
  expect_error_contains([] { parse_dtype(""); }, "unknown dtype");
  expect_error_contains([] { parse_dtype("f32 "); }, "unknown dtype");
}

TEST(DType, IsFloating) {
  EXPECT_TRUE(is_floating(DType::f32));
  EXPECT_TRUE(is_floating(DType::f64));
  EXPECT_TRUE(is_floating(DType::f16));
  EXPECT_TRUE(is_floating(DType::bf16));
  EXPECT_FALSE(is_floating(DType::i32));
  EXPECT_FALSE(is_floating(DType::i64));
  EXPECT_FALSE(is_floating(DType::u8));
  EXPECT_FALSE(is_floating(DType::boolean));
}

TEST(DType, CppTypeAndDtypeOfAgree) {
  static_assert(dtype_of<CppType<DType::f32>::type>() == DType::f32);
  static_assert(dtype_of<CppType<DType::f64>::type>() == DType::f64);
  static_assert(dtype_of<CppType<DType::f16>::type>() == DType::f16);
  static_assert(dtype_of<CppType<DType::bf16>::type>() == DType::bf16);
  static_assert(dtype_of<CppType<DType::i32>::type>() == DType::i32);
  static_assert(dtype_of<CppType<DType::i64>::type>() == DType::i64);
  static_assert(dtype_of<CppType<DType::u8>::type>() == DType::u8);
  static_assert(dtype_of<CppType<DType::boolean>::type>() == DType::boolean);
  static_assert(std::is_same_v<CppType<DType::f16>::type, Half>);
  static_assert(std::is_same_v<CppType<DType::bf16>::type, BFloat16>);
  static_assert(std::is_same_v<CppType<DType::boolean>::type, bool>);
  SUCCEED();
}

TEST(DType, DispatchCallsTheMatchingType) {
  for (DType d : kAllDTypes) {
    const DType got = dispatch(d, "test", []<typename T>() { return dtype_of<T>(); });
    EXPECT_EQ(got, d) << dtype_name(d);
    const size_t size = dispatch(d, "test", []<typename T>() { return sizeof(T); });
    EXPECT_EQ(size, dtype_size(d)) << dtype_name(d);
  }
}

TEST(DType, DispatchRunsAllowedDtypes) {
  int calls = 0;
  dispatch<DType::i32, DType::u8>(DType::u8, "op", [&]<typename T>() {
    EXPECT_TRUE((std::is_same_v<T, uint8_t>));
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  const DType got = dispatch_floating(DType::bf16, "op", []<typename T>() { return dtype_of<T>(); });
  EXPECT_EQ(got, DType::bf16);
}

TEST(DType, DispatchRejectsUnsupportedDtypeNamingOpAndDtype) {
  bool called = false;
  expect_error_contains_all(
      [&] {
        dispatch<DType::f32, DType::f64>(DType::i32, "my_op", [&]<typename T>() { called = true; });
      },
      {"my_op", "dtype i32 is not supported", "f32, f64"});
  EXPECT_FALSE(called) << "the function must not run for a rejected dtype";
}

TEST(DType, DispatchFloatingRejectsIntegersAndBool) {
  for (DType d : {DType::i32, DType::i64, DType::u8, DType::boolean}) {
    expect_error_contains_all([&] { dispatch_floating(d, "relu", []<typename T>() {}); },
                              {"relu", dtype_name(d), "f32, f64, f16, bf16"});
  }
}
