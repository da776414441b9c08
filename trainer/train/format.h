#pragma once
// Human-readable numbers for pit-train's progress line: durations, rates, byte counts.
#include <cstdint>
#include <string>

namespace pit::train {

std::string format_duration(double seconds);  // "42s", "3m05s", "2h07m", "1d04h"
std::string format_rate(double per_second);   // "950", "12.3k", "1.25M"
std::string format_bytes(double bytes);       // "512 B", "1.5 MiB", "12.0 GiB"

}  // namespace pit::train
