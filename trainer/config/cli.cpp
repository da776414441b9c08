#include "trainer/config/cli.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "trainer/config/suggest.h"

namespace pit::train {
namespace {

const std::vector<std::string> kOptions = {"--config", "--set", "--print-config", "--resume", "--help"};

[[noreturn]] void fail(const std::string& problem) {
  throw Error(problem + " (pit-train --help lists the options)");
}

class Parser {
 public:
  Parser(int argc, char** argv) : args_(argv + std::min(argc, 1), argv + argc) {}

  CommandLine parse() {
    // Help wins over everything else on the line, mistakes included: the user asked for help.
    for (const std::string& arg : args_)
      if (arg == "--help" || arg == "-h") {
        out_.help = true;
        return out_;
      }
    while (i_ < args_.size()) {
      const std::string arg = args_[i_++];
      const auto eq = arg.find('=');
      const std::string name = arg.starts_with("--") ? arg.substr(0, eq) : arg;
      // "--set=k=v": the text after the first '=' is the value, itself holding a '='.
      const std::optional<std::string> inline_value =
          arg.starts_with("--") && eq != std::string::npos ? std::optional(arg.substr(eq + 1)) : std::nullopt;
      if (name == "--config") {
        if (!out_.config_path.empty()) fail("--config is given twice");
        out_.config_path = value(name, "FILE", inline_value);
      } else if (name == "--set") {
        const std::string set = value(name, "section.key=value", inline_value);
        const auto at = set.find('=');
        if (at == std::string::npos || at == 0)
          fail("--set needs section.key=value, got \"" + set + "\" (e.g. --set optim.lr=1e-3)");
        out_.overrides.push_back(set);
      } else if (name == "--print-config") {
        if (inline_value) fail("--print-config takes no value");
        out_.print_config = true;
      } else if (name == "--resume") {
        if (out_.resume) fail("--resume is given twice");
        out_.resume = true;
        if (inline_value) {
          if (inline_value->empty()) fail("--resume= needs a PATH; write --resume alone for the latest checkpoint");
          out_.resume_path = *inline_value;
        } else if (i_ < args_.size() && !args_[i_].starts_with("-")) {
          out_.resume_path = args_[i_++];  // the PATH is optional: take the next word unless an option
        }
      } else if (name == "--help") {  // --help=VALUE: plain --help returned above
        fail("--help takes no value");
      } else if (arg.starts_with("-")) {
        std::string msg = "unknown option " + name;
        if (const std::string near = closest_match(name, kOptions); !near.empty())
          msg += "; did you mean " + near + "?";
        fail(msg);
      } else {
        std::string msg = "unexpected argument \"" + arg + "\"";
        if (arg.ends_with(".yaml") || arg.ends_with(".yml")) msg += "; did you mean --config " + arg + "?";
        fail(msg);
      }
    }
    if (out_.config_path.empty()) fail("--config FILE is required");
    return out_;
  }

 private:
  // The value of an option that needs one: "--opt=VALUE" or "--opt VALUE".
  std::string value(const std::string& name, const std::string& what,
                    const std::optional<std::string>& inline_value) {
    if (inline_value) {
      if (inline_value->empty()) fail(name + "= needs a " + what);
      return *inline_value;
    }
    if (i_ >= args_.size()) fail(name + " needs a " + what);
    // An option in the value's place means the value was forgotten, not that it starts with '-'.
    if (args_[i_].starts_with("--")) fail(name + " needs a " + what + ", got the option " + args_[i_]);
    return args_[i_++];
  }

  std::vector<std::string> args_;
  size_t i_ = 0;
  CommandLine out_;
};

}  // namespace

CommandLine parse_command_line(int argc, char** argv) { return Parser(argc, argv).parse(); }

std::string usage_text(std::string_view program) {
  const std::string p(program);
  return "usage: " + p + " --config FILE [--set section.key=value ...] [--print-config] [--resume [PATH]]\n"
         "\n"
         "Trains the model that a YAML config describes (on CUDA when a GPU is present and run.device\n"
         "allows it, else on the CPU, where the config's run.cpu_overrides apply before --set). Every\n"
         "section and key of the config, with types, defaults and allowed values, is in docs/CONFIG.md.\n"
         "\n"
         "options:\n"
         "  --config FILE            the YAML config (required)\n"
         "  --set section.key=VALUE  override one key of the config; VALUE is YAML, e.g.\n"
         "                           --set optim.lr=1e-3, --set model.hidden=[512,512];\n"
         "                           repeatable, the last one of a key wins\n"
         "  --print-config           print the resolved config (every key, with its doc) and exit\n"
         "  --resume [PATH]          resume from the checkpoint PATH; without PATH, from the latest\n"
         "                           checkpoint in the run's checkpoint folder\n"
         "  -h, --help               print this help and exit\n"
         "\n"
         "several processes: launch with mpirun -np N or srun, one process per GPU (docs/DISTRIBUTED.md);\n"
         "data parallel over every rank, and --set parallel.expert=G shards each MoE layer's experts\n"
         "over groups of G ranks. Environment:\n"
         "  PIT_COMM=mpi             move CUDA tensors through MPI instead of NCCL (nccl: the default\n"
         "                           where pit has NCCL)\n"
         "  PIT_COMM_TIMEOUT=S       seconds a rank waits in a collective before it fails (600)\n"
         "  PIT_NUM_THREADS=N        CPU threads when run.threads is 0 (default: the CPUs this process\n"
         "                           may use, at most the node's CPUs / the ranks on the node)\n"
         "  PIT_TABLE_DIR=DIR        where the planner looks for its per-GPU cost tables (default: the\n"
         "                           source tree's ops/pit/tables)\n";
}

}  // namespace pit::train
