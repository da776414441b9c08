// pit-train: trains a model from one YAML config. See docs/CONFIG.md and `pit-train --help`.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

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
    // Printing needs no device: run.device cuda prints the GPU run, even where no GPU is visible.
    std::string note;
    const Config config = config_to_run(cl.config_path, cl.overrides, [&](const Config& c) {
      if (cl.print_config && c.run.device == DeviceChoice::cuda) return true;
      return resolve_device(c).is_cuda();
    }, &note);
    for (size_t at = 0; at < note.size();) {  // one line each
      const size_t end = std::min(note.find('\n', at), note.size());
      std::fprintf(stderr, "pit-train: %s\n", note.substr(at, end - at).c_str());
      at = end + 1;
    }
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
