#include "trainer/data/loader.h"

#include <utility>

#include "core/error.h"

#include "trainer/data/formats.h"
#include "trainer/data/image_loader.h"
#include "trainer/data/token_loader.h"

namespace pit::data {

Loader::Loader(std::string path, int64_t items, const LoaderOptions& options)
    : path_(std::move(path)),
      sampler_(items, options.batch_size, options.seed, options.shuffle,
               options.mode == LoaderMode::eval, "data file " + path_),
      shard_(options.mode == LoaderMode::train ? options.shard : 0),
      shards_(options.mode == LoaderMode::train ? options.shards : 1) {
  PIT_CHECK(shards_ >= 1 && shard_ >= 0 && shard_ < shards_, "data loader: shard ", shard_, " of ", shards_);
  PIT_CHECK(options.batch_size % shards_ == 0, "data.batch_size (", options.batch_size, ") must be a multiple of the ",
            shards_, " data-parallel ranks: each rank takes batch_size / ranks examples of every batch");
}

Batch Loader::next() {
  std::vector<int64_t> items = sampler_.next();
  if (shards_ > 1) {
    const auto n = static_cast<int64_t>(items.size()) / shards_;
    items = std::vector<int64_t>(items.begin() + shard_ * n, items.begin() + (shard_ + 1) * n);
  }
  return make_batch(items);
}

std::unique_ptr<Loader> make_loader(const std::string& path, const LoaderOptions& options) {
  bool tokens = false, images = false;
  {
    const io::File file = open_data_file(path);
    tokens = file.is_dataset("tokens");
    images = file.is_dataset("images");
  }
  if (tokens) return std::make_unique<TokenLoader>(path, options);
  if (images) return std::make_unique<ImageLoader>(path, options);
  bad_data_file(path, "neither a token stream (dataset 'tokens') nor an image file (dataset "
                      "'images')");
}

}  // namespace pit::data
