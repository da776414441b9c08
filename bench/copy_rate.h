#pragma once
// The memory roofline of the benchmarks: bytes per second (read + written) of a device-to-device
// copy of `bytes` bytes, median of timed runs.
#include <cuda_runtime.h>

#include <cstdint>

#include "bench/timer.h"
#include "core/core.h"

namespace pit::bench {

inline double copy_bandwidth(int64_t bytes) {
  // Random contents (bytes is a multiple of 4), as the benchmarks' operands have.
  Tensor a = rand({bytes / 4}, DType::f32, Device::cuda()), b = Tensor::empty({bytes / 4}, DType::f32, Device::cuda());
  const Timing t = time_gpu([&](int) {
    PIT_CUDA_CHECK(cudaMemcpyAsync(b.data_ptr(), a.data_ptr(), bytes, cudaMemcpyDeviceToDevice, nullptr));
  });
  return 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e-3);
}

}  // namespace pit::bench
