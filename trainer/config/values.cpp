#include "trainer/config/values.h"

#include <algorithm>

namespace pit::train {

void Values::set(std::string key, Value value, std::string origin) {
  entries_.insert_or_assign(std::move(key), Entry{std::move(value), std::move(origin)});
}

void Values::erase(std::string_view key) {
  if (const auto it = entries_.find(key); it != entries_.end()) entries_.erase(it);
}

bool Values::has(std::string_view key) const { return entries_.find(key) != entries_.end(); }

const Values::Entry& Values::entry(std::string_view key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) throw MissingValue("config key " + std::string(key) + " has no valid value");
  return it->second;
}

const Value& Values::get(std::string_view key) const { return entry(key).value; }

const std::string& Values::origin(std::string_view key) const { return entry(key).origin; }

template <typename T>
const T& Values::typed(std::string_view key) const {
  const Value& v = get(key);
  const T* p = std::get_if<T>(&v);
  PIT_CHECK(p != nullptr, "config key ", key, " is read as the wrong type");
  return *p;
}

bool Values::boolean(std::string_view key) const { return typed<bool>(key); }
int64_t Values::integer(std::string_view key) const { return typed<int64_t>(key); }
double Values::real(std::string_view key) const { return typed<double>(key); }
const std::string& Values::string(std::string_view key) const { return typed<std::string>(key); }
const std::vector<int64_t>& Values::int_list(std::string_view key) const {
  return typed<std::vector<int64_t>>(key);
}
const std::vector<double>& Values::real_list(std::string_view key) const {
  return typed<std::vector<double>>(key);
}
const std::vector<std::string>& Values::string_list(std::string_view key) const {
  return typed<std::vector<std::string>>(key);
}

std::string to_yaml(const Schema& schema, const Values& values, bool with_docs) {
  std::string out;
  for (const SectionSpec& section : schema.sections()) {
    std::vector<std::pair<std::string, const KeySpec*>> lines;
    for (const KeySpec& key : section.keys()) {
      const std::string dotted = section.name() + "." + key.name;
      if (values.has(dotted)) lines.emplace_back("  " + key.name + ": " + key.format(values.get(dotted)), &key);
    }
    if (lines.empty()) continue;
    out += section.name() + ":";
    out += with_docs && !section.doc().empty() ? "  # " + section.doc() + "\n" : "\n";
    // Comments line up, except after a line too long to line up with (a long list or path):
    // it would push every comment of its section to the right.
    constexpr size_t kAlignUpTo = 40;
    size_t width = 0;
    for (const auto& line : lines)
      if (line.first.size() <= kAlignUpTo) width = std::max(width, line.first.size());
    for (const auto& [line, key] : lines) {
      out += line;
      if (with_docs && !key->doc.empty())
        out += std::string(line.size() < width ? width - line.size() + 2 : 2, ' ') + "# " + key->doc;
      out += "\n";
    }
  }
  return out;
}

}  // namespace pit::train
