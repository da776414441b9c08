#include "trainer/config/loader.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "trainer/config/parse.h"
#include "trainer/config/suggest.h"

namespace pit::train {
namespace {

class Loader {
 public:
  Loader(const Schema& schema, std::string name) : schema_(schema), name_(std::move(name)) {}

  // False when the text is not a mapping of sections at all (a syntax error, a list): then
  // nothing else is worth reporting.
  bool load_document(const std::string& text);
  void apply_override(const Override& override_);
  void fill_defaults();
  void run_cross_checks();
  Values finish(const std::string& title);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string where(const YAML::Mark& mark) const {
    // yaml-cpp counts from 0; editors count lines and columns from 1.
    return name_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  void load_section(const SectionSpec& section, const YAML::Node& body);
  void store(const KeySpec& key, const std::string& dotted, const YAML::Node& node,
             const Locate& locate, const std::string& origin);
  std::string unknown_section(const std::string& name) const;
  std::string unknown_key(const SectionSpec& section, const std::string& name) const;

  const Schema& schema_;
  std::string name_;
  Values values_;
  std::set<std::string, std::less<>> failed_;           // keys whose value had an error
  std::map<std::string, std::string> section_where_;  // where each section was opened
  std::vector<std::string> errors_;
};

// unknown section "optm"; did you mean "optim"? (sections: run, data, ...)
std::string Loader::unknown_section(const std::string& name) const {
  std::string msg = "unknown section \"" + name + "\"";
  if (const std::string near = closest_match(name, schema_.section_names()); !near.empty()) {
    msg += "; did you mean \"" + near + "\"?";
  } else {
    // A key written at the top level instead of inside its section: say where it belongs.
    for (const SectionSpec& s : schema_.sections())
      if (s.find(name)) {
        msg += "; " + name + " is a key of " + s.name() + ": and goes inside that section";
        break;
      }
  }
  return msg + " (sections: " + join(schema_.section_names()) + ")";
}

// optim.lrr: unknown key; did you mean "lr"? (keys of optim: name, lr, ...)
std::string Loader::unknown_key(const SectionSpec& section, const std::string& name) const {
  std::string msg = section.name() + "." + name + ": unknown key";
  if (const std::string near = closest_match(name, section.key_names()); !near.empty()) {
    msg += "; did you mean \"" + near + "\"?";
  } else {
    // The right key in the wrong section.
    for (const SectionSpec& s : schema_.sections())
      if (&s != &section && s.find(name)) {
        msg += "; did you mean " + s.name() + "." + name + "?";
        break;
      }
  }
  return msg + " (keys of " + section.name() + ": " + join(section.key_names()) + ")";
}

// The first line (1-based) whose indentation holds a tab, 0 if none: YAML indents with spaces
// only, and yaml-cpp's message for a tab ("illegal map value") does not say so.
int tab_indented_line(const std::string& text) {
  int line = 1;
  bool indent = true;  // still in the line's leading blanks
  for (const char c : text) {
    if (c == '\n') {
      ++line;
      indent = true;
    } else if (indent && c == '\t') {
      return line;
    } else if (c != ' ') {
      indent = false;
    }
  }
  return 0;
}

bool Loader::load_document(const std::string& text) {
  YAML::Node root;
  try {
    const std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.size() > 1) {
      // The trainer would read the first and drop the rest without a word.
      errors_.push_back(where(documents[1].Mark()) + ": a second YAML document (after a --- line); a config is one "
                        "document: remove the --- line or split the file");
      return false;
    }
    if (!documents.empty()) root = documents[0];
  } catch (const YAML::Exception& e) {
    // A syntax error leaves nothing to validate: report it alone.
    std::string msg = where(e.mark) + ": YAML syntax error: " + e.msg;
    if (const int line = tab_indented_line(text); line > 0)
      msg += " (line " + std::to_string(line) + " is indented with a tab; YAML indents with spaces only)";
    errors_.push_back(msg);
    return false;
  }
  if (root.IsNull()) return true;  // an empty file: every key takes its default
  if (!root.IsMap()) {
    errors_.push_back(where(root.Mark()) + ": the config is " + describe(root) +
                      "; expected a mapping of sections (" + join(schema_.section_names()) + ")");
    return false;
  }
  std::map<std::string, std::string> seen;
  for (const auto& item : root) {
    const std::string name = item.first.Scalar();
    const std::string at = where(item.first.Mark());
    const SectionSpec* section = schema_.find_section(name);
    if (!section) {
      errors_.push_back(at + ": " + unknown_section(name));
      continue;
    }
    if (const auto [it, fresh] = seen.emplace(name, at); !fresh) {
      errors_.push_back(at + ": " + name + ": duplicate section (first at " + it->second + ")");
      continue;
    }
    section_where_[name] = at;
    const YAML::Node& body = item.second;
    if (body.IsNull()) continue;  // "optim:" with every key commented out
    if (!body.IsMap()) {
      errors_.push_back(where(body.Mark()) + ": " + name + ": " + describe(body) +
                        " is not a section; expected a mapping of " + name + "'s keys (" +
                        join(section->key_names()) + ")");
      for (const KeySpec& key : section->keys()) failed_.insert(name + "." + key.name);
      continue;
    }
    load_section(*section, body);
  }
  return true;
}

void Loader::load_section(const SectionSpec& section, const YAML::Node& body) {
  std::map<std::string, std::string> seen;
  const Locate locate = [this](const YAML::Mark& mark) { return where(mark); };
  for (const auto& item : body) {
    const std::string name = item.first.Scalar();
    const std::string at = where(item.first.Mark());
    const KeySpec* key = section.find(name);
    if (!key) {
      errors_.push_back(at + ": " + unknown_key(section, name));
      continue;
    }
    const std::string dotted = section.name() + "." + name;
    // yaml-cpp keeps both entries of a repeated key (and lookups see only the first), so a
    // repeat is found here by walking the pairs.
    if (const auto [it, fresh] = seen.emplace(name, at); !fresh) {
      errors_.push_back(at + ": " + dotted + ": duplicate key (first at " + it->second + ")");
      continue;
    }
    if (item.second.IsNull()) {
      // yaml-cpp gives an empty value no useful mark: point at the key instead.
      errors_.push_back(at + ": " + dotted + ": no value; expected " + key->expected_with_example());
      failed_.insert(dotted);
      continue;
    }
    store(*key, dotted, item.second, locate, where(item.second.Mark()));
  }
}

void Loader::store(const KeySpec& key, const std::string& dotted, const YAML::Node& node,
                   const Locate& locate, const std::string& origin) {
  if (auto value = parse_value(key, dotted, node, locate, errors_)) {
    values_.set(dotted, std::move(*value), origin);
    failed_.erase(dotted);
  } else {
    values_.erase(dotted);
    failed_.insert(dotted);
  }
}

void Loader::apply_override(const Override& override_) {
  const std::string& text = override_.text;
  const std::string& origin = override_.origin;
  const auto eq = text.find('=');
  const std::string path = text.substr(0, eq);
  const auto dot = path.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 == path.size()) {
    // The example in the form the user wrote the override in.
    const std::string example = origin.starts_with("--set ") ? "--set optim.lr=1e-3" : "optim.lr=1e-3";
    std::string msg = located(origin, "expected section.key=value (e.g. " + example + ")");
    // "--set lr=1": a key without its section.
    for (const SectionSpec& s : schema_.sections())
      if (dot == std::string::npos && s.find(path)) {
        msg += "; did you mean " + s.name() + "." + path + "?";
        break;
      }
    errors_.push_back(msg);
    return;
  }
  const SectionSpec* section = schema_.find_section(path.substr(0, dot));
  if (!section) {
    errors_.push_back(located(origin, unknown_section(path.substr(0, dot))));
    return;
  }
  const KeySpec* key = section->find(path.substr(dot + 1));
  if (!key) {
    errors_.push_back(located(origin, unknown_key(*section, path.substr(dot + 1))));
    return;
  }
  // The value reads as YAML, like in a file: 1e-3, true, [512, 512], "a b". An empty value is
  // the empty string (YAML would make it null), so that --set run.out_dir= works.
  const std::string value_text = text.substr(eq + 1);
  YAML::Node node;
  try {
    node = value_text.empty() ? YAML::Node(std::string()) : YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    errors_.push_back(located(origin, path + ": the value is not a YAML scalar or flow list (" + e.msg + ")"));
    values_.erase(path);
    failed_.insert(path);
    return;
  }
  store(*key, path, node, [&origin](const YAML::Mark&) { return origin; }, origin);
}

void Loader::fill_defaults() {
  for (const SectionSpec& section : schema_.sections())
    for (const KeySpec& key : section.keys()) {
      const std::string dotted = section.name() + "." + key.name;
      if (values_.has(dotted) || failed_.count(dotted)) continue;
      if (key.fallback) {
        values_.set(dotted, *key.fallback, "");
        continue;
      }
      const auto at = section_where_.find(section.name());
      const std::string where_text =
          at != section_where_.end() ? at->second : name_ + " (it has no " + section.name() + ": section)";
      errors_.push_back(where_text + ": " + dotted + ": required key is missing; expected " +
                        key.expected_with_example());
      failed_.insert(dotted);
    }
}

void Loader::run_cross_checks() {
  for (const CrossCheck& check : schema_.cross_checks()) {
    bool ready = true;
    for (const std::string& key : check.keys) ready = ready && values_.has(key);
    if (!ready) continue;  // a key of the check already has its own error
    std::string problem;
    try {
      problem = check.check(values_);
    } catch (const MissingValue&) {
      continue;  // the check reads another key that already has an error
    }
    if (problem.empty()) continue;
    // Reported at the first key that was set somewhere; each key is named with its value and,
    // where that differs, with where it was set.
    std::string at;
    for (const std::string& key : check.keys)
      if (at.empty()) at = values_.origin(key);
    if (at.empty()) at = name_;
    std::string parts;
    for (const std::string& key : check.keys) {
      const std::string& origin = values_.origin(key);
      parts += (parts.empty() ? "" : ", ") + key + " = " + schema_.find_key(key)->format(values_.get(key));
      if (origin.empty()) parts += " (default)";
      else if (origin != at) parts += " (" + origin + ")";
    }
    errors_.push_back(at + ": " + parts + ": " + problem);
  }
}

Values Loader::finish(const std::string& title) {
  if (errors_.empty()) return std::move(values_);
  std::string msg = "invalid config " + (title.empty() ? name_ : title) + ": " + std::to_string(errors_.size()) +
                    (errors_.size() == 1 ? " error" : " errors");
  for (const std::string& e : errors_) msg += "\n  " + e;
  // The location that matters is in the config, not in this file, so no PIT_THROW suffix.
  throw Error(msg);
}

}  // namespace

