#pragma once
// Batches of images and class ids from an image file (trainer/data/formats.h): inputs f32
// [B, C, H, W] with each pixel p fed as (p / 255 - mean) / std, targets i64 [B].
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/loader.h"

namespace pit::data {

class ImageLoader final : public Loader {
 public:
  // Reads the whole file. A missing dataset or attribute, a wrong type or shape, a label out of
  // range, or fewer images than one batch is an error naming the file and the fix.
  ImageLoader(const std::string& path, const LoaderOptions& options);

  int64_t num_classes() const { return num_classes_; }
  const Shape& image_shape() const { return image_shape_; }  // [C, H, W]
  double mean() const { return mean_; }
  double std() const { return std_; }

 private:
  struct Contents {
    Tensor images;  // u8 [N, C, H, W]
    Tensor labels;  // i64 [N]
    int64_t num_classes = 0;
    double mean = 0, std = 1;
  };
  static Contents load(const std::string& path, const LoaderOptions& options);
  ImageLoader(const std::string& path, const LoaderOptions& options, Contents contents);

  Batch make_batch(const std::vector<int64_t>& items) const override;

  Tensor images_;
  Tensor labels_;
  int64_t num_classes_;
  double mean_, std_;
  Shape image_shape_;
  std::array<float, 256> lut_{};  // normalised value of each pixel byte
};

}  // namespace pit::data
