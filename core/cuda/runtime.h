#pragma once
// Internal helpers for core/cuda sources that include the CUDA runtime.
#include <cuda_runtime.h>

#include "core/device.h"
#include "core/error.h"

namespace pit::cuda {

inline cudaStream_t native(StreamRef s) { return static_cast<cudaStream_t>(s.handle); }

// Multiprocessors of `device`, queried once per device.
int sm_count(int device);

// Makes `index` the current CUDA device until the guard dies.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    PIT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != index) PIT_CUDA_CHECK(cudaSetDevice(index));
  }
  ~DeviceGuard() {
    int now = -1;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace pit::cuda
