#pragma once
// GPU timing for benchmarks: CUDA events around each run after warm-up, median of many runs.
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "core/error.h"

namespace pit::bench {

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
};

// Times fn() (which queues work on the legacy default stream): `warmup` untimed runs, then
// `runs` runs each between two events; reports the median and the minimum.
inline Timing time_gpu(const std::function<void(int)>& fn, int warmup = 5, int runs = 50) {
  for (int i = 0; i < warmup; ++i) fn(i);
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> events(2 * runs);
  for (auto& e : events) PIT_CUDA_CHECK(cudaEventCreate(&e));
  for (int i = 0; i < runs; ++i) {
    PIT_CUDA_CHECK(cudaEventRecord(events[2 * i]));
    fn(warmup + i);
    PIT_CUDA_CHECK(cudaEventRecord(events[2 * i + 1]));
  }
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> ms(runs);
  for (int i = 0; i < runs; ++i) {
    float t = 0;
    PIT_CUDA_CHECK(cudaEventElapsedTime(&t, events[2 * i], events[2 * i + 1]));
    ms[i] = t;
  }
  for (auto& e : events) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return {ms[runs / 2], ms[0]};
}

}  // namespace pit::bench
