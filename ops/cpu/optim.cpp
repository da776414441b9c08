// CPU optimizer kernels: element loops over chunks run by parallel_for. The update formulas are
// those of ops/optim_math.h, shared with the CUDA kernels.
#include "ops/cpu/optim.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"

namespace pit::cpu {
namespace {

// Elements per parallel_for chunk: ~64 KiB of f32 per operand, enough work per task to hide the
// pool's hand-off, small enough to balance a few threads.
constexpr int64_t kGrain = 1 << 14;
// Elements per partial sum of sum_of_squares: fixed, so the order of additions (and the bits)
// depends on n alone.
constexpr int64_t kSumChunk = 1 << 14;

}  // namespace

void adamw_step(const AdamWCoeffs& c, int64_t n, float* param, const float* grad, float* exp_avg,
                float* exp_avg_sq) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) adamw_element(param[i], grad[i], exp_avg[i], exp_avg_sq[i], c);
  });
}

void sgd_step(const SgdCoeffs& c, int64_t n, float* param, const float* grad, float* buf) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    float unused = 0.0f;
    for (int64_t i = lo; i < hi; ++i) sgd_element(param[i], grad[i], buf ? buf[i] : unused, c);
  });
}

double sum_of_squares(const float* x, int64_t n) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t end = std::min(n, (k + 1) * kSumChunk);
      double s = 0.0;
      for (int64_t i = k * kSumChunk; i < end; ++i) s += static_cast<double>(x[i]) * x[i];
      partial[static_cast<size_t>(k)] = s;
    }
  });
  double total = 0.0;
  for (const double s : partial) total += s;
  return total;
}

void scale(float* x, int64_t n, float s) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) x[i] *= s;
  });
}

bool scale_and_check(float* x, int64_t n, float s) {
  std::atomic<bool> found{false};
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    bool bad = false;
    for (int64_t i = lo; i < hi; ++i) {
      x[i] *= s;
      bad |= !std::isfinite(x[i]);
    }
    if (bad) found.store(true, std::memory_order_relaxed);
  });
  return found.load();
}

}  // namespace pit::cpu
