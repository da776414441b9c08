#pragma once
// A small JSON parser (RFC 8259) for the data importers: null, booleans, numbers (as double),
// strings (UTF-8, with every escape including \u surrogate pairs), arrays and objects (members
// kept in file order). Malformed input is an error naming the source, line and column.
//
//   json::Value v = json::parse(text, "digits/0.json");
//   for (const json::Value& x : v.at("data").as_array()) pixels.push_back(x.as_number());
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pit::data::json {

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  enum class Kind { null, boolean, number, string, array, object };

  Value() = default;  // null
  explicit Value(bool b) : v_(b) {}
  explicit Value(double d) : v_(d) {}
  explicit Value(std::string s) : v_(std::move(s)) {}
  explicit Value(const char* s) : v_(std::string(s)) {}  // not the bool overload
  explicit Value(Array a) : v_(std::move(a)) {}
  explicit Value(Object o) : v_(std::move(o)) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::null; }

  // Each throws, naming the kind it found, when the value is of another kind.
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  // Object members: find() gives nullptr when absent (or not an object); at() throws naming the
  // key.
  const Value* find(std::string_view key) const;
  const Value& at(std::string_view key) const;

 private:
  std::variant<std::monostate, bool, double, std::string, Array, Object> v_;
};

const char* kind_name(Value::Kind kind);  // "null", "boolean", "number", ...

// Parses one JSON document (surrounding whitespace allowed, nothing else after it). `source`
// names the input in error messages. Nesting deeper than 512 levels is refused.
Value parse(std::string_view text, std::string_view source = "<json>");

}  // namespace pit::data::json
