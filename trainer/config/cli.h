#pragma once
// pit-train's command line. It only parses: main() decides what to do and which exit code a
// pit::Error turns into.
//
//   pit-train --config FILE [--set section.key=value ...] [--print-config] [--resume [PATH]]
#include <string>
#include <string_view>
#include <vector>

namespace pit::train {

struct CommandLine {
  bool help = false;                   // --help / -h: print usage_text() and exit
  std::string config_path;             // --config FILE (required unless help)
  std::vector<std::string> overrides;  // each --set, as "section.key=value", in order
  bool print_config = false;           // --print-config: print the resolved config and exit
  bool resume = false;                 // --resume [PATH]
  std::string resume_path;             // "" with resume: the latest checkpoint of the run
};

// argv[0] is the program. Unknown options, missing values and a missing --config are a
// pit::Error that says what was wrong and points to --help. With --help or -h anywhere, only
// `help` is set, whatever else was given: the user asked for help.
CommandLine parse_command_line(int argc, char** argv);

// The --help text: every option, and where the config keys are documented.
std::string usage_text(std::string_view program = "pit-train");

}  // namespace pit::train
