// trainer/checkpoint: round trip, retention, latest selection, unusable files (never touched),
// crashes during a save, and the compatibility check.
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/durable.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "tests/core/expect_error.h"
#include "tests/trainer/data/data_files.h"
#include "tests/trainer/data/scratch_dir.h"
#include "trainer/data/token_loader.h"
#include "trainer/io/hdf5.h"

namespace pit::train {
namespace {

namespace fs = std::filesystem;
using test::expect_error_contains;
using test::expect_error_contains_all;

// A state with a tensor of every dtype (bytes patterned; f16 and bf16 with NaN payloads),
// nested names, and scalars of each kind. `salt` changes every value.
StateDict sample_state(int salt = 0) {
  StateDict s;
  for (DType dtype : kAllDTypes) {
    Tensor t = Tensor::empty({2, 3}, dtype);
    auto* bytes = static_cast<uint8_t*>(t.data_ptr());
    for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 13 + salt);
    if (dtype == DType::boolean)
      for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = (i + salt) % 2;
    if (dtype == DType::f16 || dtype == DType::bf16) {
      const uint16_t nan = 0x7f81;  // a signalling-looking NaN payload must survive as bits
      std::memcpy(t.data_ptr(), &nan, sizeof nan);
    }
    s.tensors[std::string("model/blocks/0/") + dtype_name(dtype)] = t;
  }
  s.tensors["optim/step_scale"] = from_vector(std::vector<float>{1.0f + salt}, Shape{});
  s.ints["step"] = 100 + salt;
  s.ints["data/cursor"] = -3;
  s.ints["rng/seed"] = static_cast<int64_t>(0xfedcba9876543210ull);
  s.reals["loss_scale"] = 65536.0 + salt;
  s.reals["lr/value"] = 3e-4;
  s.strings["config"] = "model:\n  kind: moe\n";
  s.strings["meta/empty"] = "";
  return s;
}

void expect_same(const StateDict& a, const StateDict& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(b.tensors.count(name), 1u);
    const Tensor& u = b.tensors.at(name);
    EXPECT_EQ(u.dtype(), t.dtype());
    EXPECT_EQ(u.shape(), t.shape());
    EXPECT_FALSE(u.is_cuda());
    EXPECT_EQ(std::memcmp(u.contiguous().data_ptr(), t.contiguous().data_ptr(), t.nbytes()), 0);
  }
  EXPECT_EQ(a.ints, b.ints);
  EXPECT_EQ(a.reals, b.reals);
  EXPECT_EQ(a.strings, b.strings);
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void TearDown() override { set_checkpoint_save_hook({}); }
  test::ScratchDir scratch_;
  fs::path dir_ = scratch_.path() / "ckpt";
};

TEST_F(CheckpointTest, RoundTripIsExact) {
  const StateDict state = sample_state();
  const fs::path path = save_checkpoint(dir_, 5, state, 3);
  EXPECT_EQ(path, dir_ / "step-00000005.h5");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"step-00000005.h5"}));  // no .tmp left
  expect_same(load_checkpoint(path), state);

  const io::File file = io::File::open(path.string());
  EXPECT_EQ(file.attr_string("format"), "pit-checkpoint");
  EXPECT_EQ(file.attr_int("version"), kCheckpointVersion);
  EXPECT_EQ(file.attr_int("step"), 5);
  EXPECT_EQ(file.attr_int("complete"), 1);
  EXPECT_TRUE(file.is_dataset("tensors/model/blocks/0/bf16"));
  EXPECT_TRUE(file.is_dataset("ints/data/cursor"));
}

TEST_F(CheckpointTest, NamesAndSteps) {
  EXPECT_EQ(checkpoint_name(0), "step-00000000.h5");
  EXPECT_EQ(checkpoint_name(123456789), "step-123456789.h5");
  EXPECT_EQ(checkpoint_step("step-00000042.h5"), 42);
  EXPECT_EQ(checkpoint_step("step-123456789.h5"), 123456789);
  EXPECT_EQ(checkpoint_step("step-00000042.h5.tmp"), -1);
  EXPECT_EQ(checkpoint_step("step-42.h5"), -1);
  EXPECT_EQ(checkpoint_step("step-0000004x.h5"), -1);
  expect_error_contains([] { checkpoint_name(-1); }, ">= 0");
}

