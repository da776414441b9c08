#pragma once
// The order in which a loader visits its items (token windows or images).
//
// Training: epoch e visits the items in the order of a permutation drawn from (seed, e) with
// Philox (identity when shuffle is off), in full batches; the items past the last full batch
// are skipped that epoch (a different few each epoch when shuffling). next() never runs out:
// after the last batch of an epoch comes the first of the next.
// Evaluation: one pass over the items in order, the last batch possibly partial; then
// exhausted() is true until restart().
//
// The position is (seed, epoch, cursor = batches taken this epoch): a Sampler restored from
// state() hands out exactly the batches the saved one would have.
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/state.h"

namespace pit::data {

// A uniformly random permutation of 0..n-1, a function of (seed, epoch) only: Fisher-Yates where
// step i draws 64 bits from Philox4x32-10 with key `seed` and counter (i, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

class Sampler {
 public:
  // `where` names the data file in error messages.
  Sampler(int64_t items, int64_t batch_size, uint64_t seed, bool shuffle, bool eval,
          std::string where);

  std::vector<int64_t> next();  // the item indices of the next batch
  bool exhausted() const;       // evaluation only: the pass is over
  void restart();               // back to the first batch (of epoch 0)

  int64_t items() const { return items_; }
  int64_t batch_size() const { return batch_size_; }
  int64_t epoch() const { return epoch_; }
  int64_t cursor() const { return cursor_; }
  int64_t batches_per_epoch() const;
  uint64_t seed() const { return seed_; }

  // ints: seed, epoch, cursor, and items, batch_size, shuffle, eval to check the state fits.
  train::StateDict state() const;
  // Throws naming the key when the state is incomplete, or was saved for other data or options.
  void load_state(const train::StateDict& state);

 private:
  void begin_epoch();

  int64_t items_;
  int64_t batch_size_;
  uint64_t seed_;
  bool shuffle_;
  bool eval_;
  std::string where_;
  int64_t epoch_ = 0;
  int64_t cursor_ = 0;
  std::vector<int64_t> order_;  // this epoch's permutation; empty means in order
};

}  // namespace pit::data
