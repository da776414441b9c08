#pragma once
// Resuming a finished test run from one of its older checkpoints: pit-train refuses that while the
// checkpoints after it are in the folder (training on would mix two runs), so a test deletes them
// first, as a user would.
#include <cstdint>
#include <filesystem>
#include <string>

#include "trainer/checkpoint/checkpoint.h"

namespace pit::test {

// The path of `dir`'s checkpoint of `step`, the checkpoints after it deleted. Call it on one rank.
inline std::string older_checkpoint(const std::string& dir, int64_t step) {
  for (const auto& later : train::checkpoints_after(dir, step)) std::filesystem::remove(later);
  return (std::filesystem::path(dir) / train::checkpoint_name(step)).string();
}

}  // namespace pit::test