TEST_F(CheckpointTest, RetentionKeepsTheNewest) {
  for (int step = 1; step <= 5; ++step) save_checkpoint(dir_, step * 10, sample_state(step), 2);
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"step-00000040.h5", "step-00000050.h5"}));
  save_checkpoint(dir_, 60, sample_state(), 0);  // keep <= 0: keep all
  EXPECT_EQ(listing(dir_).size(), 3u);
  // A file that is not a valid checkpoint is never pruned, nor counted.
  std::ofstream(dir_ / "step-00000001.h5") << "garbage";
  save_checkpoint(dir_, 70, sample_state(), 1);
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"step-00000001.h5", "step-00000070.h5"}));
  // A new run in a folder holding an earlier run's later checkpoints keeps the one it wrote.
  const fs::path written = save_checkpoint(dir_, 20, sample_state(), 1);
  EXPECT_TRUE(fs::exists(written));
  EXPECT_EQ(listing(dir_),
            (std::vector<std::string>{"step-00000001.h5", "step-00000020.h5", "step-00000070.h5"}));
}

TEST_F(CheckpointTest, LatestPicksTheHighestCompleteStep) {
  EXPECT_FALSE(latest_checkpoint(dir_).found());  // no directory yet
  save_checkpoint(dir_, 9, sample_state(9), 0);
  save_checkpoint(dir_, 10, sample_state(10), 0);
  save_checkpoint(dir_, 8, sample_state(8), 0);
  std::ofstream(dir_ / "step-00000099.h5.tmp") << "a leftover of a crashed save";
  std::ofstream(dir_ / "notes.txt") << "unrelated";
  LatestCheckpoint latest = latest_checkpoint(dir_);
  ASSERT_TRUE(latest.found());
  EXPECT_EQ(latest.step, 10);
  EXPECT_EQ(latest.path, dir_ / "step-00000010.h5");
  EXPECT_TRUE(latest.problems.empty());

  // A corrupt newer checkpoint is reported and skipped.
  const fs::path newest = dir_ / "step-00000011.h5";
  fs::copy_file(dir_ / "step-00000010.h5", newest);
  fs::resize_file(newest, fs::file_size(newest) / 2);
  latest = latest_checkpoint(dir_);
  EXPECT_EQ(latest.step, 10);
  ASSERT_EQ(latest.problems.size(), 1u);
  EXPECT_NE(latest.problems[0].find("step-00000011.h5"), std::string::npos) << latest.problems[0];
}

TEST_F(CheckpointTest, UnusableFilesAreReportedAndLeftAlone) {
  const fs::path good = save_checkpoint(dir_, 1, sample_state(), 0);

  const fs::path truncated = dir_ / "truncated.h5";
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, fs::file_size(good) - 100);
  const auto size = fs::file_size(truncated);
  expect_error_contains_all(
      [&] { load_checkpoint(truncated); },
      {truncated.string(), "truncated or corrupt", "resume from another checkpoint"});
  EXPECT_EQ(fs::file_size(truncated), size);  // untouched

  const fs::path foreign = dir_ / "foreign.h5";
  io::File::create(foreign.string()).write("weights", zeros({3}));
  expect_error_contains_all([&] { load_checkpoint(foreign); },
                            {foreign.string(), "not a pit checkpoint"});

  const fs::path text = dir_ / "text.h5";
  std::ofstream(text) << "hello";
  expect_error_contains_all([&] { load_checkpoint(text); },
                            {text.string(), "truncated or corrupt"});
  EXPECT_TRUE(fs::exists(text));

  const fs::path newer = dir_ / "newer.h5";
  fs::copy_file(good, newer);
  io::File::open(newer.string(), io::Mode::read_write)
      .set_attr_int("version", kCheckpointVersion + 1);
  expect_error_contains_all([&] { load_checkpoint(newer); }, {newer.string(), "newer pit"});

  const fs::path incomplete = dir_ / "incomplete.h5";
  fs::copy_file(good, incomplete);
  io::File::open(incomplete.string(), io::Mode::read_write).set_attr_int("complete", 0);
  expect_error_contains_all([&] { load_checkpoint(incomplete); },
                            {incomplete.string(), "incomplete"});

  const fs::path broken = dir_ / "broken.h5";
  fs::copy_file(good, broken);
  {
    io::File f = io::File::open(broken.string(), io::Mode::read_write);
    f.write("ints/odd", zeros({2}, DType::u8));  // a dataset that is no int scalar
  }
  expect_error_contains_all([&] { load_checkpoint(broken); }, {broken.string(), "corrupt"});

  expect_error_contains([&] { load_checkpoint(dir_ / "missing.h5"); }, "no such file");
  expect_error_contains_all([&] { load_checkpoint(dir_); }, {dir_.string(), "is a folder", "step-*.h5"});
}

