// pit-train's loop on small generated data (CPU): learning, exact resume, metrics, checkpoints
// and the errors a user meets first.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/tensor.h"
#include "core/random.h"
#include "ops/kernels.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/trainer/train/resume_from.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/data/formats.h"
#include "trainer/io/hdf5.h"
#include "trainer/train/setup.h"
#include "trainer/train/trainer.h"

namespace pit::train {
namespace {

namespace fs = std::filesystem;

class TrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pit_train_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = std::tmpfile();
  }
  void TearDown() override {
    std::fclose(log_);
    fs::remove_all(dir_);
  }

  // A token stream with structure to learn: a repeated pattern of period 7 over 16 tokens.
  std::string token_file(const std::string& name, int64_t n) {
    std::vector<uint8_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 3 + i / 7) % 16);
    Tensor tokens = Tensor::empty({n}, DType::u8);
    std::copy(t.begin(), t.end(), tokens.data<uint8_t>());
    const std::string path = (dir_ / name).string();
    data::write_token_file(path, tokens, 16);
    return path;
  }

  // Images whose class is the row holding the bright stripe: 4 classes of 1x8x8 images.
  std::string image_file(const std::string& name, int64_t n) {
    Tensor images = zeros({n, 1, 8, 8}, DType::u8), labels = Tensor::empty({n}, DType::i64);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = i % 4;
      labels.data<int64_t>()[i] = c;
      for (int64_t x = 0; x < 8; ++x) images.data<uint8_t>()[i * 64 + (2 * c) * 8 + x] = 200;
    }
    const std::string path = (dir_ / name).string();
    data::write_image_file(path, images, labels, 4, 0.1, 0.3);
    return path;
  }

  // extra_model: more keys of the model section (", experts: 4, ..."); extra: more sections.
  std::string lm_yaml(int64_t steps, const std::string& extra_model = "", const std::string& extra = "") {
    return "run: {name: t, steps: " + std::to_string(steps) + ", log_every: 5, eval_every: 10, eval_batches: 2, out_dir: " +
           (dir_ / "run").string() + "}\n"
           "data: {kind: tokens, train: " + token_file("train.h5", 4000) + ", valid: " + token_file("valid.h5", 600) +
           ", batch_size: 4, seq_len: 16}\n"
           "model: {kind: transformer, vocab_size: 16, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, dropout: 0.1" +
           extra_model + "}\n"
           "optim: {lr: 1.0e-2}\nschedule: {warmup_steps: 2}\ncheckpoint: {every: 10, keep: 3}\n" + extra;
  }

  void expect_exact_resume(const std::string& extra_model, const std::string& extra = "");

  std::vector<std::string> metrics_lines() const {
    std::ifstream in(dir_ / "run" / "metrics.jsonl");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }

  fs::path dir_;
  std::FILE* log_ = nullptr;
};

// A learning rate that blows the weights up: the run stops with an error at its first progress
// line (step 5) instead of training on NaN weights, and saves no checkpoint of them.
TEST_F(TrainTest, ADivergedRunStopsWithAnErrorAndSavesNothing) {
  std::string yaml = lm_yaml(40);
  const size_t at = yaml.find("lr: 1.0e-2");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, 10, "lr: 1.0e+30");
  const Config c = config_from_yaml(yaml, "lm.yaml");
  test::expect_error_contains([&] { (void)train(c, {.out = log_}); }, "the run diverged: at step 5 the training loss is");
  EXPECT_FALSE(latest_checkpoint(c.checkpoint_dir()).found());
}

TEST_F(TrainTest, TransformerLearnsAndWritesMetricsAndCheckpoints) {
  const Config c = config_from_yaml(lm_yaml(40), "lm.yaml");
  const TrainResult r = train(c, {.out = log_});
  EXPECT_EQ(r.steps_done, 40);
  EXPECT_FALSE(r.interrupted);
  // ln(16) = 2.77 at the start; the pattern is easy to learn.
  EXPECT_LT(r.last_train_loss, 1.5);
  EXPECT_LT(r.eval_loss, 1.5);
  const std::vector<std::string> lines = metrics_lines();
  // 8 train records (every 5 steps), evaluations at 10, 20, 30 and the final one at 40.
  ASSERT_EQ(lines.size(), 12u);
  EXPECT_NE(lines.front().find("\"step\": 5, \"split\": \"train\""), std::string::npos) << lines.front();
  EXPECT_NE(lines.back().find("\"split\": \"valid\""), std::string::npos);
  EXPECT_NE(lines.back().find("\"bpb\""), std::string::npos);
  const LatestCheckpoint latest = latest_checkpoint(c.checkpoint_dir());
  ASSERT_TRUE(latest.found());
  EXPECT_EQ(latest.step, 40);
  EXPECT_EQ(r.checkpoint, latest.path.string());
}

