// CPU convolution (im2col + OpenBLAS GEMM) and pooling; see ops/cpu/conv.h for the contract.
//
// Threads: im2col/col2im and the pooling loops split over (image, channel) planes with
// parallel_for; the GEMMs use OpenBLAS's own threads. Every output element is written by one
// task in a fixed order, so results do not depend on the thread count.
#include "ops/cpu/conv.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"

namespace pit::cpu {
namespace {

// Elements of im2col buffer per chunk of images (32 MiB of f32): bounds the extra memory while
// keeping each batched GEMM large.
constexpr int64_t kColBudget = int64_t{1} << 23;
// Elements of work that make a parallel_for chunk worth a thread.
constexpr int64_t kGrain = int64_t{1} << 14;

int64_t ceil_div(int64_t a, int64_t b) {  // b > 0, any sign of a
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// Output columns [lo, hi) whose input column ow * stride + offset lies in [0, size).
void valid_range(int64_t offset, int64_t stride, int64_t size, int64_t out, int64_t& lo,
                 int64_t& hi) {
  lo = std::min(out, std::max<int64_t>(0, ceil_div(-offset, stride)));
  const int64_t last = size - 1 - offset;  // ow * stride <= last
  hi = last < 0 ? 0 : std::min(out, last / stride + 1);
  hi = std::max(hi, lo);
}

bool is_direct(const ConvGeometry& g) {  // 1x1, stride 1, no padding: col[n] is x[n]
  return g.kh == 1 && g.kw == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
         g.pad_w == 0;
}

int64_t chunk_images(const ConvGeometry& g) {
  const int64_t per_image = std::max<int64_t>(1, g.c_in * g.kh * g.kw * g.h_out * g.w_out);
  return std::clamp<int64_t>(kColBudget / per_image, 1, g.n);
}

// The kh * kw rows of col that belong to one input channel: row (i, j), column (oh, ow) holds
// x[oh * stride_h - pad_h + i * dilation_h, ow * stride_w - pad_w + j * dilation_w] or 0.
template <typename T>
void im2col_plane(const ConvGeometry& g, const T* x, T* col) {
  const int64_t hwo = g.h_out * g.w_out;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih0 = i * g.dilation_h - g.pad_h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t iw0 = j * g.dilation_w - g.pad_w;
      int64_t lo = 0, hi = 0;
      valid_range(iw0, g.stride_w, g.w, g.w_out, lo, hi);
      T* row = col + (i * g.kw + j) * hwo;
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        T* out = row + oh * g.w_out;
        const int64_t ih = oh * g.stride_h + ih0;
        if (ih < 0 || ih >= g.h) {
          std::fill(out, out + g.w_out, T(0));
          continue;
        }
        const T* in = x + ih * g.w + iw0;
        std::fill(out, out + lo, T(0));
        for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[ow * g.stride_w];
        std::fill(out + hi, out + g.w_out, T(0));
      }
    }
  }
}

// The reverse of im2col_plane for one input channel: dx (h, w) = sum of the col entries that
// were read from each element. Overwrites dx.
template <typename T>
void col2im_plane(const ConvGeometry& g, const T* col, T* dx) {
  const int64_t hwo = g.h_out * g.w_out;
  std::fill(dx, dx + g.h * g.w, T(0));
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t ih0 = i * g.dilation_h - g.pad_h;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t iw0 = j * g.dilation_w - g.pad_w;
      int64_t lo = 0, hi = 0;
      valid_range(iw0, g.stride_w, g.w, g.w_out, lo, hi);
      const T* row = col + (i * g.kw + j) * hwo;
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        const int64_t ih = oh * g.stride_h + ih0;
        if (ih < 0 || ih >= g.h) continue;
        const T* in = row + oh * g.w_out;
        T* out = dx + ih * g.w + iw0;
        for (int64_t ow = lo; ow < hi; ++ow) out[ow * g.stride_w] += in[ow];
      }
    }
  }
}

