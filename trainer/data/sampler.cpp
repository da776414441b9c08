#include "trainer/data/sampler.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/random.h"

namespace pit::data {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  PIT_CHECK(n >= 0 && epoch >= 0, "epoch_permutation: n (", n, ") and epoch (", epoch,
            ") must be >= 0");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    const Philox4x32 r =
        philox4x32_10(static_cast<uint64_t>(i), static_cast<uint64_t>(epoch), seed);
    const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 32) | r.v[1];
    // The modulo's bias is below (i + 1) / 2^64: immaterial for any data set.
    const auto j = static_cast<int64_t>(bits % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

Sampler::Sampler(int64_t items, int64_t batch_size, uint64_t seed, bool shuffle, bool eval,
                 std::string where)
    : items_(items),
      batch_size_(batch_size),
      seed_(seed),
      shuffle_(shuffle && !eval),
      eval_(eval),
      where_(std::move(where)) {
  PIT_CHECK(batch_size_ > 0, where_, ": batch_size must be > 0, got ", batch_size_);
  PIT_CHECK(items_ > 0, where_, ": no items to load");
  PIT_CHECK(eval_ || items_ >= batch_size_, where_, ": ", items_,
            " items are fewer than one batch of ", batch_size_);
  begin_epoch();
}

int64_t Sampler::batches_per_epoch() const {
  return eval_ ? (items_ + batch_size_ - 1) / batch_size_ : items_ / batch_size_;
}

void Sampler::begin_epoch() {
  if (shuffle_)
    order_ = epoch_permutation(items_, seed_, epoch_);
  else
    order_.clear();
}

bool Sampler::exhausted() const { return eval_ && cursor_ >= batches_per_epoch(); }

void Sampler::restart() {
  const bool new_epoch = epoch_ != 0;
  epoch_ = 0;
  cursor_ = 0;
  if (new_epoch) begin_epoch();
}

std::vector<int64_t> Sampler::next() {
  if (eval_)
    PIT_CHECK(!exhausted(), where_, ": the evaluation pass is over (", batches_per_epoch(),
              " batches); call restart() to begin another");
  if (!eval_ && cursor_ >= batches_per_epoch()) {
    ++epoch_;
    cursor_ = 0;
    begin_epoch();
  }
  const int64_t begin = cursor_ * batch_size_;
  const int64_t end = std::min(begin + batch_size_, items_);
  std::vector<int64_t> batch;
  batch.reserve(static_cast<size_t>(end - begin));
  for (int64_t k = begin; k < end; ++k)
    batch.push_back(order_.empty() ? k : order_[static_cast<size_t>(k)]);
  ++cursor_;
  return batch;
}

train::StateDict Sampler::state() const {
  train::StateDict s;
  s.ints["seed"] = static_cast<int64_t>(seed_);  // the bits of the uint64
  s.ints["epoch"] = epoch_;
  s.ints["cursor"] = cursor_;
  s.ints["items"] = items_;
  s.ints["batch_size"] = batch_size_;
  s.ints["shuffle"] = shuffle_ ? 1 : 0;
  s.ints["eval"] = eval_ ? 1 : 0;
  return s;
}

void Sampler::load_state(const train::StateDict& state) {
  auto get = [&](const char* key) {
    const auto it = state.ints.find(key);
    PIT_CHECK(it != state.ints.end(), where_, ": the loader state has no '", key,
              "' (it was not saved by a pit data loader)");
    return it->second;
  };
  auto same = [&](const char* key, int64_t mine) {
    const int64_t saved = get(key);
    PIT_CHECK(saved == mine, where_, ": the loader state was saved with ", key, " = ", saved,
              " but this loader has ", key, " = ", mine,
              "; resume with the same data file and loader options as the saved run");
  };
  same("items", items_);
  same("batch_size", batch_size_);
  same("shuffle", shuffle_ ? 1 : 0);
  same("eval", eval_ ? 1 : 0);
  const int64_t epoch = get("epoch");
  const int64_t cursor = get("cursor");
  PIT_CHECK(epoch >= 0 && cursor >= 0 && cursor <= batches_per_epoch(), where_,
            ": the loader state has epoch ", epoch, " and cursor ", cursor,
            ", outside 0..", batches_per_epoch(), " batches per epoch");
  seed_ = static_cast<uint64_t>(get("seed"));
  epoch_ = epoch;
  cursor_ = cursor;
  begin_epoch();
}

}  // namespace pit::data