// --resume without a PATH: a newest checkpoint whose header is sound but whose contents are not
// is skipped too (latest_checkpoint reads headers only, and takes it), naming it.
TEST_F(CheckpointTest, LoadLatestSkipsAFileWhoseContentsAreCorrupt) {
  EXPECT_FALSE(load_latest_checkpoint(dir_).found());  // no directory yet
  save_checkpoint(dir_, 10, sample_state(10), 0);
  const fs::path newest = dir_ / "step-00000011.h5";
  fs::copy_file(dir_ / "step-00000010.h5", newest);
  {
    io::File f = io::File::open(newest.string(), io::Mode::read_write);
    f.write("ints/odd", zeros({2}, DType::u8));  // a dataset that is no int scalar
  }
  EXPECT_EQ(latest_checkpoint(dir_).step, 11);
  const LoadedCheckpoint loaded = load_latest_checkpoint(dir_);
  ASSERT_TRUE(loaded.found());
  EXPECT_EQ(loaded.step, 10);
  EXPECT_EQ(loaded.path, dir_ / "step-00000010.h5");
  expect_same(loaded.state, sample_state(10));
  ASSERT_EQ(loaded.problems.size(), 1u);
  EXPECT_NE(loaded.problems[0].find("step-00000011.h5"), std::string::npos) << loaded.problems[0];
  EXPECT_EQ(loaded.skipped, std::vector<fs::path>{newest});
  EXPECT_TRUE(fs::exists(newest));  // left as it is
}

TEST_F(CheckpointTest, AFailedSaveLeavesThePreviousCheckpoint) {
  const StateDict old_state = sample_state(1);
  save_checkpoint(dir_, 1, old_state, 5);
  for (const char* stage : {"entries", "closed"}) {
    SCOPED_TRACE(stage);
    set_checkpoint_save_hook([&](const std::string& at) {
      if (at == stage) throw Error(std::string("injected fault at ") + at);
    });
    expect_error_contains([&] { save_checkpoint(dir_, 2, sample_state(2), 5); }, "injected fault");
    EXPECT_EQ(listing(dir_), (std::vector<std::string>{"step-00000001.h5"}));  // no half file
    EXPECT_EQ(latest_checkpoint(dir_).step, 1);
    expect_same(load_checkpoint(dir_ / "step-00000001.h5"), old_state);
  }
  // A fault after the rename: the new checkpoint is complete and the older one still there.
  set_checkpoint_save_hook([](const std::string& at) {
    if (at == "renamed") throw Error("injected fault after rename");
  });
  EXPECT_THROW(save_checkpoint(dir_, 3, sample_state(3), 1), Error);
  EXPECT_EQ(latest_checkpoint(dir_).step, 3);
  expect_same(load_checkpoint(dir_ / "step-00000003.h5"), sample_state(3));
}

TEST_F(CheckpointTest, ACrashMidSaveLeavesNoFileThatLooksLikeACheckpoint) {
  const StateDict old_state = sample_state(1);
  save_checkpoint(dir_, 1, old_state, 5);
  // A real crash: the child process dies in the middle of the save, without unwinding.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    set_checkpoint_save_hook([](const std::string& at) {
      if (at == "entries") _exit(17);
    });
    save_checkpoint(dir_, 2, sample_state(2), 5);
    _exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 17) << "the child should have died mid-save";

  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"step-00000001.h5", "step-00000002.h5.tmp"}));
  const LatestCheckpoint latest = latest_checkpoint(dir_);
  EXPECT_EQ(latest.step, 1);
  EXPECT_TRUE(latest.problems.empty());  // the .tmp is not taken for a checkpoint
  expect_same(load_checkpoint(latest.path), old_state);
  expect_error_contains(
      [&] { load_checkpoint(dir_ / "step-00000002.h5.tmp"); }, "cannot be used");

  // The next save removes the leftover, whatever its step (the run may never save that step again).
  save_checkpoint(dir_, 3, sample_state(3), 5);
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"step-00000001.h5", "step-00000003.h5"}));
}

