#pragma once
// RunState: what a checkpoint holds for pit-train and how it goes back into a run, so that a
// resumed run continues exactly (same losses, same device): the model's parameters and buffers,
// the optimizer state, the loss scaler, the training data position, the RNG counter of the
// default generator (dropout), the step and the resolved config.
#include <cstdint>
#include <optional>
#include <string>

#include "trainer/config/config.h"
#include "trainer/data/loader.h"
#include "trainer/nn/module.h"
#include "trainer/optim/loss_scaler.h"
#include "trainer/optim/optimizer.h"
#include "trainer/state.h"

namespace pit::train {

struct RunParts {
  nn::Module& model;
  optim::Optimizer& optimizer;
  std::optional<optim::LossScaler>& scaler;
  data::Loader& train_data;
};

// The checkpoint of a run after `step` steps. With expert parallelism every rank calls it: the
// experts' shards are gathered whole (trainer/train/shards.h).
StateDict collect_run_state(int64_t step, const Config& config, const RunParts& parts);

// Restores `state` (loaded from `path`, named in errors) into the parts and returns its step.
// The checkpoint must come from the same model and data settings as `config`; the error names
// the keys that differ. Sharded parameters take this rank's rows of the saved whole.
int64_t restore_run_state(const StateDict& state, const std::string& path, const Config& config,
                          const RunParts& parts);

}  // namespace pit::train
