// TokenLoader and the Sampler under it: windows, shuffles per (seed, epoch), exact resume,
// evaluation passes, and bad files.
#include "trainer/data/token_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "tests/core/expect_error.h"
#include "tests/trainer/data/data_files.h"
#include "tests/trainer/data/scratch_dir.h"

namespace pit::data {
namespace {

using test::expect_error_contains;
using test::expect_error_contains_all;

constexpr int64_t kSeqLen = 7;  // windows of 8 tokens

// The window indices of a batch (token i of the counting stream is i, so window w starts at
// w * (T + 1)), after checking the targets are the inputs shifted by one.
std::vector<int64_t> windows_of(const Batch& b, int64_t seq_len = kSeqLen) {
  EXPECT_EQ(b.inputs.dtype(), DType::i64);
  EXPECT_EQ(b.targets.dtype(), DType::i64);
  EXPECT_EQ(b.inputs.shape(), b.targets.shape());
  const std::vector<int64_t> in = b.inputs.to_vector<int64_t>();
  const std::vector<int64_t> out = b.targets.to_vector<int64_t>();
  std::vector<int64_t> windows;
  for (int64_t r = 0; r < b.inputs.size(0); ++r) {
    const int64_t first = in[static_cast<size_t>(r * seq_len)];
    EXPECT_EQ(first % (seq_len + 1), 0) << "a window starts at a multiple of T + 1";
    for (int64_t t = 0; t < seq_len; ++t) {
      EXPECT_EQ(in[static_cast<size_t>(r * seq_len + t)], first + t);
      EXPECT_EQ(out[static_cast<size_t>(r * seq_len + t)], first + t + 1);
    }
    windows.push_back(first / (seq_len + 1));
  }
  return windows;
}

std::vector<int64_t> take(Loader& loader, int batches) {
  std::vector<int64_t> all;
  for (int i = 0; i < batches; ++i) {
    const std::vector<int64_t> w = windows_of(loader.next());
    all.insert(all.end(), w.begin(), w.end());
  }
  return all;
}

class TokenLoaderTest : public ::testing::Test {
 protected:
  // 40 windows of 8 tokens plus 5 left over; vocab large enough for the counting stream.
  void SetUp() override { test::write_counting_tokens(path_, 40 * 8 + 5, 1000); }
  LoaderOptions options(uint64_t seed = 1, bool shuffle = true) const {
    return {.batch_size = 4, .seq_len = kSeqLen, .seed = seed, .shuffle = shuffle};
  }
  test::ScratchDir dir_;
  std::string path_ = dir_.file("tokens.h5");
};

TEST_F(TokenLoaderTest, EveryWindowOncePerEpochInANewOrder) {
  TokenLoader loader(path_, options());
  EXPECT_EQ(loader.size(), 40);
  EXPECT_EQ(loader.batches_per_epoch(), 10);
  EXPECT_EQ(loader.vocab_size(), 1000);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    EXPECT_EQ(loader.epoch(), e == 0 ? 0 : e - 1);  // the epoch moves on at its first batch
    std::vector<int64_t> seen = take(loader, 10);
    EXPECT_EQ(loader.epoch(), e);
    epochs.push_back(seen);
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(40);
    for (int64_t i = 0; i < 40; ++i) all[static_cast<size_t>(i)] = i;
    EXPECT_EQ(seen, all) << "epoch " << e;
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
}

TEST_F(TokenLoaderTest, SameSeedSameBatchesOtherSeedOtherOrder) {
  TokenLoader a(path_, options(7)), b(path_, options(7)), c(path_, options(8));
  const std::vector<int64_t> wa = take(a, 25), wb = take(b, 25), wc = take(c, 25);
  EXPECT_EQ(wa, wb);
  EXPECT_NE(wa, wc);
}

TEST_F(TokenLoaderTest, NoShuffleWalksInOrder) {
  TokenLoader loader(path_, options(1, false));
  std::vector<int64_t> expected;
  for (int e = 0; e < 2; ++e)
    for (int64_t i = 0; i < 40; ++i) expected.push_back(i);
  EXPECT_EQ(take(loader, 20), expected);
}

TEST_F(TokenLoaderTest, PartialEpochDropsADifferentRemainder) {
  // 40 windows in batches of 6: 6 full batches (36 windows) per epoch, 4 skipped.
  LoaderOptions o = options(3);
  o.batch_size = 6;
  TokenLoader loader(path_, o);
  EXPECT_EQ(loader.batches_per_epoch(), 6);
  std::vector<int64_t> e0 = take(loader, 6), e1 = take(loader, 6);
  for (auto* e : {&e0, &e1}) {
    EXPECT_EQ(std::set<int64_t>(e->begin(), e->end()).size(), 36u) << "no window twice";
  }
  EXPECT_NE(std::set<int64_t>(e0.begin(), e0.end()), std::set<int64_t>(e1.begin(), e1.end()));
}

TEST_F(TokenLoaderTest, ResumeMidEpochGivesTheSameFollowingBatches) {
  TokenLoader uninterrupted(path_, options(11));
  take(uninterrupted, 13);  // into the second epoch
  const train::StateDict saved = uninterrupted.state();
  EXPECT_EQ(saved.ints.at("epoch"), 1);
  EXPECT_EQ(saved.ints.at("cursor"), 3);
  const std::vector<int64_t> expected = take(uninterrupted, 22);  // across two more epochs

  TokenLoader resumed(path_, options(999));  // the seed comes from the state
  resumed.load_state(saved);
  EXPECT_EQ(resumed.epoch(), 1);
  EXPECT_EQ(take(resumed, 22), expected);
}

TEST_F(TokenLoaderTest, StateFromOtherOptionsIsRefused) {
  TokenLoader a(path_, options());
  LoaderOptions o = options();
  o.batch_size = 5;
  TokenLoader b(path_, o);
  expect_error_contains_all([&] { b.load_state(a.state()); }, {"batch_size = 4", "batch_size = 5"});
  train::StateDict partial = a.state();
  partial.ints.erase("cursor");
  expect_error_contains([&] { a.load_state(partial); }, "no 'cursor'");
}

TEST_F(TokenLoaderTest, EvaluationWalksInOrderThenRestarts) {
  LoaderOptions o = options();
  o.batch_size = 16;
  o.mode = LoaderMode::eval;
  TokenLoader loader(path_, o);
  EXPECT_EQ(loader.batches_per_epoch(), 3);  // 16 + 16 + 8
  std::vector<int64_t> seen;
  while (!loader.exhausted()) {
    const Batch b = loader.next();
    const std::vector<int64_t> w = windows_of(b);
    seen.insert(seen.end(), w.begin(), w.end());
  }
  std::vector<int64_t> all(40);
  for (int64_t i = 0; i < 40; ++i) all[static_cast<size_t>(i)] = i;
  EXPECT_EQ(seen, all);
  expect_error_contains([&] { loader.next(); }, "restart()");
  loader.restart();
  EXPECT_EQ(windows_of(loader.next()).front(), 0);
}

TEST(TokenLoaderFiles, AcceptsUint8AndUint16Tokens) {
  test::ScratchDir dir;
  std::vector<uint16_t> wide(64);
  for (size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<uint16_t>(60000 + i);
  test::write_raw(dir.file("u16.h5"), "tokens", H5T_STD_U16LE, H5T_NATIVE_UINT16, {64}, wide.data(),
                  65536);
  TokenLoader loader16(dir.file("u16.h5"), {.batch_size = 2, .seq_len = 3, .shuffle = false});
  EXPECT_EQ(loader16.next().inputs.to_vector<int64_t>(),
            (std::vector<int64_t>{60000, 60001, 60002, 60004, 60005, 60006}));

  std::vector<uint8_t> bytes(64, 200);
  data::write_token_file(dir.file("u8.h5"), from_vector(bytes), 256);
  TokenLoader loader8(dir.file("u8.h5"), {.batch_size = 2, .seq_len = 3});
  EXPECT_EQ(loader8.next().targets.to_vector<int64_t>(), std::vector<int64_t>(6, 200));
}

TEST(TokenLoaderFiles, BadFilesNameTheFileAndTheFix) {
  test::ScratchDir dir;
  const LoaderOptions o{.batch_size = 4, .seq_len = 7};
  const std::string missing = dir.file("missing.h5");
  expect_error_contains_all([&] { TokenLoader(missing, o); }, {missing, "scripts/get_data.sh"});

  const std::string short_file = dir.file("short.h5");
  test::write_counting_tokens(short_file, 31, 100);  // 3 windows of 8 < one batch of 4
  expect_error_contains_all(
      [&] { TokenLoader(short_file, o); },
      {short_file, "31 tokens", "fewer than one batch of 4", "smaller batch_size"});

  const std::string images = dir.file("images.h5");
  test::write_numbered_images(images, 4, 2);
  expect_error_contains_all([&] { TokenLoader(images, o); },
                            {images, "no dataset 'tokens'", "scripts/get_data.sh"});

  const std::vector<float> floats(64, 1.0f);
  const std::string float_file = dir.file("floats.h5");
  test::write_raw(float_file, "tokens", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {64}, floats.data(), 10);
  expect_error_contains_all([&] { TokenLoader(float_file, o); },
                            {float_file, "float32", "uint8, uint16 or int32"});

  const std::vector<uint8_t> grid(64, 1);
  const std::string rank2 = dir.file("rank2.h5");
  test::write_raw(rank2, "tokens", H5T_STD_U8LE, H5T_NATIVE_UINT8, {8, 8}, grid.data(), 10);
  expect_error_contains_all([&] { TokenLoader(rank2, o); }, {rank2, "[8, 8]", "1-D"});

  const std::string no_vocab = dir.file("novocab.h5");
  test::write_raw(no_vocab, "tokens", H5T_STD_U8LE, H5T_NATIVE_UINT8, {64}, grid.data());
  expect_error_contains_all([&] { TokenLoader(no_vocab, o); }, {no_vocab, "vocab_size"});

  const std::string out_of_range = dir.file("range.h5");
  test::write_counting_tokens(out_of_range, 64, 100);
  io::File::open(out_of_range, io::Mode::read_write).set_attr_int("vocab_size", 50);
  expect_error_contains_all([&] { TokenLoader(out_of_range, o); },
                            {out_of_range, "token 50 is 50"});

  expect_error_contains_all([&] { make_loader(no_vocab + ".nope", o); }, {"no such file"});
}

}  // namespace
}  // namespace pit::data
