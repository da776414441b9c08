// pit-train: trains a model from one YAML config. See docs/CONFIG.md and `pit-train --help`.
#include <cstdio>
#include <exception>

#include "core/comm.h"
#include "core/error.h"
#include "trainer/config/cli.h"
#include "trainer/config/config.h"
#include "trainer/train/setup.h"
#include "trainer/train/trainer.h"

int main(int argc, char** argv) {
  using namespace pit::train;
  try {
    const CommandLine cl = parse_command_line(argc, argv);
    if (cl.help) {
      std::fputs(usage_text().c_str(), stdout);
      return 0;
    }
    // One config describes the GPU run and the CPU run: on the CPU its run.cpu_overrides apply.
    std::string note;
    const Config config = config_to_run(cl.config_path, cl.overrides,
                                        [](const Config& c) { return resolve_device(c).is_cuda(); }, &note);
    if (!note.empty()) std::fprintf(stderr, "pit-train: %s\n", note.c_str());
    if (cl.print_config) {
      std::fputs(print_config(config).c_str(), stdout);
      return 0;
    }
    const TrainResult r = train(config, {.resume = cl.resume, .resume_path = cl.resume_path});
    return r.interrupted ? 130 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pit-train: error: %s\n", pit::user_message(e).c_str());
    std::fflush(stderr);
    pit::abort_launch(1);  // several processes: end them all, none waits for this one for ever
    return 1;
  }
}
