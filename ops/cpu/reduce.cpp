// CPU reductions over the middle dim of a strided [outer, mid, inner] view (see reduce.h).
//
// Two loop shapes, chosen by the layout:
// - runs: every output reduces one run of `mid` elements (contiguous when the mid stride is 1),
//   spread over kLanes independent accumulators so that the widening and the adds pipeline;
// - columns: the inner dim is contiguous and the mid dim is not (e.g. column sums of a
//   row-major matrix). A task takes kColumns neighbouring outputs and walks the mid dim once,
//   updating one accumulator per column, so every load is a contiguous row segment.
// Every output is computed by one task in a fixed order: results do not depend on the number
// of threads.
#include "ops/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "core/thread_pool.h"

namespace pit::cpu {
namespace {

// Elements per parallel_for chunk below which waking the pool does not pay.
constexpr int64_t kGrain = 1 << 15;
// Independent accumulators per output in the run layout (enough to hide the add latency).
constexpr int kLanes = 8;
// Outputs per task in the column layout: 64 accumulators stay in L1 with room to spare.
constexpr int64_t kColumns = 64;

// A reducer R provides:
//   State init();  void step(State&, double v, int64_t m, int64_t j);
//   State merge(State a, State b);    (a covers earlier positions than b where order matters)
//   void finish(int64_t j, State s);  j = o * inner + i
template <typename T, typename R>
void fold(const View3& x, R& r) {
  using State = decltype(r.init());
  const T* p = static_cast<const T*>(x.data);
  const int64_t outer = x.sizes[0], mid = x.sizes[1], inner = x.sizes[2];
  const int64_t so = x.strides[0], sm = x.strides[1], si = x.strides[2];
  const int64_t outputs = outer * inner;
  const bool columns = inner > 1 && si == 1 && sm != 1 && mid > 1;

  if (!columns) {
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(mid, 1));
    parallel_for(0, outputs, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        const T* base = p + (j / inner) * so + (j % inner) * si;
        State lane[kLanes];
        for (State& s : lane) s = r.init();
        int64_t m = 0;
        if (sm == 1) {
          for (; m + kLanes <= mid; m += kLanes)
            for (int k = 0; k < kLanes; ++k)
              r.step(lane[k], convert<double>(base[m + k]), m + k, j);
        } else {
          for (; m + kLanes <= mid; m += kLanes)
            for (int k = 0; k < kLanes; ++k)
              r.step(lane[k], convert<double>(base[(m + k) * sm]), m + k, j);
        }
        for (; m < mid; ++m) r.step(lane[m % kLanes], convert<double>(base[m * sm]), m, j);
        // Fixed pairwise tree over the lanes: lane k holds positions = k (mod kLanes).
        for (int width = kLanes / 2; width > 0; width /= 2)
          for (int k = 0; k < width; ++k) lane[k] = r.merge(lane[k], lane[k + width]);
        r.finish(j, lane[0]);
      }
    });
    return;
  }

  const int64_t chunks = (inner + kColumns - 1) / kColumns;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(mid * kColumns, 1));
  parallel_for(0, outer * chunks, grain, [&](int64_t lo, int64_t hi) {
    State acc[kColumns];
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t o = task / chunks, i0 = (task % chunks) * kColumns;
      const int64_t n = std::min(kColumns, inner - i0), j0 = o * inner + i0;
      for (int64_t c = 0; c < n; ++c) acc[c] = r.init();
      for (int64_t m = 0; m < mid; ++m) {
        const T* row = p + o * so + m * sm + i0;
        for (int64_t c = 0; c < n; ++c) r.step(acc[c], convert<double>(row[c]), m, j0 + c);
      }
      for (int64_t c = 0; c < n; ++c) r.finish(j0 + c, acc[c]);
    }
  });
}

// Sum of term(v, j) over mid; finish(j, total).
template <typename Term, typename Finish>
struct SumReducer {
  Term term;
  Finish fin;
  double init() const { return 0.0; }
  void step(double& s, double v, int64_t, int64_t j) const { s += term(v, j); }
  double merge(double a, double b) const { return a + b; }
  void finish(int64_t j, double s) const { fin(j, s); }
};
template <typename Term, typename Finish>
SumReducer(Term, Finish) -> SumReducer<Term, Finish>;

struct MaxState {
  double value;
  int64_t index;  // -1: nothing seen yet
};

// Whether (v, i) should replace the current best: larger, or equal and earlier; NaN is larger
// than any number, and between NaNs the earlier wins.
inline bool better(const MaxState& best, double v, int64_t i) {
  if (best.index < 0) return true;
  const bool best_nan = std::isnan(best.value), v_nan = std::isnan(v);
  if (best_nan || v_nan) return v_nan && (!best_nan || i < best.index);
  return v > best.value || (v == best.value && i < best.index);
}

template <typename T>
struct MaxReducer {
  T* values;
  int64_t* indices;
  MaxState init() const { return {-std::numeric_limits<double>::infinity(), -1}; }
  void step(MaxState& s, double v, int64_t m, int64_t) const {
    if (better(s, v, m)) s = {v, m};
  }
  MaxState merge(MaxState a, MaxState b) const {
    return b.index >= 0 && better(a, b.value, b.index) ? b : a;
  }
  void finish(int64_t j, MaxState s) const {
    values[j] = convert<T>(s.value);  // exact: the value came from a T
    indices[j] = s.index;
  }
};

}  // namespace

void reduce_sum(const View3& x, void* out, double scale) {
  dispatch_floating(x.dtype, "sum", [&]<typename T>() {
    T* o = static_cast<T*>(out);
    SumReducer r{[](double v, int64_t) { return v; },
                 [o, scale](int64_t j, double s) { o[j] = convert<T>(s * scale); }};
    fold<T>(x, r);
  });
}

// Two passes in f64: the means, then the sum of squared deviations from them (no cancellation).
void reduce_var(const View3& x, void* out, int64_t correction) {
  dispatch_floating(x.dtype, "var", [&]<typename T>() {
    const int64_t mid = x.sizes[1];
    std::vector<double> means(static_cast<size_t>(x.sizes[0] * x.sizes[2]));
    double* mp = means.data();
    const double inv = 1.0 / static_cast<double>(mid);
    SumReducer mean_r{[](double v, int64_t) { return v; },
                      [mp, inv](int64_t j, double s) { mp[j] = s * inv; }};
    fold<T>(x, mean_r);
    T* o = static_cast<T*>(out);
    const double denom = static_cast<double>(std::max<int64_t>(0, mid - correction));
    SumReducer dev_r{[mp](double v, int64_t j) {
                       const double d = v - mp[j];
                       return d * d;
                     },
                     [o, denom](int64_t j, double s) { o[j] = convert<T>(s / denom); }};
    fold<T>(x, dev_r);
  });
}

void reduce_max(const View3& x, void* values, int64_t* indices) {
  dispatch_floating(x.dtype, "max", [&]<typename T>() {
    MaxReducer<T> r{static_cast<T*>(values), indices};
    fold<T>(x, r);
  });
}

}  // namespace pit::cpu
