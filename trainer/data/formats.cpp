#include "trainer/data/formats.h"

#include "core/error.h"

namespace pit::data {
namespace {

constexpr const char* kFix =
    "Create the data with scripts/get_data.sh (or pit-data), or point the config at a valid file";

void write_notes(const io::File& file, const Notes& notes) {
  for (const auto& [name, value] : notes) file.set_attr_string(name, value);
}

}  // namespace

void bad_data_file(const std::string& path, const std::string& problem) {
  PIT_THROW("data file ", path, ": ", problem, ". ", kFix);
}

io::File open_data_file(const std::string& path) {
  try {
    return io::File::open(path);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "\n" + kFix);  // keeps the original's location
  }
}

void write_token_file(const std::string& path, const Tensor& tokens, int64_t vocab_size,
                      const Notes& notes) {
  PIT_CHECK(tokens.dim() == 1 && (tokens.dtype() == DType::u8 || tokens.dtype() == DType::i32),
            "write_token_file(", path, "): tokens must be 1-D u8 or i32, got ",
            shape_str(tokens.shape()), " ", tokens.dtype());
  PIT_CHECK(vocab_size > 0, "write_token_file(", path, "): vocab_size must be > 0");
  io::File file = io::File::create(path);
  file.write("tokens", tokens);
  file.set_attr_int("vocab_size", vocab_size);
  write_notes(file, notes);
  file.close();
}

void write_image_file(const std::string& path, const Tensor& images, const Tensor& labels,
                      int64_t num_classes, double mean, double std, const Notes& notes) {
  PIT_CHECK(images.dim() == 4 && images.dtype() == DType::u8, "write_image_file(", path,
            "): images must be u8 [N, C, H, W], got ", shape_str(images.shape()), " ",
            images.dtype());
  PIT_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0) &&
                (labels.dtype() == DType::u8 || labels.dtype() == DType::i64),
            "write_image_file(", path, "): labels must be u8 or i64 [", images.size(0), "], got ",
            shape_str(labels.shape()), " ", labels.dtype());
  PIT_CHECK(num_classes > 0 && std > 0, "write_image_file(", path,
            "): num_classes and std must be > 0");
  io::File file = io::File::create(path);
  file.write("images", images);
  file.write("labels", labels);
  file.set_attr_int("num_classes", num_classes);
  file.set_attr_real("mean", mean);
  file.set_attr_real("std", std);
  write_notes(file, notes);
  file.close();
}

}  // namespace pit::data