// The checkpoints a resume from an older one would mix with: valid ones of later steps only.
TEST_F(CheckpointTest, CheckpointsAfterAStep) {
  for (const int step : {10, 20, 30}) save_checkpoint(dir_, step, sample_state(step), 0);
  std::ofstream(dir_ / "step-00000040.h5") << "garbage";  // not a checkpoint: no conflict
  std::ofstream(dir_ / "step-00000050.h5.tmp") << "leftover";
  EXPECT_EQ(checkpoints_after(dir_, 10), (std::vector<fs::path>{dir_ / "step-00000020.h5", dir_ / "step-00000030.h5"}));
  EXPECT_TRUE(checkpoints_after(dir_, 30).empty());
  EXPECT_TRUE(checkpoints_after(scratch_.path() / "missing", 0).empty());
}

// A folder the run cannot write is found before training, named with the config key.
TEST_F(CheckpointTest, WritableFoldersAreCheckedUpFront) {
  const fs::path made = scratch_.path() / "a" / "b";
  ensure_writable_dir(made, "checkpoint.dir");
  EXPECT_TRUE(fs::is_directory(made));
  EXPECT_TRUE(fs::is_empty(made));  // the probe is gone
  const fs::path file = scratch_.path() / "plain";
  std::ofstream(file) << "x";
  expect_error_contains([&] { ensure_writable_dir(file, "checkpoint.dir"); }, "checkpoint.dir");
  expect_error_contains([&] { ensure_writable_dir(file / "sub", "run.out_dir"); }, "run.out_dir");
}

TEST_F(CheckpointTest, BadNamesAreRefusedBeforeWriting) {
  StateDict s;
  s.tensors["a"] = zeros({1});
  s.tensors["a/b"] = zeros({1});
  expect_error_contains_all([&] { save_checkpoint(dir_, 1, s, 1); }, {"'a/b'", "lies under 'a'"});
  StateDict t;
  t.ints["x//y"] = 1;
  expect_error_contains([&] { save_checkpoint(dir_, 1, t, 1); }, "'x//y'");
  StateDict u;
  u.tensors["/abs"] = zeros({1});
  expect_error_contains([&] { save_checkpoint(dir_, 1, u, 1); }, "not a clean");
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(CheckpointTest, CompatibilityNamesTheFirstDifference) {
  const StateDict expected = sample_state();
  EXPECT_NO_THROW(
      check_compatible(expected, load_checkpoint(save_checkpoint(dir_, 1, expected, 1))));

  StateDict missing = expected;
  missing.tensors.erase("model/blocks/0/f32");
  expect_error_contains_all([&] { check_compatible(expected, missing); },
                            {"'model/blocks/0/f32'", "missing from the checkpoint"});
  StateDict extra = expected;
  extra.tensors["model/extra"] = zeros({1});
  expect_error_contains_all([&] { check_compatible(expected, extra); },
                            {"'model/extra'", "not expected"});
  StateDict shape = expected;
  shape.tensors["model/blocks/0/i64"] = zeros({3, 2}, DType::i64);
  shape.tensors["optim/step_scale"] = zeros({2});
  expect_error_contains_all(
      [&] { check_compatible(expected, shape); },
      {"'model/blocks/0/i64'", "[3, 2] in the checkpoint", "[2, 3] is expected"});
  StateDict dtype = expected;
  dtype.tensors["model/blocks/0/f16"] = zeros({2, 3}, DType::bf16);
  expect_error_contains_all(
      [&] { check_compatible(expected, dtype); },
      {"'model/blocks/0/f16'", "dtype bf16 in the checkpoint", "f16 is expected"});
}

TEST_F(CheckpointTest, LoaderPositionSurvivesACheckpoint) {
  const std::string tokens = scratch_.file("tokens.h5");
  test::write_counting_tokens(tokens, 400, 1000);
  const data::LoaderOptions options{.batch_size = 3, .seq_len = 7, .seed = 5};
  data::TokenLoader loader(tokens, options);
  for (int i = 0; i < 20; ++i) loader.next();
  StateDict state;
  state.merge("data", loader.state());
  const fs::path path = save_checkpoint(dir_, 20, state, 1);

  data::TokenLoader resumed(tokens, options);
  resumed.load_state(load_checkpoint(path).sub("data"));
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(loader.next().inputs.to_vector<int64_t>(),
              resumed.next().inputs.to_vector<int64_t>());
}

}  // namespace
}  // namespace pit::train
