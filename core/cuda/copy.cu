// Strided element copy with dtype conversion on the GPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/backend.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"

namespace pit::cuda {
namespace {

// Element i of a row-major walk over `sizes`, as an offset with `strides`.
__device__ __forceinline__ int64_t strided_offset(int64_t i, int ndim, const int64_t* sizes,
                                                  const int64_t* strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    const int64_t s = sizes[d];
    off += (i % s) * strides[d];
    i /= s;
  }
  return off;
}

// dst = src or dst += alpha * src, element by element (core/convert.h: store_converted).
template <bool Accumulate, typename D, typename S>
__global__ void copy_dense_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n,
                                  double alpha) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_converted<Accumulate>(dst[i], src[i], alpha);
}

template <bool Accumulate, typename D, typename S>
__global__ void copy_strided_kernel(StridedDesc dst, StridedDesc src, int64_t n, double alpha) {
  D* out = static_cast<D*>(dst.data);
  const S* in = static_cast<const S*>(src.data);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_converted<Accumulate>(out[strided_offset(i, dst.ndim, dst.sizes, dst.strides)],
                      in[strided_offset(i, src.ndim, src.sizes, src.strides)], alpha);
}

// A (batched) transpose: dst [B, R, C] dense row-major, src element (b, r, c) at b * sb + r + c * sc
// (src's rows are dst's columns). Through a 32 x 33 shared tile, so that both the reads (along r,
// contiguous in src) and the writes (along c) are coalesced; the strided kernel above reads one
// element per 32-byte sector here (t().contiguous() of a 256 MB bf16 matrix: ~1 ms -> ~0.2 ms).
constexpr int kTile = 32, kTileRows = 8;

template <bool Accumulate, typename D, typename S>
__global__ void transpose_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t rows, int64_t cols,
                                 int64_t sb, int64_t sc, double alpha) {
  __shared__ S tile[kTile][kTile + 1];
  const int64_t b = blockIdx.z, r0 = int64_t{blockIdx.y} * kTile, c0 = int64_t{blockIdx.x} * kTile;
  const S* in = src + b * sb;
  for (int j = threadIdx.y; j < kTile; j += kTileRows) {
    const int64_t r = r0 + threadIdx.x, c = c0 + j;
    if (r < rows && c < cols) tile[j][threadIdx.x] = in[r + c * sc];
  }
  __syncthreads();
  D* out = dst + b * rows * cols;
  for (int j = threadIdx.y; j < kTile; j += kTileRows) {
    const int64_t r = r0 + j, c = c0 + threadIdx.x;
    if (r < rows && c < cols) store_converted<Accumulate>(out[r * cols + c], tile[threadIdx.x][j], alpha);
  }
}

// The same transpose for 2-byte elements copied as they are, in 64 x 64 tiles moved as pairs: a
// thread loads two adjacent src elements (rows r, r + 1 of dst) as one 4-byte word and stores two
// adjacent dst elements (columns c, c + 1) as one, so that every warp access is a whole 128-byte
// line (the 2-byte kernel above moves 64 bytes a warp access). Needs even rows, cols, sc and sb
// and 4-byte aligned bases (checked by the caller). The tile is 64 rows (c) of 33 words (32 pairs
// of r and one of padding): the stores' reads of words (2 tx) * 33 + j meet 2-way bank conflicts.
constexpr int kPairTile = 64;

__global__ void transpose_pairs_kernel(uint32_t* __restrict__ dst, const uint16_t* __restrict__ src, int64_t rows,
                                       int64_t cols, int64_t sb, int64_t sc) {
  __shared__ uint32_t tile[kPairTile][kPairTile / 2 + 1];
  const int64_t b = blockIdx.z, r0 = int64_t{blockIdx.y} * kPairTile, c0 = int64_t{blockIdx.x} * kPairTile;
  const uint16_t* in = src + b * sb;
  for (int j = threadIdx.y; j < kPairTile; j += kTileRows) {
    const int64_t r = r0 + 2 * threadIdx.x, c = c0 + j;
    if (r < rows && c < cols) tile[j][threadIdx.x] = *reinterpret_cast<const uint32_t*>(in + r + c * sc);
  }
  __syncthreads();
  uint32_t* out = dst + b * rows * cols / 2;
  for (int j = threadIdx.y; j < kPairTile; j += kTileRows) {
    const int64_t r = r0 + j, c = c0 + 2 * threadIdx.x;
    if (r >= rows || c >= cols) continue;
    const int shift = (j % 2) * 16;
    const uint32_t lo = (tile[2 * threadIdx.x][j / 2] >> shift) & 0xffffu;
    const uint32_t hi = (tile[2 * threadIdx.x + 1][j / 2] >> shift) & 0xffffu;
    out[(r * cols + c) / 2] = lo | (hi << 16);
  }
}