// The same with mixture-of-experts feed-forward layers: the load-balancing and z losses join the
// objective, and every train record carries them with the tokens per expert.
TEST_F(TrainTest, MoeTransformerLearnsAndLogsItsRouting) {
  const Config c = config_from_yaml(lm_yaml(40, ", experts: 4, top_k: 2, router_jitter: 0.05"), "lm.yaml");
  EXPECT_EQ(c.model.experts, 4);
  EXPECT_EQ(c.model.top_k, 2);
  EXPECT_DOUBLE_EQ(c.model.aux_loss_coef, 0.01);  // the defaults
  EXPECT_DOUBLE_EQ(c.model.z_loss_coef, 0.001);
  const TrainResult r = train(c, {.out = log_});
  EXPECT_EQ(r.steps_done, 40);
  EXPECT_LT(r.last_train_loss, 1.5);
  EXPECT_LT(r.eval_loss, 1.5);
  int train_records = 0;
  for (const std::string& line : metrics_lines()) {
    if (line.find("\"split\": \"train\"") == std::string::npos) continue;
    ++train_records;
    for (const char* key : {"\"moe_aux_loss\"", "\"moe_z_loss\"", "\"tokens_per_expert_min\"",
                            "\"tokens_per_expert_max\"", "\"dropped_tokens\": 0"})
      EXPECT_NE(line.find(key), std::string::npos) << key << " missing in " << line;
  }
  EXPECT_EQ(train_records, 8);
  // With a capacity factor below 1 some assignments are dropped, and the records count them.
  fs::remove_all(dir_ / "run");
  const Config capped = config_from_yaml(lm_yaml(10, ", experts: 4, top_k: 2, capacity_factor: 0.5"), "lm.yaml");
  EXPECT_DOUBLE_EQ(capped.model.capacity_factor, 0.5);
  train(capped, {.out = log_});
  const std::vector<std::string> capped_lines = metrics_lines();
  ASSERT_FALSE(capped_lines.empty());
  EXPECT_EQ(capped_lines.front().find("\"dropped_tokens\": 0,"), std::string::npos) << capped_lines.front();
  EXPECT_NE(capped_lines.front().find("\"dropped_tokens\": "), std::string::npos) << capped_lines.front();
  // top_k above the number of experts is refused when the config is read.
  EXPECT_THROW(config_from_yaml(lm_yaml(40, ", experts: 2, top_k: 3"), "lm.yaml"), Error);
}

// Resuming a run from a checkpoint gives the same losses bit for bit (with MoE layers too: the
// router's jitter draws from the saved RNG, the experts are saved parameters).
void TrainTest::expect_exact_resume(const std::string& extra_model, const std::string& extra) {
  // Dropout is on, so the RNG counter, the data position and the optimizer state must all come
  // back for the losses to match bit for bit.
  const Config c = config_from_yaml(lm_yaml(30, extra_model, extra), "lm.yaml");
  const TrainResult full = train(c, {.out = log_});
  const std::vector<std::string> full_metrics = metrics_lines();

  const TrainResult resumed = train(c, {.resume = true, .resume_path = test::older_checkpoint(c.checkpoint_dir(), 10), .out = log_});
  EXPECT_EQ(resumed.steps_done, 30);
  EXPECT_EQ(resumed.last_train_loss, full.last_train_loss);  // exact
  EXPECT_EQ(resumed.eval_loss, full.eval_loss);
  EXPECT_EQ(metrics_lines().size(), full_metrics.size());  // records after step 10 replaced
  for (size_t i = 0; i < full_metrics.size(); ++i) {
    const std::string a = full_metrics[i], b = metrics_lines()[i];
    // Throughput and timings differ between runs; the losses may not.
    EXPECT_EQ(a.substr(0, a.find("\"grad_norm\"")), b.substr(0, b.find("\"grad_norm\""))) << i;
  }
}

