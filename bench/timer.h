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
//
// With `flush` (e.g. l2_flush below), it runs untimed before each run of either side, between its
// own events: each side then starts with nothing of its operands in the L2.
inline std::pair<Timing, Timing> time_gpu_pair(const std::function<void(int)>& a,
                                               const std::function<void(int)>& b, int warmup = 5,
                                               int runs = 50, const std::function<void()>& flush = {}) {
  for (int i = 0; i < warmup; ++i) {
    a(i);
    b(i);
  }
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  // Events: a's start and end, then b's start and end, for each run (a's start is b's end of
  // the run before when nothing runs between them).
  std::vector<cudaEvent_t> e(4 * runs);
  for (auto& ev : e) PIT_CUDA_CHECK(cudaEventCreate(&ev));
  for (int i = 0; i < runs; ++i) {
    if (flush) flush();
    if (flush || i == 0) PIT_CUDA_CHECK(cudaEventRecord(e[4 * i]));
    a(warmup + i);
    PIT_CUDA_CHECK(cudaEventRecord(e[4 * i + 1]));
    if (flush) flush();
    PIT_CUDA_CHECK(cudaEventRecord(e[4 * i + 2]));
    b(warmup + i);
    PIT_CUDA_CHECK(cudaEventRecord(e[4 * i + 3]));
  }
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> ms_a(runs), ms_b(runs);
  for (int i = 0; i < runs; ++i) {
    float ta = 0, tb = 0;
    const cudaEvent_t a_start = flush || i == 0 ? e[4 * i] : e[4 * (i - 1) + 3];
    const cudaEvent_t b_start = flush ? e[4 * i + 2] : e[4 * i + 1];
    PIT_CUDA_CHECK(cudaEventElapsedTime(&ta, a_start, e[4 * i + 1]));
    PIT_CUDA_CHECK(cudaEventElapsedTime(&tb, b_start, e[4 * i + 3]));
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

// A flush for time_gpu_pair: writes a buffer of twice the L2 on the default stream, which evicts
// whatever the run before left there.
class L2Flush {
 public:
  L2Flush() {
    int dev = 0, l2 = 0;
    PIT_CUDA_CHECK(cudaGetDevice(&dev));
    PIT_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    bytes_ = 2 * static_cast<size_t>(l2);
    PIT_CUDA_CHECK(cudaMalloc(&buf_, bytes_));
  }
  ~L2Flush() { cudaFree(buf_); }
  L2Flush(const L2Flush&) = delete;
  L2Flush& operator=(const L2Flush&) = delete;
  void operator()() const { PIT_CUDA_CHECK(cudaMemsetAsync(buf_, ++value_ & 0xff, bytes_, nullptr)); }

 private:
  void* buf_ = nullptr;
  size_t bytes_ = 0;
  mutable int value_ = 0;
};

}  // namespace pit::bench
