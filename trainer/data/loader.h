#pragma once
// Batch and the Loader interface every data set speaks. Batches are made on the CPU; the
// trainer moves them to its device. A loader's position is a StateDict (seed, epoch, cursor), so
// a run resumed from a checkpoint sees exactly the batches the uninterrupted run would have.
//
//   auto loader = data::make_loader("data/brown/brown_train.h5", {.batch_size = 16, .seq_len =
//   256}); data::Batch b = loader->next();           // inputs i64 [16, 256], targets i64 [16, 256]
//   checkpoint_state.merge("data", loader->state());
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "trainer/data/sampler.h"
#include "trainer/state.h"

namespace pit::data {

struct Batch {
  Tensor inputs;   // tokens: i64 [B, T]; images: f32 [B, C, H, W], normalised
  Tensor targets;  // tokens: i64 [B, T], the inputs shifted by one; images: i64 [B] class ids
};

enum class LoaderMode {
  train,  // endless, epoch after epoch, full batches, shuffled unless shuffle = false
  eval,   // one pass in file order (the last batch may be smaller); restart() for another
};

struct LoaderOptions {
  int64_t batch_size = 32;
  int64_t seq_len = 128;  // token files: tokens per sequence (T); image files ignore it
  uint64_t seed = 0;      // the shuffle of epoch e is a function of (seed, e) only
  bool shuffle = true;    // training order; evaluation is always in order
  LoaderMode mode = LoaderMode::train;
  // Data parallelism (train mode): every rank walks the same batches and takes its share of each,
  // rows [shard * b / shards, (shard + 1) * b / shards) of the batch_size b; b must split evenly.
  int shard = 0, shards = 1;
};

class Loader {
 public:
  virtual ~Loader() = default;
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  Batch next();  // evaluation: throws once exhausted(); data parallel: this rank's share
  bool exhausted() const { return sampler_.exhausted(); }
  void restart() { sampler_.restart(); }

  int64_t epoch() const { return sampler_.epoch(); }
  int64_t cursor() const { return sampler_.cursor(); }  // batches taken in this epoch
  int64_t batches_per_epoch() const { return sampler_.batches_per_epoch(); }
  int64_t size() const { return sampler_.items(); }     // windows or images in the file
  const std::string& path() const { return path_; }

  train::StateDict state() const { return sampler_.state(); }
  // Throws when the state was saved for another file size, batch size or mode.
  void load_state(const train::StateDict& state) { sampler_.load_state(state); }

 protected:
  Loader(std::string path, int64_t items, const LoaderOptions& options);
  // The batch holding `items` (indices into the file's windows or images).
  virtual Batch make_batch(const std::vector<int64_t>& items) const = 0;

 private:
  std::string path_;
  Sampler sampler_;
  int shard_ = 0, shards_ = 1;
};

// A TokenLoader or an ImageLoader, by what the file holds ("tokens" or "images").
std::unique_ptr<Loader> make_loader(const std::string& path, const LoaderOptions& options);

}  // namespace pit::data