// col (b images of (K, Ho*Wo)) of images [n0, n0 + b).
template <typename T>
void im2col(const ConvGeometry& g, const T* x, int64_t n0, int64_t b, T* col) {
  const int64_t hw = g.h * g.w, k = g.c_in * g.kh * g.kw, hwo = g.h_out * g.w_out;
  const int64_t plane_rows = g.kh * g.kw;
  parallel_for(0, b * g.c_in, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, plane_rows * hwo)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t t = lo; t < hi; ++t) {
                   const int64_t bi = t / g.c_in, ci = t % g.c_in;
                   im2col_plane(g, x + ((n0 + bi) * g.c_in + ci) * hw,
                                col + bi * k * hwo + ci * plane_rows * hwo);
                 }
               });
}

template <typename T>
void conv2d_typed(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t k = g.c_in * g.kh * g.kw, hwo = g.h_out * g.w_out;
  if (bias) {
    parallel_for(0, g.n * g.c_out, std::max<int64_t>(1, kGrain / hwo), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) std::fill(y + r * hwo, y + (r + 1) * hwo, bias[r % g.c_out]);
    });
  }
  const bool direct = is_direct(g);
  const int64_t chunk = direct ? g.n : chunk_images(g);
  std::vector<T> col(direct ? 0 : static_cast<size_t>(chunk * k * hwo));
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t b = std::min(chunk, g.n - n0);
    const T* cols = direct ? x + n0 * k * hwo : col.data();
    if (!direct) im2col(g, x, n0, b, col.data());
    // y[n] (Cout, HWo) = W (Cout, K) x col[n] (K, HWo), W shared by the batch.
    GemmArgs a;
    a.dtype = dtype_of<T>();
    a.m = g.c_out;
    a.n = hwo;
    a.k = k;
    a.batch = b;
    a.a = w;
    a.lda = k;
    a.stride_a = 0;
    a.b = cols;
    a.ldb = hwo;
    a.stride_b = k * hwo;
    a.c = y + n0 * g.c_out * hwo;
    a.ldc = hwo;
    a.stride_c = g.c_out * hwo;
    a.beta = bias ? 1.0 : 0.0;
    gemm(a);
  }
}

template <typename T>
void conv2d_backward_typed(const ConvGeometry& g, const T* dy, const T* x, const T* w, T* dx,
                           T* dw) {
  const int64_t k = g.c_in * g.kh * g.kw, hwo = g.h_out * g.w_out;
  const bool direct = is_direct(g);
  const int64_t chunk = direct ? g.n : chunk_images(g);
  std::vector<T> col(direct ? 0 : static_cast<size_t>(chunk * k * hwo));
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t b = std::min(chunk, g.n - n0);
    if (dw) {
      // dW (Cout, K) += dy[n] (Cout, HWo) x col[n]^T (HWo, K), one image at a time.
      const T* cols = direct ? x + n0 * k * hwo : col.data();
      if (!direct) im2col(g, x, n0, b, col.data());
      for (int64_t i = 0; i < b; ++i) {
        GemmArgs a;
        a.dtype = dtype_of<T>();
        a.m = g.c_out;
        a.n = k;
        a.k = hwo;
        a.a = dy + (n0 + i) * g.c_out * hwo;
        a.lda = hwo;
        a.b = cols + i * k * hwo;
        a.trans_b = true;
        a.ldb = hwo;
        a.c = dw;
        a.ldc = k;
        a.beta = n0 + i == 0 ? 0.0 : 1.0;
        gemm(a);
      }
    }
    if (dx) {
      // dcol[n] (K, HWo) = W^T (K, Cout) x dy[n] (Cout, HWo); dx = col2im(dcol). For a direct
      // convolution dcol is dx itself.
      GemmArgs a;
      a.dtype = dtype_of<T>();
      a.m = k;
      a.n = hwo;
      a.k = g.c_out;
      a.batch = b;
      a.a = w;
      a.trans_a = true;
      a.lda = k;
      a.stride_a = 0;
      a.b = dy + n0 * g.c_out * hwo;
      a.ldb = hwo;
      a.stride_b = g.c_out * hwo;
      a.c = direct ? static_cast<void*>(dx + n0 * k * hwo) : static_cast<void*>(col.data());
      a.ldc = hwo;
      a.stride_c = k * hwo;
      gemm(a);
      if (!direct) {
        const int64_t hw = g.h * g.w, plane_rows = g.kh * g.kw;
        parallel_for(0, b * g.c_in,
                     std::max<int64_t>(1, kGrain / std::max<int64_t>(1, plane_rows * hwo)),
                     [&](int64_t lo, int64_t hi) {
                       for (int64_t t = lo; t < hi; ++t) {
                         const int64_t bi = t / g.c_in, ci = t % g.c_in;
                         col2im_plane(g, col.data() + bi * k * hwo + ci * plane_rows * hwo,
                                      dx + ((n0 + bi) * g.c_in + ci) * hw);
                       }
                     });
      }
    }
  }
}