TEST_F(TrainTest, ResumedRunEqualsUninterruptedRunExactly) { expect_exact_resume(""); }
TEST_F(TrainTest, ResumedMoeRunEqualsUninterruptedRunExactly) {
  expect_exact_resume(", experts: 4, top_k: 2, router_jitter: 0.05");
}

// Sparse layers: masks changed before the checkpoint (step 10) and after it; the checkpoint holds
// the masks and the compact values and optimizer state laid out by them.
TEST_F(TrainTest, ResumedRigLRunEqualsUninterruptedRunExactly) {
  expect_exact_resume("", "sparse: {method: rigl, layers: [\"blocks/*/mlp/*\"], unit: 16x1, sparsity: 0.5, "
                          "update_every: 4, update_end: 25}\n");
}
// The masks in a checkpoint follow its sparse settings: a resume that changes them is refused
// (the masks would stay at the checkpoint's sparsity), one that changes the update cadence is not.
TEST_F(TrainTest, ResumeRefusesOtherSparseSettings) {
  const std::string rigl = "sparse: {method: rigl, layers: [\"blocks/*/mlp/*\"], unit: 16x1, sparsity: 0.5}\n";
  train(config_from_yaml(lm_yaml(10, "", rigl), "lm.yaml"), {.out = log_});
  for (const char* changed : {"sparse.sparsity=0.75", "sparse.unit=32x1", "sparse.method=set", "sparse.layers=[\"*\"]"})
    test::expect_error_contains(
        [&] { train(config_from_yaml(lm_yaml(20, "", rigl), "lm.yaml", {changed}), {.resume = true, .out = log_}); },
        std::string("was written with other model, data or sparse settings (") +
            std::string(changed).substr(0, std::string(changed).find('=')));
  // More steps move sparse.update_end's default (3/4 of run.steps: 7 then, 15 now), and with it the
  // drop schedule: refused, naming the value that keeps it.
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(20, "", rigl), "lm.yaml"), {.resume = true, .out = log_}); },
      "drops and regrows until step 7 (sparse.update_end 0: 3/4 of its run.steps), this run until step 15");
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(20, "", rigl), "lm.yaml"), {.resume = true, .out = log_}); },
      "--set sparse.update_end=7");
  const TrainResult r = train(
      config_from_yaml(lm_yaml(20, "", rigl), "lm.yaml", {"sparse.update_every=3", "sparse.update_end=7"}),
      {.resume = true, .out = log_});
  EXPECT_EQ(r.steps_done, 20);
}

TEST_F(TrainTest, ResumedGradualPruningRunEqualsUninterruptedRunExactly) {
  expect_exact_resume("", "sparse: {method: magnitude, unit: 16x1, sparsity: 0.6, start_step: 2, end_step: 20, "
                          "every: 3}\n");
}

// A pruned transformer still learns; its records carry the sparsity, the FLOPs saved, the mask
// changes and each layer's density.
TEST_F(TrainTest, PrunedTransformerLearnsAndLogsItsSparsity) {
  const Config c = config_from_yaml(
      lm_yaml(40, "", "sparse: {method: magnitude, layers: [\"*/mlp/*\"], unit: 16x1, sparsity: 0.75, start_step: 5, "
                      "end_step: 20, every: 5}\n"),
      "lm.yaml");
  const TrainResult r = train(c, {.out = log_});
  EXPECT_LT(r.eval_loss, 1.5);
  const std::vector<std::string> lines = metrics_lines();
  ASSERT_FALSE(lines.empty());
  const std::string last_train = lines[lines.size() - 2];
  for (const char* key : {"\"sparsity\": 0.75", "\"flops_saved\"", "\"mask_changes\"", "\"density/blocks/0/mlp/fc\": 0.25",
                          "\"density/blocks/0/mlp/proj\": 0.25"})
    EXPECT_NE(last_train.find(key), std::string::npos) << key << " missing in " << last_train;
}

