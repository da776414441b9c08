// markdown(schema): the reference tables of docs/CONFIG.md, one per section.
#include <cctype>
#include <string>

#include "trainer/config/schema.h"

namespace pit::train {
namespace {

std::string code(const std::string& s) { return "`" + s + "`"; }

std::string allowed(const KeySpec& key) {
  if (key.type == ValueType::choice) {
    std::string out;
    for (const std::string& c : key.choices) out += (out.empty() ? "" : ", ") + code(c);
    return out;
  }
  const std::string bounds = key.range();
  const bool list = key.type == ValueType::int_list || key.type == ValueType::real_list;
  std::string out = list && !bounds.empty() ? "each " + bounds : bounds;
  if (!key.each_doc.empty()) out = "each " + key.each_doc;
  if (key.non_empty) out += (out.empty() ? "" : ", ") + std::string("not empty");
  return out;
}

// A table cell may not hold '|'.
std::string cell(std::string s) {
  for (size_t at = s.find('|'); at != std::string::npos; at = s.find('|', at + 2)) s.replace(at, 1, "\\|");
  return s;
}

// Prose: "runs/<name>" would read as an HTML tag and vanish, so a '<' before a letter is
// escaped ("a < b" is safe as it is).
std::string prose(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i)
    out += s[i] == '<' && i + 1 < s.size() && std::isalpha(static_cast<unsigned char>(s[i + 1]))
               ? std::string("&lt;")
               : std::string(1, s[i]);
  return cell(out);
}

// "the optimizer" -> "The optimizer." for a section's opening line.
std::string sentence(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s + ".";
}

}  // namespace

std::string markdown(const Schema& schema) {
  std::string out;
  for (const SectionSpec& section : schema.sections()) {
    out += "## " + section.name() + "\n\n";
    if (!section.doc().empty()) out += prose(sentence(section.doc())) + "\n\n";
    out += "| key | type | default | allowed | description |\n";
    out += "|-----|------|---------|---------|-------------|\n";
    for (const KeySpec& key : section.keys()) {
      const std::string fallback = key.fallback ? code(key.format(*key.fallback)) : "**required**";
      out += "| " + code(section.name() + "." + key.name) + " | " + std::string(type_name(key.type)) +
             " | " + cell(fallback) + " | " + cell(allowed(key)) + " | " + prose(key.doc) + " |\n";
    }
    out += "\n";
  }
  if (!schema.cross_checks().empty()) {
    out += "## Checks across keys\n\n";
    out += "After each key is valid on its own:\n\n";
    for (const CrossCheck& check : schema.cross_checks()) {
      std::string keys;
      for (const std::string& k : check.keys) keys += (keys.empty() ? "" : ", ") + code(k);
      out += "- " + prose(check.doc) + " (" + keys + ")\n";
    }
    out += "\n";
  }
  return out;
}

}  // namespace pit::train
