#pragma once
// quote_string: `s` as a double-quoted string literal that JSON and YAML both read back as `s`
// (", \ and control characters escaped; \u00XX for the rare ones). Used by the metrics file
// (JSON lines) and by --print-config (YAML).
#include <string>
#include <string_view>

namespace pit::train {

std::string quote_string(std::string_view s);

}  // namespace pit::train