TEST_F(TrainTest, ResumeFromTheLatestCheckpointContinues) {
  const Config c20 = config_from_yaml(lm_yaml(20), "lm.yaml");
  train(c20, {.out = log_});
  // A newer checkpoint whose header is sound and whose contents are not: skipped, said, left as
  // it is, and no "later checkpoint" that would refuse the resume.
  const fs::path dir = c20.checkpoint_dir();
  const fs::path corrupt = dir / checkpoint_name(25);
  fs::copy_file(dir / checkpoint_name(20), corrupt);
  io::File::open(corrupt.string(), io::Mode::read_write).write("ints/odd", zeros({2}, DType::u8));
  const Config c30 = config_from_yaml(lm_yaml(30), "lm.yaml");
  const TrainResult r = train(c30, {.resume = true, .out = log_});
  EXPECT_EQ(r.steps_done, 30);
  EXPECT_EQ(latest_checkpoint(c30.checkpoint_dir()).step, 30);
  std::fflush(log_);
  std::rewind(log_);
  std::string out;
  for (int ch; (ch = std::fgetc(log_)) != EOF;) out += static_cast<char>(ch);
  EXPECT_NE(out.find("pit-train: skipping checkpoint " + corrupt.string()), std::string::npos) << out;
  EXPECT_NE(out.find("resumed from " + (dir / checkpoint_name(20)).string() + " at step 20"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(corrupt));
}

TEST_F(TrainTest, MlpClassifierLearns) {
  const std::string yaml =
      "run: {name: m, steps: 60, log_every: 20, eval_every: 0, out_dir: " + (dir_ / "run").string() + "}\n"
      "data: {kind: images, train: " + image_file("train.h5", 256) + ", valid: " + image_file("valid.h5", 64) +
      ", batch_size: 16}\nmodel: {kind: mlp, hidden: [32]}\noptim: {lr: 1.0e-2}\n";
  const TrainResult r = train(config_from_yaml(yaml, "mlp.yaml"), {.out = log_});
  EXPECT_GT(r.eval_accuracy, 0.95);
}

TEST_F(TrainTest, ErrorsNameTheProblemAndTheFix) {
  // A transformer on an image file.
  const std::string images = image_file("img.h5", 64);
  const std::string yaml = "run: {name: e, steps: 5, out_dir: " + (dir_ / "run").string() + "}\n"
                           "data: {kind: tokens, train: " + images + ", valid: " + images + ", batch_size: 4, seq_len: 8}\n"
                           "model: {kind: transformer, vocab_size: 16, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32}\n";
  test::expect_error_contains_all([&] { train(config_from_yaml(yaml, "e.yaml"), {.out = log_}); },
                                  {"data.kind is tokens but data.train " + images + " holds images",
                                   "point data.train to a file of tokens"});
  // --resume without a checkpoint.
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(5), "lm.yaml"), {.resume = true, .out = log_}); },
      "no usable checkpoint in");
  // Resuming a checkpoint of another model.
  train(config_from_yaml(lm_yaml(10), "lm.yaml"), {.out = log_});
  // (Resuming the complete run trains nothing and leaves the metrics file as it was.)
  const std::vector<std::string> complete = metrics_lines();
  EXPECT_EQ(train(config_from_yaml(lm_yaml(10), "lm.yaml"), {.resume = true, .out = log_}).steps_done, 10);
  EXPECT_EQ(metrics_lines(), complete);
  // ... unless its final evaluation is missing there (it failed after the last checkpoint): then
  // the resume writes it, once.
  ASSERT_NE(complete.back().find("\"split\": \"valid\""), std::string::npos);
  {
    std::ofstream rewrite(dir_ / "run" / "metrics.jsonl", std::ios::trunc);
    for (size_t i = 0; i + 1 < complete.size(); ++i) rewrite << complete[i] << "\n";
  }
  EXPECT_EQ(train(config_from_yaml(lm_yaml(10), "lm.yaml"), {.resume = true, .out = log_}).steps_done, 10);
  const std::vector<std::string> rewritten = metrics_lines();
  ASSERT_EQ(rewritten.size(), complete.size());
  EXPECT_NE(rewritten.back().find("\"step\": 10, \"split\": \"valid\""), std::string::npos) << rewritten.back();
  const Config wider = config_from_yaml(lm_yaml(20), "lm.yaml", {"model.d_model=64"});
  test::expect_error_contains_all([&] { train(wider, {.resume = true, .out = log_}); },
                                  {"model.d_model: 32 there, 64 now", "resume with its settings (--set 'model.d_model=32')"});
  // ... or another seed (SET/RigL would draw from it, the data order and dropout would not).
  const Config reseeded = config_from_yaml(lm_yaml(20), "lm.yaml", {"run.seed=987654"});
  test::expect_error_contains([&] { train(reseeded, {.resume = true, .out = log_}); }, "run.seed");
  // A fresh run where an earlier one left checkpoints: it would mix with them.
  test::expect_error_contains([&] { train(config_from_yaml(lm_yaml(10), "lm.yaml"), {.out = log_}); },
                              "holds checkpoints of an earlier run; continue it with --resume");
  // The same folder named by checkpoint.dir: another run.out_dir would not move it, so the advice
  // names checkpoint.dir.
  const std::string folder = config_from_yaml(lm_yaml(10), "lm.yaml").checkpoint_dir();
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(10), "lm.yaml", {"checkpoint.dir=" + folder}), {.out = log_}); },
      "start afresh in another folder (--set checkpoint.dir=DIR)");
  // Resuming from an older checkpoint while later ones are in the folder: it would mix with them.
  const Config ten = config_from_yaml(lm_yaml(10), "lm.yaml", {"run.out_dir=" + (dir_ / "run2").string(), "checkpoint.every=5"});
  train(ten, {.out = log_});  // checkpoints of steps 5 and 10
  const std::string five = (fs::path(ten.checkpoint_dir()) / checkpoint_name(5)).string();
  test::expect_error_contains_all([&] { train(ten, {.resume = true, .resume_path = five, .out = log_}); },
                                  {"holds checkpoints after step 5", checkpoint_name(10), "--set run.out_dir"});
  EXPECT_EQ(latest_checkpoint(ten.checkpoint_dir()).step, 10);  // left as they were
  // A checkpoint folder that is a file: refused before training, naming the key.
  std::ofstream(dir_ / "afile") << "x";
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(5), "lm.yaml", {"checkpoint.dir=" + (dir_ / "afile").string()}), {.out = log_}); },
      "checkpoint.dir");
}

