#include "core/random.h"

namespace pit {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard lock(mutex_);
  seed_ = seed;
  offset_ = 0;
}

uint64_t Generator::seed() const {
  std::lock_guard lock(mutex_);
  return seed_;
}

uint64_t Generator::offset() const {
  std::lock_guard lock(mutex_);
  return offset_;
}

void Generator::set_offset(uint64_t offset) {
  std::lock_guard lock(mutex_);
  offset_ = offset;
}

uint64_t Generator::reserve(uint64_t n) { return draw(n).offset; }

Generator::Draw Generator::draw(uint64_t n) {
  std::lock_guard lock(mutex_);
  const Draw d{seed_, offset_};
  offset_ += (n + 3) / 4;  // four 32-bit lanes per Philox block
  return d;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

}  // namespace pit
