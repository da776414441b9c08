// trainer/data/json.h: the JSON grammar, escapes, and errors that point at line and column.
#include "trainer/data/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tests/core/expect_error.h"

namespace pit::data::json {
namespace {

using test::expect_error_contains;
using test::expect_error_contains_all;

TEST(Json, Numbers) {
  const Value v = parse("[0, -0, 1, -12, 3.25, 0.992, 1e3, 2.5E-2, -1.5e+2, 123456789012]");
  const Array& a = v.as_array();
  ASSERT_EQ(a.size(), 10u);
  const double expected[] = {0, -0.0, 1, -12, 3.25, 0.992, 1000, 0.025, -150, 123456789012.0};
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].as_number(), expected[i]) << i;
  EXPECT_TRUE(std::signbit(a[1].as_number()));
}

TEST(Json, StringsAndEscapes) {
  const Value v =
      parse(R"(["plain", "q\"b\\s\/", "\b\f\n\r\t", "\u00e9\u20AC", "\ud83d\ude00", "", "raw é"])");
  const Array& a = v.as_array();
  EXPECT_EQ(a[0].as_string(), "plain");
  EXPECT_EQ(a[1].as_string(), "q\"b\\s/");
  EXPECT_EQ(a[2].as_string(), "\b\f\n\r\t");
  EXPECT_EQ(a[3].as_string(), "\xC3\xA9\xE2\x82\xAC");      // é €
  EXPECT_EQ(a[4].as_string(), "\xF0\x9F\x98\x80");          // U+1F600 from a surrogate pair
  EXPECT_EQ(a[5].as_string(), "");
  EXPECT_EQ(a[6].as_string(), "raw \xC3\xA9");
}

TEST(Json, ObjectsArraysAndLiterals) {
  const Value v =
      parse(" \n{ \"data\" : [1, [2, {}], []], \"ok\": true, \"no\": false,\t\"none\": null }\r\n");
  EXPECT_EQ(v.kind(), Value::Kind::object);
  EXPECT_EQ(v.as_object().size(), 4u);
  EXPECT_EQ(v.as_object()[0].first, "data");  // file order kept
  const Array& data = v.at("data").as_array();
  EXPECT_EQ(data[0].as_number(), 1);
  EXPECT_EQ(data[1].as_array()[1].as_object().size(), 0u);
  EXPECT_TRUE(data[2].as_array().empty());
  EXPECT_TRUE(v.at("ok").as_bool());
  EXPECT_FALSE(v.at("no").as_bool());
  EXPECT_TRUE(v.at("none").is_null());
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(parse("42").as_number(), 42);
  EXPECT_EQ(parse("\"s\"").as_string(), "s");
}

TEST(Json, WrongKindAndMissingKey) {
  const Value v = parse(R"({"a": "text"})");
  expect_error_contains([&] { v.at("a").as_number(); }, "expected a number, found a string");
  expect_error_contains([&] { v.at("b"); }, "no member \"b\"");
  expect_error_contains([&] { v.at("a").at("x"); }, "found a string");
}

TEST(Json, MalformedInputNamesLineAndColumn) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"", "1:1: expected a value, found end of input"},
      {"[1, 2,]", "1:7: expected a value, found ']'"},
      {"[1 2]", "1:4: expected ',' or ']' in an array, found '2'"},
      {"{\"a\" 1}", "1:6: expected ':' after a member name"},
      {"{\"a\": 1,}", "expected a member name"},
      {"{1: 2}", "expected a member name"},
      {"\"abc", "unterminated string"},
      {"\"a\tb\"", "control character 9 inside a string"},
      {"\"\\x\"", "unknown escape \\'x'"},
      {"\"\\u12G4\"", "expected 4 hex digits"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\\ud800x\"", "high surrogate not followed"},
      {"01", "1:2: unexpected '1' after the JSON value"},
      {"1.", "expected a digit after '.'"},
      {"-", "expected a digit"},
      {"1e", "expected a digit in the exponent"},
      {"+1", "expected a value, found '+'"},
      {"1e999", "out of the range of a double"},
      {"tru", "expected a value"},
      {"nul", "expected a value"},
      {"[1]\n\n  x", "3:3: unexpected 'x' after the JSON value"},
      {"[\n[\n1,\n]]", "4:1: expected a value, found ']'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    expect_error_contains_all([&] { parse(c.text, "test.json"); }, {"JSON: test.json:", c.message});
  }
}

TEST(Json, DeepNestingIsRefused) {
  const std::string deep = std::string(600, '[') + std::string(600, ']');
  expect_error_contains([&] { parse(deep); }, "deeper than 512");
  const std::string fine = std::string(500, '[') + std::string(500, ']');
  EXPECT_EQ(parse(fine).kind(), Value::Kind::array);
}

}  // namespace
}  // namespace pit::data::json
