// CPU elementwise kernels: one strided walk shared by every kernel, with the op and the dtype
// as template parameters so that the inner loops hold no switch and vectorise where they can.
#include "ops/cpu/elementwise.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/convert.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/activation_rows.h"
#include "ops/cpu/compute_type.h"

namespace pit::cpu {
namespace {

// Below this many elements a loop is not worth waking the pool for (as in core/cpu_copy.cpp).
constexpr int64_t kGrain = 1 << 15;

template <size_t N>
using Offsets = std::array<int64_t, N>;

// Calls run(offsets, inner_strides, count) for runs of `count` consecutive elements along the
// innermost dim, covering the N operands (same ndim and sizes) in row-major order: offsets[k]
// is the element offset of the run's first element in operand k, inner_strides[k] the step
// between elements of the run. Chunks of the flat index range go to the thread pool, so a
// single long row is split as well as many short ones.
template <size_t N, typename Run>
void for_each_run(const std::array<StridedDesc, N>& d, const Run& run) {
  const int nd = d[0].ndim;
  int64_t n = 1;
  for (int i = 0; i < nd; ++i) n *= d[0].sizes[i];
  if (n == 0) return;
  if (nd == 0) {  // one element
    run(Offsets<N>{}, Offsets<N>{}, int64_t{1});
    return;
  }
  Offsets<N> inner{};
  for (size_t k = 0; k < N; ++k) inner[k] = d[k].strides[nd - 1];
  const int64_t* sizes = d[0].sizes;
  const int64_t len = sizes[nd - 1];
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    // Multi-index and operand offsets of element `lo`.
    int64_t idx[kMaxDims] = {};
    int64_t rem = lo;
    for (int i = nd - 1; i >= 0; --i) {
      idx[i] = rem % sizes[i];
      rem /= sizes[i];
    }
    Offsets<N> off{};
    for (size_t k = 0; k < N; ++k)
      for (int i = 0; i < nd; ++i) off[k] += idx[i] * d[k].strides[i];
    for (int64_t pos = lo; pos < hi;) {
      const int64_t count = std::min(len - idx[nd - 1], hi - pos);
      run(off, inner, count);
      pos += count;
      // Advance the multi-index by `count`, carrying into outer dims.
      idx[nd - 1] += count;
      for (size_t k = 0; k < N; ++k) off[k] += count * inner[k];
      for (int i = nd - 1; i > 0 && idx[i] == sizes[i]; --i) {
        idx[i] = 0;
        ++idx[i - 1];
        for (size_t k = 0; k < N; ++k) off[k] += d[k].strides[i - 1] - sizes[i] * d[k].strides[i];
      }
    }
  });
}

template <size_t N>
bool unit_strides(const Offsets<N>& s) {
  for (int64_t v : s)
    if (v != 1) return false;
  return true;
}

// The activations with vector loops over f32 rows (ops/cpu/activation_rows.h).
template <UnaryOp Op, typename T>
constexpr bool kRowActivation = std::is_same_v<T, float> && has_vector_loop(Op);

template <UnaryOp Op, typename T>
void unary_typed(const StridedDesc& out, const StridedDesc& x, double alpha_in) {
  using C = compute_t<T>;
  const C alpha = static_cast<C>(alpha_in);
  T* const o = static_cast<T*>(out.data);
  const T* const in = static_cast<const T*>(x.data);
  const auto f = [alpha](T v) { return convert<T>(apply_unary<C>(Op, convert<C>(v), alpha)); };
  for_each_run<2>({out, x}, [&](const Offsets<2>& off, const Offsets<2>& s, int64_t count) {
    T* po = o + off[0];
    const T* px = in + off[1];
    if constexpr (kRowActivation<Op, T>) {
      if (unit_strides(s)) {
        if (po != px) std::memmove(po, px, static_cast<size_t>(count) * sizeof(float));
        cpu::activate_f32(Op, po, count);
        return;
      }
    }
    if (unit_strides(s)) {
      for (int64_t j = 0; j < count; ++j) po[j] = f(px[j]);
    } else {
      for (int64_t j = 0; j < count; ++j) po[j * s[0]] = f(px[j * s[1]]);
    }
  });
}

