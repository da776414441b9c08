// Elementwise kernels on the GPU. Each function has two paths (binary a third):
// - dense: every operand is dense row-major (the caller merges the dims of contiguous operands
//   into one), or for binary a broadcast scalar, so element i sits at offset i of each operand.
//   When every dense pointer is 16-byte aligned, each thread moves 16 bytes per operand per
//   step with one vector load/store (8 f16/bf16, 4 f32 or 2 f64 values); the n % vec tail is
//   done with scalar accesses, one element for each of the first threads. The op is a template
//   parameter here, so the inner loop holds no switch.
// - rows (binary only): a dense [rows, cols] output whose operands are dense along each row
//   or constant along it (bias rows, per-row scales): vector accesses as above, one 32-bit
//   division per pack to find its row.
// - strided: everything else (views, broadcasting, misaligned pointers). Each element's
//   operand offsets come from dividing its flat index by the (merged) sizes, in 32-bit
//   arithmetic when the element count fits, 64-bit otherwise.
// Math: apply_unary / unary_derivative / apply_binary of ops/elementwise_op.h in float for
// f16/bf16/f32 and double for f64; conversions with convert<> (core/convert.h), bit for bit
// those of the CPU kernels.
#include <cuda_runtime.h>

#include <array>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "ops/cuda/elementwise.h"

namespace pit::cuda {
namespace {

// The compute type: double for f64, float for f32, f16 and bf16.
template <typename T>
using Compute = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Bytes per vector access: 16, the widest single global load/store (LDG.E.128 / STG.E.128).
constexpr int kVecBytes = 16;
// Elements per vector access: 8 f16/bf16, 4 f32, 2 f64.
template <typename T>
inline constexpr int kVec = kVecBytes / static_cast<int>(sizeof(T));

// N elements loaded or stored as one aligned access.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p, int64_t pack) {
  return reinterpret_cast<const Pack<T, N>*>(p)[pack];
}
template <typename T, int N>
__device__ __forceinline__ void store_pack(T* p, int64_t pack, const Pack<T, N>& v) {
  reinterpret_cast<Pack<T, N>*>(p)[pack] = v;
}

__device__ __forceinline__ int64_t global_thread() {
  return blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return int64_t{gridDim.x} * blockDim.x; }

// ---- dense kernels ---------------------------------------------------------------------------

template <UnaryOp Op, typename T, int N>
__global__ void __launch_bounds__(kThreads)
    unary_dense_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t n, Compute<T> alpha) {
  using C = Compute<T>;
  const auto f = [alpha](T v) { return convert<T>(apply_unary<C>(Op, convert<C>(v), alpha)); };
  const int64_t packs = n / N;
  for (int64_t p = global_thread(); p < packs; p += grid_threads()) {
    const Pack<T, N> in = load_pack<T, N>(x, p);
    Pack<T, N> r;
#pragma unroll
    for (int j = 0; j < N; ++j) r.v[j] = f(in.v[j]);
    store_pack<T, N>(out, p, r);
  }
  const int64_t t = packs * N + global_thread();  // the tail
  if (t < n) out[t] = f(x[t]);
}

template <UnaryOp Op, typename T, int N>
__global__ void __launch_bounds__(kThreads)
    unary_backward_dense_kernel(T* __restrict__ gx, const T* __restrict__ gy,
                                const T* __restrict__ x, const T* __restrict__ y, int64_t n,
                                Compute<T> alpha) {
  using C = Compute<T>;
  const auto f = [alpha](T g, T xv, T yv) {
    return convert<T>(convert<C>(g) *
                      unary_derivative<C>(Op, convert<C>(xv), convert<C>(yv), alpha));
  };
  const int64_t packs = n / N;
  for (int64_t p = global_thread(); p < packs; p += grid_threads()) {
    const Pack<T, N> g = load_pack<T, N>(gy, p), xv = load_pack<T, N>(x, p),
                     yv = load_pack<T, N>(y, p);
    Pack<T, N> r;
#pragma unroll
    for (int j = 0; j < N; ++j) r.v[j] = f(g.v[j], xv.v[j], yv.v[j]);
    store_pack<T, N>(gx, p, r);
  }
  const int64_t t = packs * N + global_thread();
  if (t < n) gx[t] = f(gy[t], x[t], y[t]);
}

