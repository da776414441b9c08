#include "trainer/data/image_loader.h"

#include <cmath>
#include <utility>

#include "core/error.h"
#include "trainer/data/formats.h"

namespace pit::data {

ImageLoader::Contents ImageLoader::load(const std::string& path, const LoaderOptions& options) {
  PIT_CHECK(options.batch_size > 0, "ImageLoader(", path, "): batch_size must be > 0, got ",
            options.batch_size);
  io::File file = open_data_file(path);
  for (const char* name : {"images", "labels"})
    if (!file.is_dataset(name))
      bad_data_file(path, std::string("no dataset '") + name + "' (is it an image file?)");
  for (const char* name : {"num_classes", "mean", "std"})
    if (!file.has_attr(name)) bad_data_file(path, std::string("no attribute '") + name + "'");

  const io::DatasetInfo images = file.info("images");
  if (images.type != "uint8" || images.shape.size() != 4)
    bad_data_file(path, "dataset 'images' is " + images.type + " " + shape_str(images.shape) +
                            "; it must be uint8 [N, C, H, W]");
  const io::DatasetInfo labels = file.info("labels");
  if ((labels.type != "uint8" && labels.type != "int64") || labels.shape.size() != 1 ||
      labels.shape[0] != images.shape[0])
    bad_data_file(path, "dataset 'labels' is " + labels.type + " " + shape_str(labels.shape) +
                            "; it must be uint8 or int64 [" + std::to_string(images.shape[0]) +
                            "], one per image");

  Contents out;
  out.num_classes = file.attr_int("num_classes");
  out.mean = file.attr_real("mean");
  out.std = file.attr_real("std");
  if (out.num_classes <= 0) bad_data_file(path, "num_classes must be > 0");
  if (!(out.std > 0) || !std::isfinite(out.std) || !std::isfinite(out.mean))
    bad_data_file(path, "mean and std must be finite and std > 0");

  const int64_t n = images.shape[0];
  const int64_t needed = options.mode == LoaderMode::eval ? 1 : options.batch_size;
  if (n < needed)
    PIT_THROW(
        "data file ", path, " holds ", n, " images, fewer than ",
        options.mode == LoaderMode::eval ? std::string("one")
                                         : "one batch of " + std::to_string(needed),
        ". Use a smaller batch_size, or a bigger file (scripts/get_data.sh makes data/mnist/)");

  out.images = file.read("images");
  out.labels = file.read("labels", DType::i64);
  const int64_t* l = out.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    if (l[i] < 0 || l[i] >= out.num_classes)
      bad_data_file(path, "label " + std::to_string(i) + " is " + std::to_string(l[i]) +
                              ", outside [0, num_classes = " + std::to_string(out.num_classes) +
                              ")");
  return out;
}

ImageLoader::ImageLoader(const std::string& path, const LoaderOptions& options)
    : ImageLoader(path, options, load(path, options)) {}

ImageLoader::ImageLoader(const std::string& path, const LoaderOptions& options, Contents contents)
    : Loader(path, contents.images.size(0), options),
      images_(std::move(contents.images)),
      labels_(std::move(contents.labels)),
      num_classes_(contents.num_classes),
      mean_(contents.mean),
      std_(contents.std),
      image_shape_(images_.shape().begin() + 1, images_.shape().end()) {
  for (int p = 0; p < 256; ++p) lut_[p] = static_cast<float>((p / 255.0 - mean_) / std_);
}

Batch ImageLoader::make_batch(const std::vector<int64_t>& items) const {
  const auto b = static_cast<int64_t>(items.size());
  const int64_t pixels = shape_numel(image_shape_);
  Shape shape{b};
  shape.insert(shape.end(), image_shape_.begin(), image_shape_.end());
  Batch batch{Tensor::empty(shape, DType::f32), Tensor::empty({b}, DType::i64)};
  const uint8_t* images = images_.data<uint8_t>();
  const int64_t* labels = labels_.data<int64_t>();
  float* inputs = batch.inputs.data<float>();
  int64_t* targets = batch.targets.data<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const int64_t item = items[static_cast<size_t>(r)];
    const uint8_t* src = images + item * pixels;
    for (int64_t k = 0; k < pixels; ++k) inputs[r * pixels + k] = lut_[src[k]];
    targets[r] = labels[item];
  }
  return batch;
}

}  // namespace pit::data
