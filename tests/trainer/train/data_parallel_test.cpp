// Data-parallel pit-train on the CPU (issue #8): ctest runs this binary once as one process and
// once under `mpirun -np 2` (oversubscribed). With two ranks, each trains on half of every global
// batch and the gradients are averaged; the losses must equal those of one process with the same
// global batch (up to rounding: the sums run in another order), RigL's masks must agree across
// ranks (else the ranks' parameters would not even keep one shape), and a checkpoint written by
// the ranks must resume in one process.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/comm.h"
#include "core/tensor.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/data/formats.h"
#include "trainer/train/trainer.h"

namespace pit::train {
namespace {

namespace fs = std::filesystem;

class DataParallelTest : public ::testing::Test {
 protected:
  // One folder for all ranks, named by rank 0's pid; rank 0 writes the data files into it.
  void SetUp() override {
    Communicator& comm = world();
    Tensor id = from_vector(std::vector<int64_t>{static_cast<int64_t>(::getpid())}, {1});
    comm.broadcast(id, 0);
    dir_ = fs::temp_directory_path() / ("pit_dp_test_" + std::to_string(id.to_vector<int64_t>()[0]) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    if (comm.rank() == 0) {
      fs::remove_all(dir_);
      fs::create_directories(dir_);
      write_tokens("train.h5", 3000);
      write_tokens("valid.h5", 600);
    }
    comm.barrier();
    log_ = std::tmpfile();
  }
  void TearDown() override {
    std::fclose(log_);
    world().barrier();
    if (world().rank() == 0) fs::remove_all(dir_);
  }

  void write_tokens(const std::string& name, int64_t n) {
    Tensor tokens = Tensor::empty({n}, DType::u8);
    for (int64_t i = 0; i < n; ++i) tokens.data<uint8_t>()[i] = static_cast<uint8_t>((i * 3 + i / 7) % 16);
    data::write_token_file((dir_ / name).string(), tokens, 16);
  }

  // A small LM without dropout (each rank draws the same dropout masks for different rows, which
  // one process cannot reproduce), global batch 4.
  Config lm(const std::string& run, int64_t steps, const std::string& extra = "") const {
    const std::string yaml =
        "run: {name: dp, steps: " + std::to_string(steps) + ", log_every: 5, eval_every: 0, out_dir: " +
        (dir_ / run).string() + "}\n"
        "data: {kind: tokens, train: " + (dir_ / "train.h5").string() + ", valid: " + (dir_ / "valid.h5").string() +
        ", batch_size: 4, seq_len: 16}\n"
        "model: {kind: transformer, vocab_size: 16, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, dropout: 0}\n"
        "optim: {lr: 1.0e-2}\nschedule: {warmup_steps: 2}\ncheckpoint: {every: 10, keep: 3}\n" + extra;
    return config_from_yaml(yaml, "dp.yaml");
  }

  fs::path dir_;
  std::FILE* log_ = nullptr;
};

void expect_close(double got, double want, const char* what) {
  EXPECT_NEAR(got, want, 1e-4 * std::abs(want)) << what;
}

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
      expect_close(dp.last_train_loss, one.last_train_loss, "train loss");
      expect_close(dp.eval_loss, one.eval_loss, "eval loss");
      EXPECT_LT(dp.eval_loss, 2.0);  // it learned (ln 16 = 2.77 at the start)
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
    const TrainResult resumed = train(c, {.resume = true, .resume_path = (fs::path(c.checkpoint_dir()) / checkpoint_name(10)).string(),
                                          .out = log_, .comm = one_process.get()});
    EXPECT_EQ(resumed.steps_done, 20);
    expect_close(resumed.eval_loss, dp.eval_loss, "eval loss after resuming on one process");
  }
  comm.barrier();
}

TEST_F(DataParallelTest, TheGlobalBatchMustSplitOverTheRanks) {
  Communicator& comm = world();
  if (comm.size() == 1) GTEST_SKIP() << "one process: every batch splits";
  const Config c = config_from_yaml(
      "run: {name: dp, steps: 2, out_dir: " + (dir_ / "odd").string() + "}\n"
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