// Whether a coalesced copy is a (batched) transpose that transpose_kernel takes: dst dense, 2-D or
// 3-D, src's last two dims swapped (its row stride 1), grid dims within CUDA's limits.
bool is_transpose(const StridedDesc& dst, const StridedDesc& src) {
  const int nd = dst.ndim;
  if ((nd != 2 && nd != 3) || !is_dense_row_major(dst)) return false;
  const int64_t rows = dst.sizes[nd - 2], cols = dst.sizes[nd - 1];
  return src.strides[nd - 2] == 1 && src.strides[nd - 1] != 1 && (rows + kTile - 1) / kTile <= 65535 &&
         (nd == 2 || dst.sizes[0] <= 65535) && (cols + kTile - 1) / kTile <= INT32_MAX;
}

template <bool Accumulate>
void launch_copy(StridedDesc dst, StridedDesc src, double alpha, StreamRef stream) {
  coalesce_pair(dst, src);
  int64_t n = 1;
  for (int d = 0; d < dst.ndim; ++d) n *= dst.sizes[d];
  if (n == 0) return;
  const bool dense = is_dense_row_major(dst) && is_dense_row_major(src);
  if (!Accumulate && dense && dst.dtype == src.dtype) {
    memcpy_d2d(dst.data, stream.device.index, src.data, stream.device.index,
               static_cast<size_t>(n) * dtype_size(dst.dtype), stream);
    return;
  }
  DeviceGuard guard(stream.device.index);
  if (is_transpose(dst, src)) {
    const int nd = dst.ndim;
    if (!Accumulate && dst.dtype == src.dtype && dtype_size(dst.dtype) == 2) {
      const int64_t rows = dst.sizes[nd - 2], cols = dst.sizes[nd - 1];
      const int64_t sb = nd == 3 ? src.strides[0] : 0, sc = src.strides[nd - 1];
      const bool even = rows % 2 == 0 && cols % 2 == 0 && sc % 2 == 0 && sb % 2 == 0 &&
                        reinterpret_cast<uintptr_t>(dst.data) % 4 == 0 && reinterpret_cast<uintptr_t>(src.data) % 4 == 0;
      if (even) {
        const dim3 grid(static_cast<unsigned>((cols + kPairTile - 1) / kPairTile),
                        static_cast<unsigned>((rows + kPairTile - 1) / kPairTile), nd == 3 ? static_cast<unsigned>(dst.sizes[0]) : 1u);
        transpose_pairs_kernel<<<grid, dim3(kTile, kTileRows), 0, native(stream)>>>(
            static_cast<uint32_t*>(dst.data), static_cast<const uint16_t*>(src.data), rows, cols, sb, sc);
        PIT_CUDA_CHECK(cudaGetLastError());
        return;
      }
    }
    const int64_t rows = dst.sizes[nd - 2], cols = dst.sizes[nd - 1];
    const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile), static_cast<unsigned>((rows + kTile - 1) / kTile),
                    nd == 3 ? static_cast<unsigned>(dst.sizes[0]) : 1u);
    const int64_t sb = nd == 3 ? src.strides[0] : 0, sc = src.strides[nd - 1];
    const auto go = [&]<typename D>() {
      dispatch(src.dtype, "copy", [&]<typename S>() {
        transpose_kernel<Accumulate, D, S><<<grid, dim3(kTile, kTileRows), 0, native(stream)>>>(
            static_cast<D*>(dst.data), static_cast<const S*>(src.data), rows, cols, sb, sc, alpha);
      });
    };
    if constexpr (Accumulate)
      dispatch_floating(dst.dtype, "add_", go);
    else
      dispatch(dst.dtype, "copy", go);
    PIT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  const unsigned blocks = grid_for(n, kThreads);
  const auto launch = [&]<typename D>() {
    dispatch(src.dtype, "copy", [&]<typename S>() {
      if (dense)
        copy_dense_kernel<Accumulate, D, S><<<blocks, kThreads, 0, native(stream)>>>(
            static_cast<D*>(dst.data), static_cast<const S*>(src.data), n, alpha);
      else
        copy_strided_kernel<Accumulate, D, S><<<blocks, kThreads, 0, native(stream)>>>(dst, src, n, alpha);
    });
  };
  if constexpr (Accumulate)
    dispatch_floating(dst.dtype, "add_", launch);
  else
    dispatch(dst.dtype, "copy", launch);
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void copy_strided(const StridedDesc& dst, const StridedDesc& src, StreamRef stream) {
  launch_copy<false>(dst, src, 0.0, stream);
}

void add_strided(const StridedDesc& dst, const StridedDesc& src, double alpha, StreamRef stream) {
  launch_copy<true>(dst, src, alpha, stream);
}

}  // namespace pit::cuda