template <UnaryOp Op, typename T>
void unary_backward_typed(const StridedDesc& gx, const StridedDesc& gy, const StridedDesc& x,
                          const StridedDesc& y, double alpha_in) {
  using C = compute_t<T>;
  const C alpha = static_cast<C>(alpha_in);
  T* const o = static_cast<T*>(gx.data);
  const T* const pgy = static_cast<const T*>(gy.data);
  const T* const px = static_cast<const T*>(x.data);
  const T* const py = static_cast<const T*>(y.data);
  const auto f = [alpha](T g, T xv, T yv) {
    return convert<T>(convert<C>(g) *
                      unary_derivative<C>(Op, convert<C>(xv), convert<C>(yv), alpha));
  };
  for_each_run<4>({gx, gy, x, y}, [&](const Offsets<4>& off, const Offsets<4>& s, int64_t count) {
    T* po = o + off[0];
    const T *g = pgy + off[1], *xv = px + off[2], *yv = py + off[3];
    if constexpr (kRowActivation<Op, T>) {
      if (unit_strides(s)) {  // act' by the vector loops, 1024 at a time (po may be g)
        float d[1024];
        for (int64_t j0 = 0; j0 < count; j0 += 1024) {
          const int64_t m = std::min<int64_t>(1024, count - j0);
          cpu::activation_derivative_f32(Op, xv + j0, yv + j0, d, m);
          for (int64_t j = 0; j < m; ++j) po[j0 + j] = g[j0 + j] * d[j];
        }
        return;
      }
    }
    if (unit_strides(s)) {
      for (int64_t j = 0; j < count; ++j) po[j] = f(g[j], xv[j], yv[j]);
    } else {
      for (int64_t j = 0; j < count; ++j)
        po[j * s[0]] = f(g[j * s[1]], xv[j * s[2]], yv[j * s[3]]);
    }
  });
}

template <BinaryOp Op, typename T>
void binary_typed(const StridedDesc& out, const StridedDesc& a, const StridedDesc& b) {
  using C = compute_t<T>;
  T* const o = static_cast<T*>(out.data);
  const T* const pa = static_cast<const T*>(a.data);
  const T* const pb = static_cast<const T*>(b.data);
  const auto f = [](T u, T v) { return convert<T>(apply_binary<C>(Op, convert<C>(u), convert<C>(v))); };
  for_each_run<3>({out, a, b}, [&](const Offsets<3>& off, const Offsets<3>& s, int64_t count) {
    T* po = o + off[0];
    const T *u = pa + off[1], *v = pb + off[2];
    if (unit_strides(s)) {
      for (int64_t j = 0; j < count; ++j) po[j] = f(u[j], v[j]);
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {  // row + broadcast scalar (bias, scale)
      const T vb = *v;
      for (int64_t j = 0; j < count; ++j) po[j] = f(u[j], vb);
    } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
      const T ua = *u;
      for (int64_t j = 0; j < count; ++j) po[j] = f(ua, v[j]);
    } else {
      for (int64_t j = 0; j < count; ++j) po[j * s[0]] = f(u[j * s[1]], v[j * s[2]]);
    }
  });
}

template <typename T>
void add_scaled_typed(const StridedDesc& a, const StridedDesc& b, double alpha_in) {
  using C = compute_t<T>;
  const C alpha = static_cast<C>(alpha_in);
  T* const pa = static_cast<T*>(a.data);
  const T* const pb = static_cast<const T*>(b.data);
  const auto f = [alpha](T u, T v) { return convert<T>(convert<C>(u) + alpha * convert<C>(v)); };
  for_each_run<2>({a, b}, [&](const Offsets<2>& off, const Offsets<2>& s, int64_t count) {
    T* u = pa + off[0];
    const T* v = pb + off[1];
    if (unit_strides(s)) {
      for (int64_t j = 0; j < count; ++j) u[j] = f(u[j], v[j]);
    } else {
      for (int64_t j = 0; j < count; ++j) u[j * s[0]] = f(u[j * s[0]], v[j * s[1]]);
    }
  });
}


}  // namespace

void unary(UnaryOp op, const StridedDesc& out, const StridedDesc& x, double alpha) {
  dispatch_floating(out.dtype, unary_name(op), [&]<typename T>() {
    with_unary_op(op, [&]<UnaryOp Op>() { unary_typed<Op, T>(out, x, alpha); });
  });
}

void unary_backward(UnaryOp op, const StridedDesc& grad_x, const StridedDesc& grad_y,
                    const StridedDesc& x, const StridedDesc& y, double alpha) {
  dispatch_floating(grad_x.dtype, unary_name(op), [&]<typename T>() {
    with_unary_op(op, [&]<UnaryOp Op>() {
      unary_backward_typed<Op, T>(grad_x, grad_y, x, y, alpha);
    });
  });
}

void binary(BinaryOp op, const StridedDesc& out, const StridedDesc& a, const StridedDesc& b) {
  dispatch_floating(out.dtype, binary_name(op), [&]<typename T>() {
    with_binary_op(op, [&]<BinaryOp Op>() { binary_typed<Op, T>(out, a, b); });
  });
}

void add_scaled(const StridedDesc& a, const StridedDesc& b, double alpha) {
  dispatch_floating(a.dtype, "add_scaled_", [&]<typename T>() { add_scaled_typed<T>(a, b, alpha); });
}

}  // namespace pit::cpu
