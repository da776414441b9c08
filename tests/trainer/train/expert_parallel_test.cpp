// Expert-parallel pit-train on the CPU (issue #8): ctest runs this binary as one process (the
// checks that need no second rank) and under `mpirun -np 2` (oversubscribed). With two ranks each
// MoE layer's experts are sharded over both (parallel.expert: 2) on top of data parallelism: the
// losses must equal one process with the same global batch, a checkpoint must hold the experts
// whole, and it must resume on one rank; one process's checkpoint must resume on two.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/comm.h"
#include "tests/core/expect_error.h"
#include "tests/trainer/train/rank_runs.h"
#include "tests/trainer/train/resume_from.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/train/trainer.h"

namespace pit::train {
namespace {

namespace fs = std::filesystem;
using test::expect_close;

class ExpertParallelTest : public test::RankRunTest {
 protected:
  // The small LM with an MoE layer of 4 experts, top-2; no load-balancing loss (it is computed
  // per rank's tokens, as Switch does, so it differs from one process's), a z-loss (per token)
  // and gradient clipping (its norm spans the experts of every rank). `expert`: parallel.expert.
  Config moe(const std::string& run, int64_t steps, int64_t expert) const {
    return lm(run, steps, "parallel: {expert: " + std::to_string(expert) + "}\n",
              ", experts: 4, top_k: 2, aux_loss_coef: 0, z_loss_coef: 1.0e-3", ", grad_clip: 0.5");
  }
};
// Only on two or more ranks (the single-process registration filters these out).
class ExpertParallelRanksTest : public ExpertParallelTest {};

// The value of `key` in the last train record of a run's metrics file (-1 when missing).
double last_train_metric(const Config& c, const std::string& key) {
  std::ifstream in(c.metrics_file());
  std::string line, last;
  while (std::getline(in, line))
    if (line.find("\"split\": \"train\"") != std::string::npos) last = line;
  const size_t at = last.find("\"" + key + "\": ");
  return at == std::string::npos ? -1.0 : std::stod(last.substr(at + key.size() + 4));
}

TEST_F(ExpertParallelTest, ExpertGroupsMustDivideTheRanks) {
  Communicator& comm = world();
  const int64_t ep = comm.size() + 1;  // 2 on one rank, 3 on two: never a divisor
  const Config c = lm("odd", 4, "parallel: {expert: " + std::to_string(ep) + "}\n", ", experts: 6");
  pit::test::expect_error_contains([&] { train(c, {.out = log_, .comm = &comm}); },
                              "parallel.expert is " + std::to_string(ep) + " but the run has " +
                                  std::to_string(comm.size()) + " rank(s)");
}

TEST_F(ExpertParallelTest, TheExpertsMustShardEvenly) {
  pit::test::expect_error_contains([&] { lm("odd", 2, "parallel: {expert: 3}\n", ", experts: 4"); },
                              "model.experts (4) must be a multiple of parallel.expert (3)");
  pit::test::expect_error_contains([&] { lm("odd", 2, "parallel: {expert: 2}\n"); }, "the model has none");
}

TEST_F(ExpertParallelRanksTest, LossesEqualOneProcessWithTheSameGlobalBatch) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  const TrainResult ep = train(moe("ep", 20, comm.size()), {.out = log_, .comm = &comm});
  EXPECT_EQ(ep.steps_done, 20);
  if (comm.rank() == 0) {
    const auto one_process = make_single_communicator();
    const TrainResult one = train(moe("one", 20, 1), {.out = log_, .comm = one_process.get()});
    test::expect_same_run(ep, one);
    // The MoE metrics describe the global batch: the same tokens per expert as one process.
    for (const char* key : {"tokens_per_expert_min", "tokens_per_expert_max"}) {
      const double want = last_train_metric(moe("one", 20, 1), key);
      EXPECT_GT(want, 0) << key;
      EXPECT_EQ(last_train_metric(moe("ep", 20, 1), key), want) << key;
    }
    // The time in collectives is measured per step, all_to_all (the experts' exchanges) included.
    EXPECT_GT(last_train_metric(moe("ep", 20, 1), "comm_ms/all_to_all"), 0.0);
    EXPECT_GE(last_train_metric(moe("ep", 20, 1), "comm_ms"), last_train_metric(moe("ep", 20, 1), "comm_ms/all_to_all"));
  }
  comm.barrier();
}

TEST_F(ExpertParallelRanksTest, CheckpointsHoldEveryExpertAndResumeOnAnotherNumberOfRanks) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  // Saved on every rank, resumed in one process.
  const TrainResult ep = train(moe("ep", 20, comm.size()), {.out = log_, .comm = &comm});
  if (comm.rank() == 0) {
    const fs::path saved = pit::test::older_checkpoint(moe("ep", 20, 1).checkpoint_dir(), 10);
    const StateDict s = load_checkpoint(saved);
    for (const char* key : {"model/blocks/0/moe/w1", "optim/blocks/0/moe/w1/exp_avg", "optim/blocks/0/moe/w2/exp_avg_sq"})
      EXPECT_EQ(s.tensors.at(key).size(0), 4) << key << ": every expert, by global index";
    const auto one_process = make_single_communicator();
    const TrainResult resumed =
        train(moe("ep", 20, 1), {.resume = true, .resume_path = saved.string(), .out = log_, .comm = one_process.get()});
    EXPECT_EQ(resumed.steps_done, 20);
    expect_close(resumed.eval_loss, ep.eval_loss, "eval loss after resuming on one process");
  }
  comm.barrier();

  // Saved by one process, resumed on every rank.
  TrainResult one;
  if (comm.rank() == 0) {
    const auto one_process = make_single_communicator();
    one = train(moe("one", 20, 1), {.out = log_, .comm = one_process.get()});
  }
  comm.barrier();
  const Config c = moe("one", 20, comm.size());
  if (comm.rank() == 0) (void)pit::test::older_checkpoint(c.checkpoint_dir(), 10);
  comm.barrier();
  const TrainResult resumed = train(c, {.resume = true, .resume_path = (fs::path(c.checkpoint_dir()) / checkpoint_name(10)).string(),
                                        .out = log_, .comm = &comm});
  EXPECT_EQ(resumed.steps_done, 20);
  if (comm.rank() == 0) expect_close(resumed.eval_loss, one.eval_loss, "eval loss after resuming on every rank");
  comm.barrier();
}

// With sharded experts every rank saves together and rank 0 writes the file alone. When that
// write fails, every rank stops with an error at once (not at the next step's collective timeout).
TEST_F(ExpertParallelRanksTest, RankZerosFailedCheckpointStopsEveryRank) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  const std::string message = error_when_rank0_cannot_save(moe("failed_save", 12, comm.size()));
  const std::string want = comm.rank() == 0 ? kDiskFull : "a rank failed in an evaluation or a checkpoint";
  EXPECT_NE(message.find(want), std::string::npos) << message;
  comm.barrier();
}

}  // namespace
}  // namespace pit::train