// a_scalar / b_scalar: that operand is one element broadcast to all n (read once per thread).
template <BinaryOp Op, typename T, int N>
__global__ void __launch_bounds__(kThreads)
    binary_dense_kernel(T* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b,
                        bool a_scalar, bool b_scalar, int64_t n) {
  using C = Compute<T>;
  const C a0 = a_scalar ? convert<C>(a[0]) : C(0);
  const C b0 = b_scalar ? convert<C>(b[0]) : C(0);
  const int64_t packs = n / N;
  for (int64_t p = global_thread(); p < packs; p += grid_threads()) {
    Pack<T, N> pa{}, pb{}, r;
    if (!a_scalar) pa = load_pack<T, N>(a, p);
    if (!b_scalar) pb = load_pack<T, N>(b, p);
#pragma unroll
    for (int j = 0; j < N; ++j)
      r.v[j] = convert<T>(apply_binary<C>(Op, a_scalar ? a0 : convert<C>(pa.v[j]),
                                          b_scalar ? b0 : convert<C>(pb.v[j])));
    store_pack<T, N>(out, p, r);
  }
  const int64_t t = packs * N + global_thread();
  if (t < n)
    out[t] = convert<T>(apply_binary<C>(Op, a_scalar ? a0 : convert<C>(a[t]),
                                        b_scalar ? b0 : convert<C>(b[t])));
}

// A [rows, cols] output, dense, cols a multiple of N: the broadcasting binary ops of training
// (bias rows, per-row scales) with vector accesses. Each operand either varies along a row
// (inner stride 1; row starts 16-byte aligned) or is constant along it (inner stride 0: `bcast`,
// one load per pack); its rows start `row_stride` elements apart (0 for a broadcast row).
template <BinaryOp Op, typename T, int N>
__global__ void __launch_bounds__(kThreads)
    binary_rows_kernel(T* __restrict__ out, const T* __restrict__ a, int64_t a_row, bool a_bcast,
                       const T* __restrict__ b, int64_t b_row, bool b_bcast, uint32_t col_packs,
                       uint32_t packs) {
  using C = Compute<T>;
  for (uint32_t p = blockIdx.x * blockDim.x + threadIdx.x; p < packs; p += gridDim.x * blockDim.x) {
    const uint32_t r = p / col_packs;
    const int64_t c = static_cast<int64_t>(p - r * col_packs) * N;
    const T* pa = a + r * a_row;
    const T* pb = b + r * b_row;
    Pack<T, N> va{}, vb{}, o;
    C a0 = C(0), b0 = C(0);
    if (a_bcast)
      a0 = convert<C>(*pa);
    else
      va = *reinterpret_cast<const Pack<T, N>*>(pa + c);
    if (b_bcast)
      b0 = convert<C>(*pb);
    else
      vb = *reinterpret_cast<const Pack<T, N>*>(pb + c);
#pragma unroll
    for (int j = 0; j < N; ++j)
      o.v[j] = convert<T>(apply_binary<C>(Op, a_bcast ? a0 : convert<C>(va.v[j]),
                                          b_bcast ? b0 : convert<C>(vb.v[j])));
    store_pack<T, N>(out, p, o);
  }
}

template <typename T, int N>
__global__ void __launch_bounds__(kThreads)
    add_scaled_dense_kernel(T* a, const T* b, int64_t n, Compute<T> alpha) {
  // No __restrict__: b may be a itself (a += alpha * a).
  using C = Compute<T>;
  const auto f = [alpha](T u, T v) { return convert<T>(convert<C>(u) + alpha * convert<C>(v)); };
  const int64_t packs = n / N;
  for (int64_t p = global_thread(); p < packs; p += grid_threads()) {
    Pack<T, N> u = load_pack<T, N>(a, p);
    const Pack<T, N> v = load_pack<T, N>(b, p);
#pragma unroll
    for (int j = 0; j < N; ++j) u.v[j] = f(u.v[j], v.v[j]);
    store_pack<T, N>(a, p, u);
  }
  const int64_t t = packs * N + global_thread();
  if (t < n) a[t] = f(a[t], b[t]);
}

// ---- strided kernels -------------------------------------------------------------------------

// Sizes and per-operand strides (in elements) of N operands of one shape, innermost dim first.
template <int N>
struct StridedArgs {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
};

// The offset of flat (row-major) element i in each operand. The loop is unrolled over
// kMaxDims so that every array index is a constant: the arguments stay in the parameter bank.
template <int N, typename Index>
__device__ __forceinline__ void element_offsets(Index i, const StridedArgs<N>& a,
                                                int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
  for (int d = 0; d < kMaxDims; ++d) {
    if (d >= a.ndim) break;
    const Index size = static_cast<Index>(a.sizes[d]);
    const Index q = i / size;
    const int64_t r = static_cast<int64_t>(i - q * size);
    i = q;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += r * a.strides[k][d];
  }
}

// Grid-stride loop over n elements with an Index-typed counter: uint32_t when n <= INT32_MAX
// (then i + grid size cannot wrap), int64_t otherwise.
#define PIT_GRID_LOOP(Index, i, n)                                                        \
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<Index>(gridDim.x) * blockDim.x)