std::vector<Override> command_line_overrides(const std::vector<std::string>& texts) {
  std::vector<Override> out;
  for (const std::string& text : texts) out.push_back(Override{text, "--set " + text});
  return out;
}

Values load_values(const Schema& schema, const std::string& name, const std::string& yaml_text,
                   const std::vector<std::string>& overrides) {
  return load_values_from(schema, name, yaml_text, command_line_overrides(overrides));
}

Values load_values_from(const Schema& schema, const std::string& name, const std::string& yaml_text,
                        const std::vector<Override>& overrides, const std::string& title) {
  Loader loader(schema, name);
  if (!loader.load_document(yaml_text)) return loader.finish(title);
  for (const Override& override_ : overrides) loader.apply_override(override_);
  loader.fill_defaults();
  loader.run_cross_checks();
  return loader.finish(title);
}

std::string read_config_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("config file " + path + " does not exist");
  if (fs::is_directory(path, ec)) throw Error("config file " + path + " is a directory, not a YAML file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("config file " + path + " cannot be opened for reading");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Values load_values_file(const Schema& schema, const std::string& path,
                        const std::vector<std::string>& overrides) {
  return load_values(schema, path, read_config_file(path), overrides);
}

std::vector<std::string> override_problems(const Schema& schema, const std::string& text) {
  // A loader with no document: the override's own errors, with no origin in front of them.
  Loader loader(schema, "<override>");
  loader.apply_override(Override{text, ""});
  return loader.errors();
}

}  // namespace pit::train
