#include "trainer/config/schema.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "core/error.h"
#include "trainer/config/suggest.h"
#include "trainer/quote.h"

namespace pit::train {
namespace {

// A bound as people write it: "1", "0.5", "1e-8" (not "1.0").
std::string format_bound(double value) {
  if (std::trunc(value) == value && std::fabs(value) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(value));
    return buf;
  }
  return format_real(value);
}


template <typename T>
std::string format_list(const std::vector<T>& items, auto&& one) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + one(items[i]);
  return out + "]";
}

}  // namespace

std::string format_real(double value) {
  char buf[64];
  // Without a format argument, to_chars writes the shortest text that reads back exactly.
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  std::string s(buf, res.ptr);
  // "3e-04" -> "3e-4", "1e+20" -> "1e20": the exponent as people write it.
  if (const auto e = s.find('e'); e != std::string::npos) {
    std::string mantissa = s.substr(0, e), exponent = s.substr(e + 1);
    std::string sign;
    if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) {
      if (exponent[0] == '-') sign = "-";
      exponent.erase(0, 1);
    }
    exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
    return mantissa + "e" + sign + exponent;
  }
  // A whole number gets ".0" so that it still reads as a real, in YAML and to people.
  if (s.find_first_of(".ein") == std::string::npos) s += ".0";
  return s;
}

size_t value_index(ValueType type) {
  switch (type) {
    case ValueType::boolean: return 0;
    case ValueType::integer: return 1;
    case ValueType::real: return 2;
    case ValueType::string:
    case ValueType::choice: return 3;
    case ValueType::int_list: return 4;
    case ValueType::real_list: return 5;
    case ValueType::string_list: return 6;
  }
  return 0;
}

std::string_view type_name(ValueType type) {
  switch (type) {
    case ValueType::boolean: return "boolean";
    case ValueType::integer: return "integer";
    case ValueType::real: return "real";
    case ValueType::string: return "string";
    case ValueType::choice: return "choice";
    case ValueType::int_list: return "list of integers";
    case ValueType::real_list: return "list of reals";
    case ValueType::string_list: return "list of strings";
  }
  return "?";
}

// ---- KeySpec -----------------------------------------------------------------------------------

std::string KeySpec::range() const {
  std::string out;
  if (min) out += std::string(min->inclusive ? ">= " : "> ") + format_bound(min->value);
  if (min && max) out += " and ";
  if (max) out += std::string(max->inclusive ? "<= " : "< ") + format_bound(max->value);
  return out;
}

std::string KeySpec::expected() const {
  const std::string bounds = range();
  const std::string range = bounds.empty() ? "" : " " + bounds;
  const std::string each = bounds.empty() ? "" : ", each " + bounds;
  const std::string list = non_empty ? "a non-empty list of " : "a list of ";
  switch (type) {
    case ValueType::boolean: return "true or false";
    case ValueType::integer: return "an integer" + range;
    case ValueType::real: return "a real number" + range;
    case ValueType::string: return non_empty ? "a non-empty string" : "a string";
    case ValueType::choice: return "one of " + join(choices);
    case ValueType::int_list: return list + "integers" + each;
    case ValueType::real_list: return list + "real numbers" + each;
    case ValueType::string_list: return list + "strings" + (each_doc.empty() ? "" : ", each " + each_doc);
  }
  return "?";
}

std::string KeySpec::expected_with_example() const {
  std::string text = example_text;
  const bool self_explaining = type == ValueType::boolean || type == ValueType::choice;
  if (text.empty() && fallback && !self_explaining) text = format(*fallback);
  return text.empty() ? expected() : expected() + " (e.g. " + text + ")";
}