// The op is a runtime argument here: strided unary calls are rare (views), and one kernel per
// dtype keeps the build small.
template <typename T, typename Index>
__global__ void __launch_bounds__(kThreads)
    unary_strided_kernel(UnaryOp op, T* out, const T* x, StridedArgs<2> args, Index n,
                         Compute<T> alpha) {
  using C = Compute<T>;
  PIT_GRID_LOOP(Index, i, n) {
    int64_t off[2];
    element_offsets(i, args, off);
    out[off[0]] = convert<T>(apply_unary<C>(op, convert<C>(x[off[1]]), alpha));
  }
}

template <typename T, typename Index>
__global__ void __launch_bounds__(kThreads)
    unary_backward_strided_kernel(UnaryOp op, T* gx, const T* gy, const T* x, const T* y,
                                  StridedArgs<4> args, Index n, Compute<T> alpha) {
  using C = Compute<T>;
  PIT_GRID_LOOP(Index, i, n) {
    int64_t off[4];
    element_offsets(i, args, off);
    gx[off[0]] = convert<T>(convert<C>(gy[off[1]]) *
                            unary_derivative<C>(op, convert<C>(x[off[2]]), convert<C>(y[off[3]]),
                                                alpha));
  }
}

// Broadcasting binary ops (bias adds, scaling by a row or column) are common: the op is a
// template parameter here too.
template <BinaryOp Op, typename T, typename Index>
__global__ void __launch_bounds__(kThreads)
    binary_strided_kernel(T* out, const T* a, const T* b, StridedArgs<3> args, Index n) {
  using C = Compute<T>;
  PIT_GRID_LOOP(Index, i, n) {
    int64_t off[3];
    element_offsets(i, args, off);
    out[off[0]] = convert<T>(apply_binary<C>(Op, convert<C>(a[off[1]]), convert<C>(b[off[2]])));
  }
}

template <typename T, typename Index>
__global__ void __launch_bounds__(kThreads)
    add_scaled_strided_kernel(T* a, const T* b, StridedArgs<2> args, Index n, Compute<T> alpha) {
  using C = Compute<T>;
  PIT_GRID_LOOP(Index, i, n) {
    int64_t off[2];
    element_offsets(i, args, off);
    a[off[0]] = convert<T>(convert<C>(a[off[0]]) + alpha * convert<C>(b[off[1]]));
  }
}

#undef PIT_GRID_LOOP

// ---- host side -------------------------------------------------------------------------------

int64_t numel_of(const StridedDesc& d) {
  int64_t n = 1;
  for (int i = 0; i < d.ndim; ++i) n *= d.sizes[i];
  return n;
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kVecBytes == 0; }

// Every element of d is the same one (all dims of size > 1 have stride 0).
bool broadcast_scalar(const StridedDesc& d) {
  for (int i = 0; i < d.ndim; ++i)
    if (d.sizes[i] > 1 && d.strides[i] != 0) return false;
  return true;
}

// Dense and 16-byte aligned: the vector path can read or write it.
bool vector_ready(const StridedDesc& d) { return is_dense_row_major(d) && aligned(d.data); }

template <int N>
StridedArgs<N> strided_args(const std::array<const StridedDesc*, N>& d) {
  StridedArgs<N> a;
  a.ndim = d[0]->ndim;
  for (int i = 0; i < a.ndim; ++i) {
    const int src = a.ndim - 1 - i;  // innermost first
    a.sizes[i] = d[0]->sizes[src];
    for (int k = 0; k < N; ++k) a.strides[k][i] = d[k]->strides[src];
  }
  return a;
}

// Calls fn.template operator()<Index>() with the narrowest index type that holds n.
template <typename Fn>
void with_index(int64_t n, Fn&& fn) {
  if (n <= INT32_MAX)
    fn.template operator()<uint32_t>();
  else
    fn.template operator()<int64_t>();
}


// Blocks for a grid-stride loop over `work` items (vector packs or elements) of kThreads
// threads each: see grid_for (core/cuda/launch.cuh). At least one block, which also covers a
// tail of fewer than kVec elements when there is no full pack.
unsigned blocks_for(int64_t work) { return grid_for(work, kThreads); }

}  // namespace

