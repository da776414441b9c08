#pragma once
// The two HDF5 data file formats (docs/DATA.md describes them for people):
//
// Token stream: dataset "tokens" (uint8 for byte-level text; uint16 and int32 are accepted too),
//   shape [N]; root attribute "vocab_size" (int); every token in [0, vocab_size).
// Images: dataset "images" uint8 [N, C, H, W]; dataset "labels" uint8 or int64 [N]; root
//   attributes "num_classes" (int), "mean" and "std" (real): a pixel p is fed as
//   (p / 255 - mean) / std.
// Both may carry free-form string attributes (e.g. "source", "split") that loaders ignore.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "trainer/io/hdf5.h"

namespace pit::data {

using Notes = std::vector<std::pair<std::string, std::string>>;  // extra string attributes

// Writes a token stream file; `tokens` is 1-D u8 (stored as uint8) or i32 (stored as int32).
void write_token_file(const std::string& path, const Tensor& tokens, int64_t vocab_size,
                      const Notes& notes = {});

// Writes an image file; `images` u8 [N, C, H, W], `labels` u8 or i64 [N].
void write_image_file(const std::string& path, const Tensor& images, const Tensor& labels,
                      int64_t num_classes, double mean, double std, const Notes& notes = {});

// Opens a data file for reading; a missing or unreadable file is an error that says how to
// (re)create it.
io::File open_data_file(const std::string& path);

// Throws "data file <path>: <problem>. <how to fix it>".
[[noreturn]] void bad_data_file(const std::string& path, const std::string& problem);

}  // namespace pit::data