// ---- pooling ----------------------------------------------------------------------------------

// Runs body(p) for every plane p, in parallel; `work` is the cost of one plane in elements.
template <typename Body>
void for_planes(int64_t planes, int64_t work, Body&& body) {
  parallel_for(0, planes, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t p = lo; p < hi; ++p) body(p);
               });
}

template <typename T>
void max_pool_typed(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  for_planes(g.planes, out_plane * g.kernel_h * g.kernel_w, [&](int64_t p) {
    const T* xp = x + p * in_plane;
    for (int64_t oh = 0; oh < g.h_out; ++oh)
      for (int64_t ow = 0; ow < g.w_out; ++ow) {
        double best = 0.0;
        int64_t arg = -1;
        for (int64_t i = 0; i < g.kernel_h; ++i) {
          const int64_t ih = oh * g.stride_h - g.pad_h + i;
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t j = 0; j < g.kernel_w; ++j) {
            const int64_t iw = ow * g.stride_w - g.pad_w + j;
            if (iw < 0 || iw >= g.w) continue;
            const double v = convert<double>(xp[ih * g.w + iw]);
            if (arg < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              arg = ih * g.w + iw;
            }
          }
        }
        const int64_t o = p * out_plane + oh * g.w_out + ow;
        y[o] = convert<T>(best);
        indices[o] = arg;
      }
  });
}

template <typename T>
void max_pool_backward_typed(int64_t planes, int64_t in_plane, int64_t out_plane, const T* dy,
                             const int64_t* indices, T* dx) {
  for_planes(planes, in_plane + out_plane, [&](int64_t p) {
    std::vector<double> acc(static_cast<size_t>(in_plane), 0.0);
    for (int64_t o = p * out_plane; o < (p + 1) * out_plane; ++o) {
      const int64_t idx = indices[o];
      PIT_CHECK(idx >= 0 && idx < in_plane, "max_pool2d_backward: index ", idx, " at position ", o,
                " is outside the input plane of ", in_plane, " elements");
      acc[static_cast<size_t>(idx)] += convert<double>(dy[o]);
    }
    T* out = dx + p * in_plane;
    for (int64_t i = 0; i < in_plane; ++i) out[i] = convert<T>(acc[static_cast<size_t>(i)]);
  });
}

template <typename T>
void avg_pool_typed(const PoolGeometry& g, const T* x, T* y) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  const double scale = 1.0 / static_cast<double>(g.kernel_h * g.kernel_w);
  for_planes(g.planes, out_plane * g.kernel_h * g.kernel_w, [&](int64_t p) {
    const T* xp = x + p * in_plane;
    for (int64_t oh = 0; oh < g.h_out; ++oh)
      for (int64_t ow = 0; ow < g.w_out; ++ow) {
        double sum = 0.0;
        for (int64_t i = 0; i < g.kernel_h; ++i) {
          const int64_t ih = oh * g.stride_h - g.pad_h + i;
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t j = 0; j < g.kernel_w; ++j) {
            const int64_t iw = ow * g.stride_w - g.pad_w + j;
            if (iw >= 0 && iw < g.w) sum += convert<double>(xp[ih * g.w + iw]);
          }
        }
        y[p * out_plane + oh * g.w_out + ow] = convert<T>(sum * scale);
      }
  });
}

