#pragma once
// GPU timing for benchmarks: CUDA events around each run after warm-up, median of many runs.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pit::bench {

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
  // Host time per run to queue it (fn plus its two event records; time_gpu only): when it comes
  // near median_ms, the GPU waited for the host and the time is the host's, not the kernel's.
  double host_ms = 0;
};

// Times fn() (which queues work on the legacy default stream): `warmup` untimed runs, then
// `runs` runs each between two events; reports the median and the minimum.
inline Timing time_gpu(const std::function<void(int)>& fn, int warmup = 5, int runs = 50) {
  for (int i = 0; i < warmup; ++i) fn(i);
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> events(2 * runs);
  for (auto& e : events) PIT_CUDA_CHECK(cudaEventCreate(&e));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) {
    PIT_CUDA_CHECK(cudaEventRecord(events[2 * i]));
    fn(warmup + i);
    PIT_CUDA_CHECK(cudaEventRecord(events[2 * i + 1]));
  }
  const double host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / runs;
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> ms(runs);
  for (int i = 0; i < runs; ++i) {
    float t = 0;
    PIT_CUDA_CHECK(cudaEventElapsedTime(&t, events[2 * i], events[2 * i + 1]));
    ms[i] = t;
  }
  for (auto& e : events) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return {ms[runs / 2], ms[0], host_ms};
}

// Times a() and b() alternately (a, b, a, b, ...) so that both see the same clocks and
// temperature: comparing two implementations measured one after the other let the GPU's
// boost-clock drift (e.g. right after a heavy GEMM) favour whichever ran second. All runs are
// queued back to back between events, with one synchronisation at the end, so the host stays
// ahead of the GPU and each time is the device's (as in time_gpu): a synchronisation after every
// pair made each run start on an idle GPU and counted the host's launch latency in it, which
// penalised whichever side does more host work per call.
inline std::pair<Timing, Timing> time_gpu_pair(const std::function<void(int)>& a,
                                               const std::function<void(int)>& b, int warmup = 5,
                                               int runs = 50) {
  for (int i = 0; i < warmup; ++i) {
    a(i);
    b(i);
  }
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> e(2 * runs + 1);
  for (auto& ev : e) PIT_CUDA_CHECK(cudaEventCreate(&ev));
  PIT_CUDA_CHECK(cudaEventRecord(e[0]));
  for (int i = 0; i < runs; ++i) {
    a(warmup + i);
    PIT_CUDA_CHECK(cudaEventRecord(e[2 * i + 1]));
    b(warmup + i);
    PIT_CUDA_CHECK(cudaEventRecord(e[2 * i + 2]));
  }
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> ms_a(runs), ms_b(runs);
  for (int i = 0; i < runs; ++i) {
    float ta = 0, tb = 0;
    PIT_CUDA_CHECK(cudaEventElapsedTime(&ta, e[2 * i], e[2 * i + 1]));
    PIT_CUDA_CHECK(cudaEventElapsedTime(&tb, e[2 * i + 1], e[2 * i + 2]));
    ms_a[i] = ta;
    ms_b[i] = tb;
  }
  for (auto& ev : e) cudaEventDestroy(ev);
  const auto summary = [](std::vector<double>& ms) {
    std::sort(ms.begin(), ms.end());
    return Timing{ms[ms.size() / 2], ms[0]};
  };
  return {summary(ms_a), summary(ms_b)};
}

}  // namespace pit::bench