std::string KeySpec::format(const Value& value) const {
  PIT_CHECK(value.index() == value_index(type), "config key ", name, ": a value of another type");
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return format_real(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          // Choices are plain words; free strings are quoted so that "", "123" or "a: b" read
          // back as the same string.
          return type == ValueType::choice ? v : quote_string(v);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          return format_list(v, [](int64_t x) { return std::to_string(x); });
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          return format_list(v, [](double x) { return format_real(x); });
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          // Always quoted, like free strings: "a=1", "x: y" and "[1]" read back unchanged.
          return format_list(v, [](const std::string& x) { return quote_string(x); });
        }
      },
      value);
}

bool KeySpec::in_range(double x) const {
  if (min && (min->inclusive ? x < min->value : x <= min->value)) return false;
  if (max && (max->inclusive ? x > max->value : x >= max->value)) return false;
  return true;
}

// ---- SectionSpec -------------------------------------------------------------------------------

SectionSpec& SectionSpec::add(std::string key, ValueType type, std::optional<Value> fallback,
                              std::string doc) {
  PIT_CHECK(find(key) == nullptr, "config schema: key ", name_, ".", key, " is declared twice");
  KeySpec spec;
  spec.name = std::move(key);
  spec.type = type;
  spec.fallback = std::move(fallback);
  spec.doc = std::move(doc);
  keys_.push_back(std::move(spec));
  return *this;
}

KeySpec& SectionSpec::last() {
  PIT_CHECK(!keys_.empty(), "config schema: a modifier needs a key before it in section ", name_);
  return keys_.back();
}

SectionSpec& SectionSpec::boolean(std::string key, std::optional<bool> fallback, std::string doc) {
  return add(std::move(key), ValueType::boolean, fallback ? std::optional<Value>(*fallback) : std::nullopt,
             std::move(doc));
}

SectionSpec& SectionSpec::integer(std::string key, std::optional<int64_t> fallback, std::string doc) {
  return add(std::move(key), ValueType::integer, fallback ? std::optional<Value>(*fallback) : std::nullopt,
             std::move(doc));
}

SectionSpec& SectionSpec::real(std::string key, std::optional<double> fallback, std::string doc) {
  return add(std::move(key), ValueType::real, fallback ? std::optional<Value>(*fallback) : std::nullopt,
             std::move(doc));
}

SectionSpec& SectionSpec::string(std::string key, std::optional<std::string> fallback, std::string doc) {
  return add(std::move(key), ValueType::string, fallback ? std::optional<Value>(*fallback) : std::nullopt,
             std::move(doc));
}

SectionSpec& SectionSpec::choice(std::string key, std::vector<std::string> allowed,
                                 std::optional<std::string> fallback, std::string doc) {
  PIT_CHECK(!allowed.empty(), "config schema: ", name_, ".", key, " has no allowed values");
  if (fallback)
    PIT_CHECK(std::find(allowed.begin(), allowed.end(), *fallback) != allowed.end(),
              "config schema: the default of ", name_, ".", key, " is not among its values");
  add(std::move(key), ValueType::choice, fallback ? std::optional<Value>(*fallback) : std::nullopt,
      std::move(doc));
  keys_.back().choices = std::move(allowed);
  return *this;
}

SectionSpec& SectionSpec::int_list(std::string key, std::optional<std::vector<int64_t>> fallback,
                                   std::string doc) {
  return add(std::move(key), ValueType::int_list, fallback ? std::optional<Value>(*fallback) : std::nullopt,
             std::move(doc));
}

SectionSpec& SectionSpec::real_list(std::string key, std::optional<std::vector<double>> fallback,
                                    std::string doc) {
  return add(std::move(key), ValueType::real_list,
             fallback ? std::optional<Value>(*fallback) : std::nullopt, std::move(doc));
}

SectionSpec& SectionSpec::string_list(std::string key, std::optional<std::vector<std::string>> fallback,
                                      std::string doc) {
  return add(std::move(key), ValueType::string_list,
             fallback ? std::optional<Value>(*fallback) : std::nullopt, std::move(doc));
}