void unary(UnaryOp op, const StridedDesc& out, const StridedDesc& x, double alpha,
           StreamRef stream) {
  const int64_t n = numel_of(out);
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  dispatch_floating(out.dtype, unary_name(op), [&]<typename T>() {
    using C = Compute<T>;
    T* o = static_cast<T*>(out.data);
    const T* in = static_cast<const T*>(x.data);
    if (vector_ready(out) && vector_ready(x)) {
      constexpr int N = kVec<T>;
      with_unary_op(op, [&]<UnaryOp Op>() {
        unary_dense_kernel<Op, T, N><<<blocks_for(n / N), kThreads, 0, s>>>(o, in, n, C(alpha));
      });
    } else {
      const StridedArgs<2> args = strided_args<2>({&out, &x});
      with_index(n, [&]<typename Index>() {
        unary_strided_kernel<T, Index><<<blocks_for(n), kThreads, 0, s>>>(
            op, o, in, args, static_cast<Index>(n), C(alpha));
      });
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void unary_backward(UnaryOp op, const StridedDesc& grad_x, const StridedDesc& grad_y,
                    const StridedDesc& x, const StridedDesc& y, double alpha, StreamRef stream) {
  const int64_t n = numel_of(grad_x);
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  dispatch_floating(grad_x.dtype, unary_name(op), [&]<typename T>() {
    using C = Compute<T>;
    T* gx = static_cast<T*>(grad_x.data);
    const T* gy = static_cast<const T*>(grad_y.data);
    const T* px = static_cast<const T*>(x.data);
    const T* py = static_cast<const T*>(y.data);
    if (vector_ready(grad_x) && vector_ready(grad_y) && vector_ready(x) && vector_ready(y)) {
      constexpr int N = kVec<T>;
      with_unary_op(op, [&]<UnaryOp Op>() {
        unary_backward_dense_kernel<Op, T, N><<<blocks_for(n / N), kThreads, 0, s>>>(
            gx, gy, px, py, n, C(alpha));
      });
    } else {
      const StridedArgs<4> args = strided_args<4>({&grad_x, &grad_y, &x, &y});
      with_index(n, [&]<typename Index>() {
        unary_backward_strided_kernel<T, Index><<<blocks_for(n), kThreads, 0, s>>>(
            op, gx, gy, px, py, args, static_cast<Index>(n), C(alpha));
      });
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void binary(BinaryOp op, const StridedDesc& out, const StridedDesc& a, const StridedDesc& b,
            StreamRef stream) {
  const int64_t n = numel_of(out);
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  // A broadcast scalar operand is read once per thread on the dense path; it need not be
  // aligned.
  const bool a_scalar = broadcast_scalar(a), b_scalar = broadcast_scalar(b);
  const bool dense = vector_ready(out) && (a_scalar || vector_ready(a)) &&
                     (b_scalar || vector_ready(b));
  dispatch_floating(out.dtype, binary_name(op), [&]<typename T>() {
    constexpr int N = kVec<T>;
    T* o = static_cast<T*>(out.data);
    const T* pa = static_cast<const T*>(a.data);
    const T* pb = static_cast<const T*>(b.data);
    // The rows path: a dense 2-D output whose rows hold whole packs, and operands that each
    // vary along the row in aligned packs or are constant along it.
    const auto row_operand = [](const StridedDesc& d) {
      return d.strides[1] == 0 || (d.strides[1] == 1 && d.strides[0] % N == 0 && aligned(d.data));
    };
    const bool rows = !dense && out.ndim == 2 && vector_ready(out) && out.sizes[1] % N == 0 &&
                      n / N <= INT32_MAX && row_operand(a) && row_operand(b);
    with_binary_op(op, [&]<BinaryOp Op>() {
      if (dense) {
        binary_dense_kernel<Op, T, N><<<blocks_for(n / N), kThreads, 0, s>>>(
            o, pa, pb, a_scalar, b_scalar, n);
      } else if (rows) {
        const int64_t packs = n / N;
        binary_rows_kernel<Op, T, N><<<blocks_for(packs), kThreads, 0, s>>>(
            o, pa, a.strides[0], a.strides[1] == 0, pb, b.strides[0], b.strides[1] == 0,
            static_cast<uint32_t>(out.sizes[1] / N), static_cast<uint32_t>(packs));
      } else {
        const StridedArgs<3> args = strided_args<3>({&out, &a, &b});
        with_index(n, [&]<typename Index>() {
          binary_strided_kernel<Op, T, Index><<<blocks_for(n), kThreads, 0, s>>>(
              o, pa, pb, args, static_cast<Index>(n));
        });
      }
    });
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void add_scaled(const StridedDesc& a, const StridedDesc& b, double alpha, StreamRef stream) {
  const int64_t n = numel_of(a);
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  dispatch_floating(a.dtype, "add_scaled_", [&]<typename T>() {
    using C = Compute<T>;
    T* pa = static_cast<T*>(a.data);
    const T* pb = static_cast<const T*>(b.data);
    if (vector_ready(a) && vector_ready(b)) {
      constexpr int N = kVec<T>;
      add_scaled_dense_kernel<T, N><<<blocks_for(n / N), kThreads, 0, s>>>(pa, pb, n, C(alpha));
    } else {
      const StridedArgs<2> args = strided_args<2>({&a, &b});
      with_index(n, [&]<typename Index>() {
        add_scaled_strided_kernel<T, Index><<<blocks_for(n), kThreads, 0, s>>>(
            pa, pb, args, static_cast<Index>(n), C(alpha));
      });
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::cuda
