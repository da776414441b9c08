#include "ops/cpu/index.h"

#include "core/convert.h"
#include "core/thread_pool.h"

namespace pit::cpu {
namespace {

inline int64_t checked_index(int64_t v, int64_t n) {
  PIT_CHECK(v >= -n && v < n, "index ", v, " is out of range for a dim of size ", n);
  return v < 0 ? v + n : v;
}

}  // namespace

void gather(const Tensor& x, const Tensor& index, const int64_t is[3], Tensor& out, int64_t outer,
            int64_t n, int64_t m, int64_t inner) {
  const int64_t* idx = index.data<int64_t>();
  dispatch(x.dtype(), "gather", [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = out.data<T>();
    parallel_for(0, outer * m, std::max<int64_t>(1, 4096 / std::max<int64_t>(inner, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t r = lo; r < hi; ++r) {
                     const int64_t oo = r / m, j = r % m;
                     for (int64_t i = 0; i < inner; ++i) {
                       const int64_t k = checked_index(idx[oo * is[0] + j * is[1] + i * is[2]], n);
                       o[r * inner + i] = in[(oo * n + k) * inner + i];
                     }
                   }
                 });
  });
}

void scatter_add(Tensor& out, const Tensor& index, const int64_t is[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner) {
  const int64_t* idx = index.data<int64_t>();
  dispatch_floating(out.dtype(), "scatter_add", [&]<typename T>() {
    using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* s = src.data<T>();
    T* o = out.data<T>();
    // Each (outer, inner) column is owned by one thread, so no two threads add to one element;
    // additions happen in j order: deterministic.
    parallel_for(0, outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(m, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t c = lo; c < hi; ++c) {
                     const int64_t oo = c / inner, i = c % inner;
                     for (int64_t j = 0; j < m; ++j) {
                       const int64_t k = checked_index(idx[oo * is[0] + j * is[1] + i * is[2]], n);
                       T& dst = o[(oo * n + k) * inner + i];
                       dst = convert<T>(convert<C>(dst) + convert<C>(s[(oo * m + j) * inner + i]));
                     }
                   }
                 });
  });
}

}  // namespace pit::cpu
