#pragma once
// The config schema engine: sections of typed keys, each with a default (or required), a range,
// allowed values and a one-line doc, plus checks that span several keys. It is written once;
// a config (trainer/config/train_schema.cpp for pit-train) is declared with it in a few lines
// per section:
//
//   schema.section("optim", "the optimizer")
//       .choice("name", {"adamw", "sgd"}, "adamw", "which optimizer")
//       .real("lr", 3e-4, "peak learning rate").greater_than(0)
//       .integer("steps", required, "optimizer steps").at_least(1).example("1000");
//   schema.section("run", "the run as a whole")
//       .string_list("tags", std::vector<std::string>{}, "labels of the run")
//       .each("a word", [](const std::string& tag) { return tag.empty() ? "the tag is empty" : ""; });
//
// Loading YAML against a schema is trainer/config/loader.h; the validated values are Values.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pit::train {

enum class ValueType { boolean, integer, real, string, choice, int_list, real_list, string_list };

// One key's value. A choice is held as its string; lists as vectors.
using Value = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                           std::vector<std::string>>;

// A check of one element of a string list: "" when it is fine, else what is wrong with it
// (a whole sentence of its own: the message shows it after the element, without "expected").
using ElementCheck = std::function<std::string(const std::string& element)>;

// Passed as a key's default: the key has none and must be given.
inline constexpr std::nullopt_t required = std::nullopt;

struct Bound {
  double value = 0;
  bool inclusive = true;
};

struct KeySpec {
  std::string name;
  ValueType type = ValueType::string;
  std::string doc;
  std::optional<Value> fallback;   // the default; none: the key is required
  std::optional<Bound> min, max;   // numbers, and each element of a list
  std::vector<std::string> choices;  // a choice's allowed values, in the order docs list them
  bool non_empty = false;          // lists: at least one element; strings: not ""
  std::string example_text;        // for errors; the default when empty
  std::string each_doc;            // string lists: what each element is, e.g. "section.key=value"
  ElementCheck each_check;         // string lists: run on every element; may be empty

  bool is_required() const { return !fallback.has_value(); }
  // What a valid value looks like: "an integer >= 1", "a real number >= 0 and < 1",
  // "one of auto, cpu, cuda", "a list of integers, each >= 1", "a list of strings, each
  // section.key=value".
  std::string expected() const;
  // expected() plus " (e.g. 3e-4)" where an example helps.
  std::string expected_with_example() const;
  // The value as YAML text: strings double-quoted (in lists too), reals always with '.' or an
  // exponent (so they read back as reals) and in the shortest form that reads back exactly.
  std::string format(const Value& value) const;
  // min and max as text: ">= 0 and < 1", "> 0", or "" without bounds.
  std::string range() const;
  // Whether a number (or a list element) lies within min and max.
  bool in_range(double x) const;
};

// A section of keys. The builder methods add a key; the modifiers after them (at_least, ...)
// refine the key added last.
class SectionSpec {
 public:
  SectionSpec(std::string name, std::string doc) : name_(std::move(name)), doc_(std::move(doc)) {}

  SectionSpec& boolean(std::string name, std::optional<bool> fallback, std::string doc);
  SectionSpec& integer(std::string name, std::optional<int64_t> fallback, std::string doc);
  SectionSpec& real(std::string name, std::optional<double> fallback, std::string doc);
  SectionSpec& string(std::string name, std::optional<std::string> fallback, std::string doc);
  SectionSpec& choice(std::string name, std::vector<std::string> allowed,
                      std::optional<std::string> fallback, std::string doc);
  SectionSpec& int_list(std::string name, std::optional<std::vector<int64_t>> fallback,
                        std::string doc);
  SectionSpec& real_list(std::string name, std::optional<std::vector<double>> fallback,
                         std::string doc);
  SectionSpec& string_list(std::string name, std::optional<std::vector<std::string>> fallback,
                           std::string doc);

  SectionSpec& at_least(double bound);      // >= bound
  SectionSpec& greater_than(double bound);  // >  bound
  SectionSpec& at_most(double bound);       // <= bound
  SectionSpec& less_than(double bound);     // <  bound
  SectionSpec& non_empty();                 // lists and strings
  // String lists: `doc` says what each element is (docs, errors); `check` is run on each.
  SectionSpec& each(std::string doc, ElementCheck check = {});
  SectionSpec& example(std::string text);   // shown in errors, e.g. for required keys

  const std::string& name() const { return name_; }
  const std::string& doc() const { return doc_; }
  const std::vector<KeySpec>& keys() const { return keys_; }
  const KeySpec* find(std::string_view key) const;
  std::vector<std::string> key_names() const;

 private:
  SectionSpec& add(std::string name, ValueType type, std::optional<Value> fallback, std::string doc);
  KeySpec& last();

  std::string name_, doc_;
  std::vector<KeySpec> keys_;
};

class Values;

// A rule over several keys, run after every key is valid on its own. `keys` are the keys the
// rule is about (errors name each with its value and where it was set; the first is the one
// reported); `check` returns "" when the config passes and else what is wrong.
struct CrossCheck {
  std::vector<std::string> keys;  // dotted: "model.d_model"
  std::string doc;                // for docs/CONFIG.md
  std::function<std::string(const Values&)> check;
};

class Schema {
 public:
  // Adds a section (sections keep the order they are added in: docs and resolved YAML use it).
  SectionSpec& section(std::string name, std::string doc);
  void cross_check(std::vector<std::string> keys, std::string doc,
                   std::function<std::string(const Values&)> check);

  const std::deque<SectionSpec>& sections() const { return sections_; }
  const std::vector<CrossCheck>& cross_checks() const { return checks_; }
  const SectionSpec* find_section(std::string_view name) const;
  const KeySpec* find_key(std::string_view dotted) const;  // "optim.lr"
  std::vector<std::string> section_names() const;

 private:
  std::deque<SectionSpec> sections_;  // a deque: adding a section keeps references to the others
  std::vector<CrossCheck> checks_;
};

// The index in Value that holds a key of this type.
size_t value_index(ValueType type);

// "boolean", "integer", "real", ... for docs.
std::string_view type_name(ValueType type);

// A real as the shortest text that reads back to the same double: 0.0003 -> "3e-4".
std::string format_real(double value);

// The Markdown reference of every section and key (docs/CONFIG.md is generated from it).
std::string markdown(const Schema& schema);

}  // namespace pit::train
