#include "core/cpu_copy.h"

#include <cstring>
#include <type_traits>

#include "core/convert.h"
#include "core/random.h"
#include "core/thread_pool.h"

namespace pit::cpu {
namespace {

// Below this many elements a loop is not worth waking the pool for.
constexpr int64_t kGrain = 1 << 15;

// dst = src or dst += alpha * src, element by element (core/convert.h: store_converted).
template <bool Accumulate, typename D, typename S>
void copy_typed(const StridedDesc& dst, const StridedDesc& src, double alpha) {
  D* out = static_cast<D*>(dst.data);
  const S* in = static_cast<const S*>(src.data);
  const int nd = dst.ndim;
  if (nd == 0) {
    store_converted<Accumulate>(*out, *in, alpha);
    return;
  }
  // Outer "rows" are every dim but the last; each row is a strided inner loop.
  const int64_t inner = dst.sizes[nd - 1];
  const int64_t dst_inner_stride = dst.strides[nd - 1], src_inner_stride = src.strides[nd - 1];
  int64_t rows = 1;
  for (int d = 0; d < nd - 1; ++d) rows *= dst.sizes[d];
  const int64_t grain_rows = std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1));
  parallel_for(0, rows, grain_rows, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t dst_off = 0, src_off = 0, rem = r;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % dst.sizes[d];
        rem /= dst.sizes[d];
        dst_off += i * dst.strides[d];
        src_off += i * src.strides[d];
      }
      D* o = out + dst_off;
      const S* s = in + src_off;
      if (dst_inner_stride == 1 && src_inner_stride == 1) {
        for (int64_t j = 0; j < inner; ++j) store_converted<Accumulate>(o[j], s[j], alpha);
      } else {
        for (int64_t j = 0; j < inner; ++j)
          store_converted<Accumulate>(o[j * dst_inner_stride], s[j * src_inner_stride], alpha);
      }
    }
  });
}

template <typename T, typename Fn>
void generate(void* data, int64_t n, Fn&& element) {
  T* out = static_cast<T*>(data);
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = convert<T>(element(i));
  });
}

}  // namespace

void copy_strided(const StridedDesc& dst_in, const StridedDesc& src_in) {
  StridedDesc dst = dst_in, src = src_in;
  coalesce_pair(dst, src);
  int64_t n = 1;
  for (int d = 0; d < dst.ndim; ++d) n *= dst.sizes[d];
  if (n == 0) return;
  if (dst.dtype == src.dtype && is_dense_row_major(dst) && is_dense_row_major(src)) {
    std::memcpy(dst.data, src.data, static_cast<size_t>(n) * dtype_size(dst.dtype));
    return;
  }
  dispatch(dst.dtype, "copy", [&]<typename D>() {
    dispatch(src.dtype, "copy", [&]<typename S>() { copy_typed<false, D, S>(dst, src, 0.0); });
  });
}

void add_strided(const StridedDesc& dst_in, const StridedDesc& src_in, double alpha) {
  StridedDesc dst = dst_in, src = src_in;
  coalesce_pair(dst, src);
  dispatch_floating(dst.dtype, "add_", [&]<typename D>() {
    dispatch(src.dtype, "add_", [&]<typename S>() { copy_typed<true, D, S>(dst, src, alpha); });
  });
}

void fill(void* data, int64_t n, DType dtype, double value) {
  dispatch(dtype, "fill", [&]<typename T>() {
    const T v = convert<T>(value);
    generate<T>(data, n, [v](int64_t) { return v; });
  });
}

void arange(void* data, int64_t n, DType dtype, double start, double step) {
  dispatch(dtype, "arange", [&]<typename T>() {
    generate<T>(data, n, [=](int64_t i) { return start + static_cast<double>(i) * step; });
  });
}

void random_uniform(void* data, int64_t n, DType dtype, uint64_t seed, uint64_t offset) {
  dispatch_floating(dtype, "rand", [&]<typename T>() {
    generate<T>(data, n, [=](int64_t i) { return philox_uniform_as<T>(seed, offset, static_cast<uint64_t>(i)); });
  });
}

void random_normal(void* data, int64_t n, DType dtype, uint64_t seed, uint64_t offset) {
  dispatch_floating(dtype, "randn", [&]<typename T>() {
    generate<T>(data, n, [=](int64_t i) { return philox_normal(seed, offset, static_cast<uint64_t>(i)); });
  });
}

}  // namespace pit::cpu
