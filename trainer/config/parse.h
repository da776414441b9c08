#pragma once
// Turns one YAML node into a key's Value, or into error messages that say where, what was
// given and what is allowed. Internal to the loader; the one place that knows YAML scalar forms.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "trainer/config/schema.h"

namespace pit::train {

// Where a node is, as the prefix of an error: "file.yaml:3:7" from a mark, or "--set k=v" for
// an override (whose marks point into the override, not into a file); "" when an override is
// checked on its own and its caller names the place.
using Locate = std::function<std::string(const YAML::Mark&)>;

// "where: message", or the message alone when `where` is "".
std::string located(const std::string& where, const std::string& message);

// `dotted` names the key in messages ("optim.lr"). Every problem found is appended to `errors`
// (one per bad list element); the result is empty when there was any.
std::optional<Value> parse_value(const KeySpec& key, const std::string& dotted,
                                 const YAML::Node& node, const Locate& locate,
                                 std::vector<std::string>& errors);

// How a node reads in a message: "abc" (quoted) for a scalar, "a list", "a mapping", "no value".
std::string describe(const YAML::Node& node);

}  // namespace pit::train