template <typename T>
void avg_pool_backward_typed(const PoolGeometry& g, const T* dy, T* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  const double scale = 1.0 / static_cast<double>(g.kernel_h * g.kernel_w);
  for_planes(g.planes, in_plane * g.kernel_h * g.kernel_w, [&](int64_t p) {
    const T* dyp = dy + p * out_plane;
    for (int64_t ih = 0; ih < g.h; ++ih) {
      // Windows oh with oh * stride - pad <= ih <= oh * stride - pad + kernel - 1.
      const int64_t oh_lo = std::max<int64_t>(0, ceil_div(ih + g.pad_h - g.kernel_h + 1, g.stride_h));
      const int64_t oh_hi = std::min(g.h_out - 1, (ih + g.pad_h) / g.stride_h);
      for (int64_t iw = 0; iw < g.w; ++iw) {
        const int64_t ow_lo = std::max<int64_t>(0, ceil_div(iw + g.pad_w - g.kernel_w + 1, g.stride_w));
        const int64_t ow_hi = std::min(g.w_out - 1, (iw + g.pad_w) / g.stride_w);
        double sum = 0.0;
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
          for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) sum += convert<double>(dyp[oh * g.w_out + ow]);
        dx[p * in_plane + ih * g.w + iw] = convert<T>(sum * scale);
      }
    }
  });
}

}  // namespace

void conv2d(const ConvGeometry& g, DType dtype, const void* x, const void* weight, const void* bias,
            void* y) {
  dispatch<DType::f32, DType::f64>(dtype, "conv2d (CPU kernel)", [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>)
      conv2d_typed(g, static_cast<const T*>(x), static_cast<const T*>(weight),
                   static_cast<const T*>(bias), static_cast<T*>(y));
  });
}

void conv2d_backward(const ConvGeometry& g, DType dtype, const void* dy, const void* x,
                     const void* weight, void* dx, void* dweight) {
  dispatch<DType::f32, DType::f64>(dtype, "conv2d_backward (CPU kernel)", [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>)
      conv2d_backward_typed(g, static_cast<const T*>(dy), static_cast<const T*>(x),
                            static_cast<const T*>(weight), static_cast<T*>(dx),
                            static_cast<T*>(dweight));
  });
}

void max_pool2d(const PoolGeometry& g, DType dtype, const void* x, void* y, int64_t* indices) {
  dispatch_floating(dtype, "max_pool2d (CPU kernel)", [&]<typename T>() {
    max_pool_typed(g, static_cast<const T*>(x), static_cast<T*>(y), indices);
  });
}

void max_pool2d_backward(int64_t planes, int64_t in_plane, int64_t out_plane, DType dtype,
                         const void* dy, const int64_t* indices, void* dx) {
  dispatch_floating(dtype, "max_pool2d_backward (CPU kernel)", [&]<typename T>() {
    max_pool_backward_typed(planes, in_plane, out_plane, static_cast<const T*>(dy), indices,
                            static_cast<T*>(dx));
  });
}

void avg_pool2d(const PoolGeometry& g, DType dtype, const void* x, void* y) {
  dispatch_floating(dtype, "avg_pool2d (CPU kernel)", [&]<typename T>() {
    avg_pool_typed(g, static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void avg_pool2d_backward(const PoolGeometry& g, DType dtype, const void* dy, void* dx) {
  dispatch_floating(dtype, "avg_pool2d_backward (CPU kernel)", [&]<typename T>() {
    avg_pool_backward_typed(g, static_cast<const T*>(dy), static_cast<T*>(dx));
  });
}

}  // namespace pit::cpu