TEST_F(TrainTest, TheValidationFileMustFitTheModelBeforeTraining) {
  // Found at the start, not at the first (or the final) evaluation after all the training.
  Tensor wide = Tensor::empty({600}, DType::u8);
  for (int64_t i = 0; i < 600; ++i) wide.data<uint8_t>()[i] = static_cast<uint8_t>(i % 64);
  const std::string wide_valid = (dir_ / "wide_valid.h5").string();
  data::write_token_file(wide_valid, wide, 64);
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(5), "lm.yaml", {"data.valid=" + wide_valid}), {.out = log_}); },
      "has a vocabulary of 64 tokens but model.vocab_size is 16");
  const std::string images = image_file("img.h5", 64);
  test::expect_error_contains(
      [&] { train(config_from_yaml(lm_yaml(5), "lm.yaml", {"data.valid=" + images}), {.out = log_}); },
      "data.kind is tokens but data.valid " + images + " holds images");
  EXPECT_FALSE(fs::exists(dir_ / "run" / "checkpoints")) << "nothing trained";
}

// A head size that CUDA's attention does not take is named by its keys at the start, with a
// number of heads that fits (not at the first forward, as "head_dim 512 is not supported").
TEST(TrainSetupCuda, AHeadSizeAboveTheAttentionsLimitIsNamedByItsKeys) {
  PIT_REQUIRE_BUILT(kernels::attention_head_dim_limit(Device::cuda()) != 0, "pit was built without CUDA");
  const auto config = [](int64_t d_model, int64_t heads) {
    return config_from_yaml("run: {steps: 5}\ndata: {kind: tokens, train: a.h5, valid: b.h5}\n"
                            "model: {kind: transformer, d_model: " + std::to_string(d_model) + ", n_heads: " +
                                std::to_string(heads) + ", d_ff: " + std::to_string(4 * d_model) + "}\n",
                            "lm.yaml");
  };
  test::expect_error_contains_all([&] { check_model_fits_device(config(512, 1), Device::cuda()); },
                                  {"model.d_model / model.n_heads = 512 / 1 = 512", "at most 256",
                                   "set model.n_heads to 2 or more"});
  test::expect_error_contains([&] { check_model_fits_device(config(520, 1), Device::cuda()); },
                              "set model.n_heads to 4 or more");  // 3 does not divide 520
  EXPECT_NO_THROW(check_model_fits_device(config(512, 2), Device::cuda()));
  EXPECT_NO_THROW(check_model_fits_device(config(512, 1), Device::cpu()));
}

}  // namespace
}  // namespace pit::train
