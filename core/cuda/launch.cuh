#pragma once
// Launch geometry shared by the simple element-wise kernels of core/cuda.
#include <algorithm>
#include <cstdint>

namespace pit::cuda {

// 256 threads: a multiple of the warp size that keeps 8 blocks per SM resident on Hopper.
inline constexpr unsigned kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill every SM many times over,
// capped so that huge tensors loop instead of launching millions of blocks.
inline unsigned grid_for(int64_t n, unsigned threads) {
  const int64_t wanted = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(wanted, 1, int64_t{132} * 64));
}

}  // namespace pit::cuda
