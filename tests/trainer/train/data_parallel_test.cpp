// Data-parallel pit-train on the CPU (issue #8): ctest runs this binary once as one process and
// once under `mpirun -np 2` (oversubscribed). With two ranks, each trains on half of every global
// batch and the gradients are averaged; the losses must equal those of one process with the same
// global batch (up to rounding: the sums run in another order), RigL's masks must agree across
// ranks (else the ranks' parameters would not even keep one shape), and a checkpoint written by
// the ranks must resume in one process.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/comm.h"
#include "tests/trainer/train/rank_runs.h"
#include "tests/trainer/train/resume_from.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/train/trainer.h"

namespace pit::train {
namespace {

namespace fs = std::filesystem;
using test::expect_close;

class DataParallelTest : public test::RankRunTest {};
// Only on two or more ranks (the single-process registration filters these out).
class DataParallelRanksTest : public test::RankRunTest {};

TEST_F(DataParallelTest, LossesEqualOneProcessWithTheSameGlobalBatch) {
  Communicator& comm = world();
  for (const std::string& extra : {std::string(), std::string("sparse: {method: rigl, layers: [\"*/mlp/*\"], unit: 16x1, "
                                                             "sparsity: 0.5, update_every: 4, update_end: 16}\n")}) {
    const TrainResult dp = train(lm(extra.empty() ? "dp" : "dp_rigl", 20, extra), {.out = log_, .comm = &comm});
    EXPECT_EQ(dp.steps_done, 20);
    if (comm.rank() == 0) {
      const auto one_process = make_single_communicator();
      const TrainResult one = train(lm(extra.empty() ? "one" : "one_rigl", 20, extra), {.out = log_, .comm = one_process.get()});
      SCOPED_TRACE(extra.empty() ? "dense" : "RigL");
      test::expect_same_run(dp, one);
    }
    comm.barrier();
  }
}

TEST_F(DataParallelTest, ACheckpointOfTheRanksResumesInOneProcess) {
  Communicator& comm = world();
  const TrainResult dp = train(lm("dp", 20), {.out = log_, .comm = &comm});
  if (comm.rank() == 0) {
    const auto one_process = make_single_communicator();
    const Config c = lm("dp", 20);
    const TrainResult resumed = train(c, {.resume = true, .resume_path = pit::test::older_checkpoint(c.checkpoint_dir(), 10),
                                          .out = log_, .comm = one_process.get()});
    EXPECT_EQ(resumed.steps_done, 20);
    expect_close(resumed.eval_loss, dp.eval_loss, "eval loss after resuming on one process");
  }
  comm.barrier();
}

// A stop asked on the last rank only (what its SIGINT / SIGTERM handler does: request_stop) stops
// every rank after the same step, with rank 0's checkpoint of that step, which resumes to the end.
// The last rank asks again every few milliseconds until its run returns (train() clears the flag
// when it starts), so the run is stopped at some step before its last one, whichever.
TEST_F(DataParallelRanksTest, AStopOnOneRankStopsEveryRankAfterTheSameStep) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  const Config c = lm("stop", 100000);
  std::atomic<bool> done{false};
  std::thread asker;
  if (comm.rank() == comm.size() - 1)
    asker = std::thread([&] {
      while (!done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        request_stop();
      }
    });
  const TrainResult r = train(c, {.out = log_, .comm = &comm});
  done.store(true);
  if (asker.joinable()) asker.join();
  EXPECT_TRUE(r.interrupted);
  EXPECT_LT(r.steps_done, 100000);
  Tensor steps = from_vector(std::vector<int64_t>{r.steps_done, -r.steps_done}, {2});
  comm.all_reduce(steps, ReduceOp::max);
  const std::vector<int64_t> range = steps.to_vector<int64_t>();
  EXPECT_EQ(range[0], -range[1]) << "the ranks stopped after different steps";
  if (comm.rank() == 0) {
    const fs::path saved = fs::path(c.checkpoint_dir()) / checkpoint_name(r.steps_done);
    EXPECT_TRUE(fs::exists(saved)) << saved;
    const auto one_process = make_single_communicator();
    const TrainResult resumed = train(lm("stop", r.steps_done + 5), {.resume = true, .resume_path = saved.string(),
                                                                     .out = log_, .comm = one_process.get()});
    EXPECT_EQ(resumed.steps_done, r.steps_done + 5);
    EXPECT_FALSE(resumed.interrupted);
  }
  comm.barrier();
}

// Rank 0 evaluates and saves alone; the other ranks wait for it without the collective timeout,
// which is for ranks that stopped or died: a final evaluation of a whole validation set that takes
// rank 0 several times the timeout does not fail the run (the other ranks used to time out in the
// broadcast of its result).
TEST_F(DataParallelRanksTest, RankZerosLongEvaluationIsNotATimeout) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  if (comm.rank() == 0) write_tokens("valid.h5", 1200000);  // 75,000 sequences to evaluate
  comm.barrier();
  Config c = lm("long_eval", 12);
  c.run.final_eval_batches = 0;  // the whole validation set
  const double limit = comm.timeout();
  comm.set_timeout(0.3);
  TrainResult r;
  try {
    const auto start = std::chrono::steady_clock::now();
    r = train(c, {.out = log_, .comm = &comm});
    if (comm.rank() == 0) {  // or the test proves nothing
      EXPECT_GT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.2);
    }
  } catch (...) {
    comm.set_timeout(limit);
    throw;
  }
  comm.set_timeout(limit);
  EXPECT_EQ(r.steps_done, 12);
  EXPECT_TRUE(std::isfinite(r.eval_loss));
}

// A checkpoint that fails on rank 0 (which saves alone while the others wait without a timeout)
// fails every rank: the others used to wait in the barrier for ever, and the job with them.
TEST_F(DataParallelRanksTest, RankZerosFailedCheckpointStopsEveryRank) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  const std::string message = error_when_rank0_cannot_save(lm("failed_save", 12));
  const std::string want = comm.rank() == 0 ? kDiskFull : "rank 0 failed in an evaluation or a checkpoint";
  EXPECT_NE(message.find(want), std::string::npos) << message;
  comm.barrier();
}

TEST_F(DataParallelRanksTest, TheGlobalBatchMustSplitOverTheRanks) {
  Communicator& comm = world();
  ASSERT_GT(comm.size(), 1) << "registered to run under mpirun";
  const Config c = config_from_yaml(
      "run: {name: dp, device: cpu, steps: 2, out_dir: " + (dir_ / "odd").string() + "}\n"
      "data: {kind: tokens, train: " + (dir_ / "train.h5").string() + ", valid: " + (dir_ / "valid.h5").string() +
      ", batch_size: " + std::to_string(comm.size() + 1) + ", seq_len: 16}\n"
      "model: {kind: transformer, vocab_size: 16, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64}\n",
      "odd.yaml");
  try {
    train(c, {.out = log_, .comm = &comm});
    ADD_FAILURE() << "an uneven global batch was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be a multiple of the " + std::to_string(comm.size()) + " data-parallel ranks"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace pit::train