namespace {

bool is_numeric(ValueType t) {
  return t == ValueType::integer || t == ValueType::real || t == ValueType::int_list ||
         t == ValueType::real_list;
}

// A default outside its own range is a bug in the schema, caught when the schema is built.
void check_default(const std::string& section, const KeySpec& key) {
  PIT_CHECK(is_numeric(key.type), "config schema: ", section, ".", key.name, " is not numeric");
  if (!key.fallback) return;
  bool ok = true;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
          ok = key.in_range(static_cast<double>(v));
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>> ||
                             std::is_same_v<T, std::vector<double>>) {
          for (const auto x : v) ok = ok && key.in_range(static_cast<double>(x));
        }
      },
      *key.fallback);
  PIT_CHECK(ok, "config schema: the default of ", section, ".", key.name, " is out of its range");
}

}  // namespace

SectionSpec& SectionSpec::at_least(double bound) {
  last().min = Bound{bound, true};
  check_default(name_, last());
  return *this;
}

SectionSpec& SectionSpec::greater_than(double bound) {
  last().min = Bound{bound, false};
  check_default(name_, last());
  return *this;
}

SectionSpec& SectionSpec::at_most(double bound) {
  last().max = Bound{bound, true};
  check_default(name_, last());
  return *this;
}

SectionSpec& SectionSpec::less_than(double bound) {
  last().max = Bound{bound, false};
  check_default(name_, last());
  return *this;
}

SectionSpec& SectionSpec::non_empty() {
  const ValueType t = last().type;
  PIT_CHECK(t == ValueType::int_list || t == ValueType::real_list || t == ValueType::string_list ||
                t == ValueType::string,
            "config schema: ", name_, ".", last().name, " is neither a list nor a string");
  last().non_empty = true;
  return *this;
}

SectionSpec& SectionSpec::each(std::string doc, ElementCheck check) {
  PIT_CHECK(last().type == ValueType::string_list, "config schema: ", name_, ".", last().name,
            " is not a list of strings");
  // The default is not run through the check, here or on load: a check may read the schema
  // that is still being built. Give such a key a default that trivially passes ([]).
  last().each_doc = std::move(doc);
  last().each_check = std::move(check);
  return *this;
}

SectionSpec& SectionSpec::example(std::string text) {
  last().example_text = std::move(text);
  return *this;
}

const KeySpec* SectionSpec::find(std::string_view key) const {
  for (const KeySpec& k : keys_)
    if (k.name == key) return &k;
  return nullptr;
}

std::vector<std::string> SectionSpec::key_names() const {
  std::vector<std::string> names;
  for (const KeySpec& k : keys_) names.push_back(k.name);
  return names;
}

// ---- Schema ------------------------------------------------------------------------------------

SectionSpec& Schema::section(std::string name, std::string doc) {
  PIT_CHECK(find_section(name) == nullptr, "config schema: section ", name, " is declared twice");
  return sections_.emplace_back(std::move(name), std::move(doc));
}

void Schema::cross_check(std::vector<std::string> keys, std::string doc,
                         std::function<std::string(const Values&)> check) {
  PIT_CHECK(!keys.empty(), "config schema: a cross check needs at least one key");
  for (const std::string& key : keys)
    PIT_CHECK(find_key(key) != nullptr, "config schema: cross check on unknown key ", key);
  checks_.push_back(CrossCheck{std::move(keys), std::move(doc), std::move(check)});
}

const SectionSpec* Schema::find_section(std::string_view name) const {
  for (const SectionSpec& s : sections_)
    if (s.name() == name) return &s;
  return nullptr;
}

const KeySpec* Schema::find_key(std::string_view dotted) const {
  const auto dot = dotted.find('.');
  if (dot == std::string_view::npos) return nullptr;
  const SectionSpec* section = find_section(dotted.substr(0, dot));
  return section ? section->find(dotted.substr(dot + 1)) : nullptr;
}

std::vector<std::string> Schema::section_names() const {
  std::vector<std::string> names;
  for (const SectionSpec& s : sections_) names.push_back(s.name());
  return names;
}

}  // namespace pit::train
