#include "trainer/config/parse.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>

#include "trainer/config/suggest.h"

namespace pit::train {
namespace {

// YAML 1.2 core schema booleans. yes/no/on/off (YAML 1.1) are refused on purpose: they are
// rarely meant as booleans and "norway problem" surprises are worse than a clear error.
std::optional<bool> read_bool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

enum class Read { ok, not_a_number, out_of_range };

Read read_int(const std::string& s, int64_t& out) {
  std::string_view text = s;
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty()) return Read::not_a_number;
  const auto res = std::from_chars(text.data(), text.data() + text.size(), out);
  if (res.ptr != text.data() + text.size()) return Read::not_a_number;
  if (res.ec == std::errc::result_out_of_range) return Read::out_of_range;
  return res.ec == std::errc() ? Read::ok : Read::not_a_number;
}

Read read_real(const std::string& s, double& out) {
  std::string_view text = s;
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty()) return Read::not_a_number;
  const auto res = std::from_chars(text.data(), text.data() + text.size(), out);
  if (res.ptr != text.data() + text.size()) return Read::not_a_number;
  if (res.ec == std::errc::result_out_of_range) return Read::out_of_range;
  // from_chars reads "inf" and "nan"; neither is a usable setting.
  if (res.ec != std::errc() || !std::isfinite(out)) return Read::not_a_number;
  return Read::ok;
}

std::string type_phrase(ValueType type) {
  switch (type) {
    case ValueType::boolean: return "a boolean";
    case ValueType::integer: return "an integer";
    case ValueType::real: return "a real number";
    case ValueType::string:
    case ValueType::choice: return "a string";
    case ValueType::int_list:
    case ValueType::real_list:
    case ValueType::string_list: return "a list";
  }
  return "?";
}

struct Context {
  const KeySpec& key;
  const Locate& locate;
  std::vector<std::string>& errors;

  void fail(const YAML::Node& node, const std::string& name, const std::string& problem,
            const std::string& hint = "") const {
    errors.push_back(located(locate(node.Mark()), name + ": " + problem + "; expected " +
                                                      key.expected_with_example() + hint));
  }
};

// One number (a scalar key, or an element of a list key). `name` is "model.hidden[1]" for one.
template <typename T>
std::optional<T> parse_number(const Context& cx, const std::string& name, const YAML::Node& node,
                              ValueType as) {
  if (!node.IsScalar()) {
    cx.fail(node, name, describe(node) + " is not " + type_phrase(as));
    return std::nullopt;
  }
  T value{};
  Read read;
  if constexpr (std::is_same_v<T, int64_t>)
    read = read_int(node.Scalar(), value);
  else
    read = read_real(node.Scalar(), value);
  if (read == Read::not_a_number) {
    cx.fail(node, name, describe(node) + " is not " + type_phrase(as));
    return std::nullopt;
  }
  if (read == Read::out_of_range || !cx.key.in_range(static_cast<double>(value))) {
    cx.fail(node, name, node.Scalar() + " is out of range");
    return std::nullopt;
  }
  return value;
}

// One string of a string list, run through the key's element check.
std::optional<std::string> parse_string_element(const Context& cx, const std::string& name,
                                                const YAML::Node& node, const YAML::Node& list) {
  if (node.IsNull()) {
    // "-" with nothing after it, or "~". yaml-cpp marks an empty one where the next token
    // starts (often the next line): point at the list instead; the index names the element.
    cx.fail(list, name, "no value");
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    cx.fail(node, name, describe(node) + " is not a string");
    return std::nullopt;
  }
  if (cx.key.each_check) {
    // The check's message stands on its own (e.g. an override's own "expected ..."), so it
    // follows the element instead of this key's "expected".
    if (const std::string problem = cx.key.each_check(node.Scalar()); !problem.empty()) {
      cx.errors.push_back(located(cx.locate(node.Mark()), name + ": " + describe(node) + ": " + problem));
      return std::nullopt;
    }
  }
  return node.Scalar();
}

template <typename T>
std::optional<Value> parse_list(const Context& cx, const std::string& name, const YAML::Node& node,
                                ValueType element) {
  if (!node.IsSequence()) {
    cx.fail(node, name, describe(node) + " is not a list");
    return std::nullopt;
  }
  if (node.size() == 0 && cx.key.non_empty) {
    cx.fail(node, name, "the list is empty");
    return std::nullopt;
  }
  std::vector<T> items;
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string item_name = name + "[" + std::to_string(i) + "]";
    std::optional<T> item;
    if constexpr (std::is_same_v<T, std::string>)
      item = parse_string_element(cx, item_name, node[i], node);
    else
      item = parse_number<T>(cx, item_name, node[i], element);
    if (item) items.push_back(std::move(*item));
    ok = ok && item.has_value();
  }
  if (!ok) return std::nullopt;
  return Value(std::move(items));
}

}  // namespace

std::string located(const std::string& where, const std::string& message) {
  return where.empty() ? message : where + ": " + message;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return "\"" + node.Scalar() + "\"";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "no value";
  }
}

std::optional<Value> parse_value(const KeySpec& key, const std::string& dotted,
                                 const YAML::Node& node, const Locate& locate,
                                 std::vector<std::string>& errors) {
  const Context cx{key, locate, errors};
  if (!node.IsDefined() || node.IsNull()) {
    cx.fail(node, dotted, "no value");
    return std::nullopt;
  }
  switch (key.type) {
    case ValueType::boolean: {
      const auto b = node.IsScalar() ? read_bool(node.Scalar()) : std::nullopt;
      if (!b) cx.fail(node, dotted, describe(node) + " is not a boolean");
      return b ? std::optional<Value>(*b) : std::nullopt;
    }
    case ValueType::integer: {
      const auto v = parse_number<int64_t>(cx, dotted, node, ValueType::integer);
      return v ? std::optional<Value>(*v) : std::nullopt;
    }
    case ValueType::real: {
      const auto v = parse_number<double>(cx, dotted, node, ValueType::real);
      return v ? std::optional<Value>(*v) : std::nullopt;
    }
    case ValueType::string:
      if (!node.IsScalar()) {
        cx.fail(node, dotted, describe(node) + " is not a string");
        return std::nullopt;
      }
      if (key.non_empty && node.Scalar().empty()) {
        cx.fail(node, dotted, "the string is empty");
        return std::nullopt;
      }
      return Value(node.Scalar());
    case ValueType::choice: {
      if (!node.IsScalar()) {
        cx.fail(node, dotted, describe(node) + " is not a string");
        return std::nullopt;
      }
      const std::string& s = node.Scalar();
      if (std::find(key.choices.begin(), key.choices.end(), s) != key.choices.end()) return Value(s);
      const std::string near = closest_match(s, key.choices);
      cx.fail(node, dotted, describe(node) + " is not allowed",
              near.empty() ? "" : "; did you mean \"" + near + "\"?");
      return std::nullopt;
    }
    case ValueType::int_list: return parse_list<int64_t>(cx, dotted, node, ValueType::integer);
    case ValueType::real_list: return parse_list<double>(cx, dotted, node, ValueType::real);
    case ValueType::string_list: return parse_list<std::string>(cx, dotted, node, ValueType::string);
  }
  return std::nullopt;
}

}  // namespace pit::train
