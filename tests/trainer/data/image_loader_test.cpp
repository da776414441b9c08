// ImageLoader: normalisation, labels, shuffles, resume, evaluation and bad files; make_loader.
#include "trainer/data/image_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/core/expect_error.h"
#include "tests/trainer/data/data_files.h"
#include "tests/trainer/data/scratch_dir.h"
#include "trainer/data/token_loader.h"

namespace pit::data {
namespace {

using test::expect_error_contains_all;

// The image numbers of a batch (every pixel of image i is i), after checking the normalisation
// and the labels.
std::vector<int64_t> images_of(const Batch& b, double mean, double std, int64_t classes) {
  EXPECT_EQ(b.inputs.dtype(), DType::f32);
  EXPECT_EQ(b.targets.dtype(), DType::i64);
  const int64_t n = b.inputs.size(0);
  EXPECT_EQ(b.inputs.shape(), (Shape{n, 1, 2, 3}));
  const std::vector<float> x = b.inputs.to_vector<float>();
  const std::vector<int64_t> y = b.targets.to_vector<int64_t>();
  std::vector<int64_t> ids;
  for (int64_t r = 0; r < n; ++r) {
    const double value = x[static_cast<size_t>(r * 6)] * std + mean;  // = pixel / 255
    const auto id = static_cast<int64_t>(std::lround(value * 255));
    for (int k = 0; k < 6; ++k)
      EXPECT_FLOAT_EQ(x[static_cast<size_t>(r * 6 + k)],
                      static_cast<float>((id / 255.0 - mean) / std));
    EXPECT_EQ(y[static_cast<size_t>(r)], id % classes);
    ids.push_back(id);
  }
  return ids;
}

TEST(ImageLoader, NormalisesAndShufflesEveryImageOncePerEpoch) {
  test::ScratchDir dir;
  const std::string path = dir.file("img.h5");
  test::write_numbered_images(path, 20, 3, 0.5, 0.25);
  ImageLoader loader(path, {.batch_size = 5, .seed = 4});
  EXPECT_EQ(loader.num_classes(), 3);
  EXPECT_EQ(loader.image_shape(), (Shape{1, 2, 3}));
  std::vector<int64_t> epoch0, epoch1;
  for (int i = 0; i < 4; ++i) {
    const auto ids = images_of(loader.next(), 0.5, 0.25, 3);
    epoch0.insert(epoch0.end(), ids.begin(), ids.end());
  }
  for (int i = 0; i < 4; ++i) {
    const auto ids = images_of(loader.next(), 0.5, 0.25, 3);
    epoch1.insert(epoch1.end(), ids.begin(), ids.end());
  }
  EXPECT_NE(epoch0, epoch1);
  std::sort(epoch0.begin(), epoch0.end());
  std::sort(epoch1.begin(), epoch1.end());
  for (int64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(epoch0[static_cast<size_t>(i)], i);
    EXPECT_EQ(epoch1[static_cast<size_t>(i)], i);
  }
}

TEST(ImageLoader, ResumeAndEvaluation) {
  test::ScratchDir dir;
  const std::string path = dir.file("img.h5");
  test::write_numbered_images(path, 20, 4);
  ImageLoader a(path, {.batch_size = 3, .seed = 9});
  for (int i = 0; i < 8; ++i) a.next();
  ImageLoader b(path, {.batch_size = 3, .seed = 9});
  b.load_state(a.state());
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(images_of(a.next(), 0.5, 0.25, 4), images_of(b.next(), 0.5, 0.25, 4));

  ImageLoader eval(path, {.batch_size = 8, .mode = LoaderMode::eval});
  std::vector<int64_t> seen;
  while (!eval.exhausted()) {
    const auto ids = images_of(eval.next(), 0.5, 0.25, 4);
    seen.insert(seen.end(), ids.begin(), ids.end());
  }
  ASSERT_EQ(seen.size(), 20u);
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], i);
}

TEST(ImageLoader, BadFilesNameTheFileAndTheProblem) {
  test::ScratchDir dir;
  const LoaderOptions o{.batch_size = 4};
  const std::string few = dir.file("few.h5");
  test::write_numbered_images(few, 3, 2);
  expect_error_contains_all([&] { ImageLoader(few, o); },
                            {few, "3 images", "fewer than one batch of 4"});

  const std::string range = dir.file("range.h5");
  test::write_numbered_images(range, 8, 4);
  io::File::open(range, io::Mode::read_write).set_attr_int("num_classes", 3);
  expect_error_contains_all([&] { ImageLoader(range, o); },
                            {range, "label 3 is 3", "num_classes = 3"});

  const std::string rank = dir.file("rank.h5");
  const std::vector<uint8_t> pixels(48, 0);
  test::write_raw(rank, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, {8, 6}, pixels.data());
  {
    io::File f = io::File::open(rank, io::Mode::read_write);
    f.write("labels", zeros({8}, DType::u8));
    f.set_attr_int("num_classes", 2);
    f.set_attr_real("mean", 0);
    f.set_attr_real("std", 1);
  }
  expect_error_contains_all([&] { ImageLoader(rank, o); }, {rank, "uint8 [8, 6]", "[N, C, H, W]"});

  const std::string labels = dir.file("labels.h5");
  test::write_numbered_images(labels, 8, 2);
  {
    io::File f = io::File::create(labels);
    f.write("images", zeros({8, 1, 2, 3}, DType::u8));
    f.write("labels", zeros({7}, DType::i64));
    f.set_attr_int("num_classes", 2);
  }
  expect_error_contains_all([&] { ImageLoader(labels, o); }, {labels, "no attribute 'mean'"});
  {
    io::File f = io::File::open(labels, io::Mode::read_write);
    f.set_attr_real("mean", 0);
    f.set_attr_real("std", 1);
  }
  expect_error_contains_all([&] { ImageLoader(labels, o); },
                            {labels, "labels", "[7]", "one per image"});
}

TEST(MakeLoader, PicksTheLoaderByContents) {
  test::ScratchDir dir;
  test::write_numbered_images(dir.file("img.h5"), 8, 2);
  test::write_counting_tokens(dir.file("tok.h5"), 100, 100);
  const LoaderOptions o{.batch_size = 2, .seq_len = 4};
  EXPECT_NE(dynamic_cast<ImageLoader*>(make_loader(dir.file("img.h5"), o).get()), nullptr);
  EXPECT_NE(dynamic_cast<TokenLoader*>(make_loader(dir.file("tok.h5"), o).get()), nullptr);
  {
    io::File f = io::File::create(dir.file("other.h5"));
    f.write("x", zeros({2}));
  }
  expect_error_contains_all([&] { make_loader(dir.file("other.h5"), o); },
                            {"neither a token stream", "scripts/get_data.sh"});
}

}  // namespace
}  // namespace pit::data
