#include "trainer/data/loader.h"

#include <utility>

#include "trainer/data/formats.h"
#include "trainer/data/image_loader.h"
#include "trainer/data/token_loader.h"

namespace pit::data {

Loader::Loader(std::string path, int64_t items, const LoaderOptions& options)
    : path_(std::move(path)),
      sampler_(items, options.batch_size, options.seed, options.shuffle,
               options.mode == LoaderMode::eval, "data file " + path_) {}

Batch Loader::next() { return make_batch(sampler_.next()); }

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
