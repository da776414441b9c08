#pragma once
// Loads a YAML config against a Schema: reads the file, applies `--set section.key=value`
// overrides, fills defaults, validates every key and then the schema's cross checks. Every
// problem is collected; one pit::Error lists them all, each naming file:line:col (or the
// override), the dotted key, the value and what is allowed, so a user fixes everything at once.
#include <string>
#include <vector>

#include "trainer/config/schema.h"
#include "trainer/config/values.h"

namespace pit::train {

// One "section.key=value" override and how messages name where it came from.
struct Override {
  std::string text;    // "optim.lr=1e-3"
  std::string origin;  // "--set optim.lr=1e-3", "run.cpu_overrides[0] \"optim.lr=1e-3\""
};

// Overrides from the command line: each named "--set <text>".
std::vector<Override> command_line_overrides(const std::vector<std::string>& texts);

// `name` is how messages name the text (a file path, or e.g. "<checkpoint>"). The overrides
// apply in order, after the text: the last one of a key wins.
Values load_values(const Schema& schema, const std::string& name, const std::string& yaml_text,
                   const std::vector<std::string>& overrides);

// The same with overrides of any origin. `title` names the config in the first line of an
// error ("invalid config <title>: 2 errors"); "" means `name`.
Values load_values_from(const Schema& schema, const std::string& name, const std::string& yaml_text,
                        const std::vector<Override>& overrides, const std::string& title = "");

// Reads `path` first; a missing or unreadable file is a pit::Error naming it.
Values load_values_file(const Schema& schema, const std::string& path,
                        const std::vector<std::string>& overrides);

// The text of a config file; a missing or unreadable file is a pit::Error naming it.
std::string read_config_file(const std::string& path);

// What load_values would report about one override, checked on its own: a malformed text, an
// unknown section or key, a value that is not valid for its key. Each problem starts at the
// key ("optim.lr: \"abc\" is not a real number; expected ..."), for the caller to say where
// the override came from. Empty when the override is fine.
std::vector<std::string> override_problems(const Schema& schema, const std::string& text);

}  // namespace pit::train
