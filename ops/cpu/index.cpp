#include "ops/cpu/index.h"

#include "core/convert.h"
#include "core/thread_pool.h"

namespace pit::cpu {
namespace {

inline int64_t checked_index(int64_t v, int64_t n, const IndexSite& site, int64_t element) {
  PIT_CHECK(v >= -n && v < n, "index ", v, " is out of range for ", site.op, " along dim ", site.dim, " of size ", n,
            " (valid: [", -n, ", ", n, "); at index element ", element, "); fix the index");
  return v < 0 ? v + n : v;
}

// The sums of scatter_add into o (of the accumulation type A: T itself, or f32 for f16/bf16).
template <typename T, typename A>
void scatter_add_into(A* o, const T* s, const int64_t* idx, const int64_t is[3], int64_t outer, int64_t n,
                      int64_t m, int64_t inner, const IndexSite& site) {
  // Each (outer, inner) column is owned by one thread, so no two threads add to one element;
  // additions happen in j order: deterministic.
  parallel_for(0, outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(m, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t oo = c / inner, i = c % inner;
      for (int64_t j = 0; j < m; ++j) {
        const int64_t e = oo * is[0] + j * is[1] + i * is[2];
        const int64_t k = checked_index(idx[e], n, site, e);
        o[(oo * n + k) * inner + i] += convert<A>(s[(oo * m + j) * inner + i]);
      }
    }
  });
}

}  // namespace

void gather(const Tensor& x, const Tensor& index, const int64_t is[3], Tensor& out, int64_t outer,
            int64_t n, int64_t m, int64_t inner, IndexSite site) {
  const int64_t* idx = index.data<int64_t>();
  dispatch(x.dtype(), "gather", [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = out.data<T>();
    parallel_for(0, outer * m, std::max<int64_t>(1, 4096 / std::max<int64_t>(inner, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t r = lo; r < hi; ++r) {
                     const int64_t oo = r / m, j = r % m;
                     for (int64_t i = 0; i < inner; ++i) {
                       const int64_t e = oo * is[0] + j * is[1] + i * is[2];
                       const int64_t k = checked_index(idx[e], n, site, e);
                       o[r * inner + i] = in[(oo * n + k) * inner + i];
                     }
                   }
                 });
  });
}

void scatter_add(Tensor& out, const Tensor& index, const int64_t is[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner, IndexSite site) {
  const int64_t* idx = index.data<int64_t>();
  dispatch_floating(out.dtype(), "scatter_add", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      scatter_add_into<T, T>(out.data<T>(), src.data<T>(), idx, is, outer, n, m, inner, site);
    } else {
      Tensor sums = out.to(DType::f32);  // rounded once, below
      scatter_add_into<T, float>(sums.data<float>(), src.data<T>(), idx, is, outer, n, m, inner, site);
      out.copy_(sums);
    }
  });
}

}  // namespace pit::cpu
