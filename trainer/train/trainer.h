#pragma once
// Trainer: pit-train's loop. It builds the run from a Config (trainer/train/setup.h), optionally
// resumes it from a checkpoint, then trains: a progress line every run.log_every steps (loss,
// learning rate, throughput, step time, memory, ETA), metrics as JSON lines, evaluation every
// run.eval_every steps and at the end, checkpoints every checkpoint.every steps and at the end.
// SIGINT / SIGTERM stop it after the current step with a checkpoint.
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/comm.h"
#include "trainer/config/config.h"

namespace pit::train {

struct TrainOptions {
  bool resume = false;
  std::string resume_path = {};  // "" with resume: the latest checkpoint of the run
  std::FILE* out = stdout;  // progress and messages (rank 0's; the other ranks print nothing)
  // Data parallelism: the ranks of `comm` train one model, each on its share of every batch
  // (data.batch_size is the global batch), gradients averaged before each step. null: world()
  // (MPI under mpirun / srun, else one process).
  Communicator* comm = nullptr;
};

struct TrainResult {
  int64_t steps_done = 0;      // the step count reached (== run.steps unless interrupted)
  bool interrupted = false;
  double last_train_loss = 0;  // mean over the last logging window
  double eval_loss = -1;       // the final evaluation (-1: none)
  double eval_accuracy = -1;   // classifiers
  std::string checkpoint;      // the last checkpoint written
};

TrainResult train(const Config& config, const TrainOptions& options = {});

// Stops a running train() after its current step (what the SIGINT handler calls).
void request_stop();

}  // namespace pit::train
