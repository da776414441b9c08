#pragma once
// A fixture for pit-train runs on every rank of world() (one process, or `mpirun -np 2`): a
// folder shared by the ranks (named by rank 0's pid) with a small generated token corpus, and the
// config of a small LM without dropout (each rank would draw the same dropout masks for different
// rows, which one process cannot reproduce), global batch 4, on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/comm.h"
#include "core/error.h"
#include "core/tensor.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/data/formats.h"
#include "trainer/train/trainer.h"

namespace pit::train::test {

class RankRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Communicator& comm = world();
    Tensor id = from_vector(std::vector<int64_t>{static_cast<int64_t>(::getpid())}, {1});
    comm.broadcast(id, 0);
    dir_ = std::filesystem::temp_directory_path() /
           ("pit_rank_test_" + std::to_string(id.to_vector<int64_t>()[0]) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    if (comm.rank() == 0) {
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
      write_tokens("train.h5", 3000);
      write_tokens("valid.h5", 600);
    }
    comm.barrier();
    log_ = std::tmpfile();
  }
  void TearDown() override {
    std::fclose(log_);
    world().barrier();
    if (world().rank() == 0) std::filesystem::remove_all(dir_);
  }

  void write_tokens(const std::string& name, int64_t n) {
    Tensor tokens = Tensor::empty({n}, DType::u8);
    for (int64_t i = 0; i < n; ++i) tokens.data<uint8_t>()[i] = static_cast<uint8_t>((i * 3 + i / 7) % 16);
    data::write_token_file((dir_ / name).string(), tokens, 16);
  }

  // `model_extra` and `optim_extra` add keys to those sections; `extra` adds sections.
  Config lm(const std::string& run, int64_t steps, const std::string& extra = "", const std::string& model_extra = "",
            const std::string& optim_extra = "") const {
    const std::string yaml =
        "run: {name: dp, device: cpu, steps: " + std::to_string(steps) + ", log_every: 5, eval_every: 0, out_dir: " +
        (dir_ / run).string() + "}\n"
        "data: {kind: tokens, train: " + (dir_ / "train.h5").string() + ", valid: " + (dir_ / "valid.h5").string() +
        ", batch_size: 4, seq_len: 16}\n"
        "model: {kind: transformer, vocab_size: 16, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, dropout: 0" +
        model_extra + "}\n"
        "optim: {lr: 1.0e-2" + optim_extra + "}\nschedule: {warmup_steps: 2}\ncheckpoint: {every: 10, keep: 3}\n" + extra;
    return config_from_yaml(yaml, "dp.yaml");
  }

  // Trains `c` on every rank while rank 0's checkpoint writes fail with kDiskFull; returns the
  // error this rank stopped with ("" if none).
  static constexpr const char* kDiskFull = "the disk is full (test)";
  std::string error_when_rank0_cannot_save(const Config& c) {
    Communicator& comm = world();
    if (comm.rank() == 0)
      set_checkpoint_save_hook([](const std::string& stage) {
        if (stage == "entries") PIT_THROW(kDiskFull);
      });
    std::string message;
    try {
      train(c, {.out = log_, .comm = &comm});
    } catch (const Error& e) {
      message = e.what();
    }
    set_checkpoint_save_hook({});
    return message;
  }

  std::filesystem::path dir_;
  std::FILE* log_ = nullptr;
};

// Equal up to the rounding of sums taken in another order.
inline void expect_close(double got, double want, const char* what) {
  EXPECT_NEAR(got, want, 1e-4 * std::abs(want)) << what;
}

// A run on the ranks against one process with the same global batch: the same losses, and it
// learned (ln 16 = 2.77 at the start).
inline void expect_same_run(const TrainResult& ranks, const TrainResult& one) {
  expect_close(ranks.last_train_loss, one.last_train_loss, "train loss");
  expect_close(ranks.eval_loss, one.eval_loss, "eval loss");
  EXPECT_LT(ranks.eval_loss, 2.0);
}

}  // namespace pit::train::test
