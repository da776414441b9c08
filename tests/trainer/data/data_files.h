#pragma once
// Small generated data files for the loader tests.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "trainer/data/formats.h"

namespace pit::test {

// A token stream whose token i is i % vocab, so a window is recognisable by its first token.
inline void write_counting_tokens(const std::string& path, int64_t n, int64_t vocab) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>(i % vocab);
  data::write_token_file(path, from_vector(tokens), vocab);
}

// An image file of n images [1, 2, 3]: every pixel of image i is i, its label i % classes.
inline void write_numbered_images(const std::string& path, int64_t n, int64_t classes,
                                  double mean = 0.5, double std = 0.25) {
  std::vector<uint8_t> pixels, labels;
  for (int64_t i = 0; i < n; ++i) {
    pixels.insert(pixels.end(), 6, static_cast<uint8_t>(i));
    labels.push_back(static_cast<uint8_t>(i % classes));
  }
  data::write_image_file(path, from_vector(pixels, {n, 1, 2, 3}), from_vector(labels), classes,
                         mean, std);
}

// A file with one dataset of any HDF5 type and shape, and optionally a vocab_size attribute,
// written with the C API (for types pit cannot write, and broken files).
inline void write_raw(const std::string& path, const char* name, hid_t file_type, hid_t mem_type,
                      const std::vector<hsize_t>& dims, const void* data, int64_t vocab = 0) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t set = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(set, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (vocab > 0) {
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t attr =
        H5Acreate2(file, "vocab_size", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &vocab);
    H5Aclose(attr);
    H5Sclose(scalar);
  }
  H5Dclose(set);
  H5Sclose(space);
  H5Fclose(file);
}

}  // namespace pit::test
