// The active columns of a K-list operand and the two layout changes around them
// (ops/pit/column_set.h): a mark pass over the listed entries and a one-CTA scan (K is a layer
// width: 16384 columns scan in one round of 16 flags a thread, wider layers in several); At's active rows zeroed, then each
// listed entry's values put in its column's row (a row-by-row lookup of each column in every row
// block's list took 0.19 ms for 128 x 1470 lookups, H100); and a tiled transpose through shared
// memory back to [L, K], reading only the active columns' rows.
#include "ops/pit/cuda/column_set.h"

#include <algorithm>

#include "core/cuda/backend.h"
#include "ops/pit/cuda/detect_common.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/scan.cuh"

namespace pit::sparse::cuda {
namespace {

constexpr int kScanThreads = 1024;

// flags[k[j]] = 1 for every listed entry j (all writes store 1: no atomics needed).
__global__ void mark_columns_kernel(const int* offsets, int num_blocks, const int* k, int* flags) {
  const int total = offsets[num_blocks];
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < total; j += gridDim.x * blockDim.x) flags[k[j]] = 1;
}

// One CTA: pos[k] = rank of k among the flagged columns (-1 unflagged), rows[rank] = k,
// offsets = {0, count}. Rounds of kScanThreads x kRankPer columns; thread t takes kRankPer
// consecutive ones, read and written as 16-byte vectors (pos and flags are allocations, so
// 16-byte aligned): one thread walking its 16 columns an int at a time made every warp's load
// touch 32 lines, and the two passes over 16384 columns took 22 us on an H200.
constexpr int kRankPer = 16;
__global__ void __launch_bounds__(kScanThreads) rank_columns_kernel(const int* flags, int cols, int* pos, int* rows,
                                                                    int* offsets) {
  __shared__ int smem[kScanWarp + 1];
  int base = 0;
  for (int c0 = 0; c0 < cols; c0 += kScanThreads * kRankPer) {
    const int first = c0 + static_cast<int>(threadIdx.x) * kRankPer;
    const bool whole = first + kRankPer <= cols;
    int f[kRankPer];
    if (whole) {
#pragma unroll
      for (int q = 0; q < kRankPer / 4; ++q) {
        const int4 v = reinterpret_cast<const int4*>(flags + first)[q];
        f[4 * q] = v.x;
        f[4 * q + 1] = v.y;
        f[4 * q + 2] = v.z;
        f[4 * q + 3] = v.w;
      }
    } else {
#pragma unroll
      for (int e = 0; e < kRankPer; ++e) f[e] = first + e < cols ? flags[first + e] : 0;
    }
    int mine = 0;
#pragma unroll
    for (int e = 0; e < kRankPer; ++e) mine += f[e];
    int total;
    int rank = base + block_exclusive_scan(mine, smem, &total);
#pragma unroll
    for (int e = 0; e < kRankPer; ++e) {
      if (f[e]) rows[rank] = first + e;
      f[e] = f[e] ? rank++ : -1;
    }
    if (whole) {
#pragma unroll
      for (int q = 0; q < kRankPer / 4; ++q)
        reinterpret_cast<int4*>(pos + first)[q] = make_int4(f[4 * q], f[4 * q + 1], f[4 * q + 2], f[4 * q + 3]);
    } else {
#pragma unroll
      for (int e = 0; e < kRankPer; ++e)
        if (first + e < cols) pos[first + e] = f[e];
    }
    base += total;
  }
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    offsets[1] = base;
  }
}

// At's rows e < count zeroed, 16 bytes a store (the rows are contiguous: count * m elements).
__global__ void zero_rows_kernel(const int* set_offsets, int64_t row_bytes, unsigned char* out) {
  const int64_t bytes = static_cast<int64_t>(set_offsets[1]) * row_bytes, n16 = bytes / 16;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n16; i += step)
    reinterpret_cast<uint4*>(out)[i] = make_uint4(0, 0, 0, 0);
  for (int64_t i = n16 * 16 + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < bytes; i += step) out[i] = 0;
}

// Then each listed entry's r values into its column's row of At (after zero_rows_kernel on the
// same stream). Block (b, y) takes row block b's entries in units of 16 bytes (single elements
// where r or m is not a multiple of the unit), every unit of the block's share in flight at once:
// a block per row block walking its entries a warp each was latency-bound (216 us on an H200 for
// 64 row blocks of ~840 entries, 25 MB).
template <typename T>
__global__ void scatter_columns_kernel(const int* offsets, const int* klist, const T* values, int r, int m,
                                       const int* pos, bool vec, T* out) {
  constexpr int kVec = static_cast<int>(16 / sizeof(T));
  const int b = static_cast<int>(blockIdx.x);
  const int first = offsets[b];
  const int unit = vec ? kVec : 1, per_entry = (r + unit - 1) / unit;
  const int64_t total = static_cast<int64_t>(offsets[b + 1] - first) * per_entry;
  const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.x;
  for (int64_t u = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; u < total; u += step) {
    const int j = first + static_cast<int>(u / per_entry), c = static_cast<int>(u % per_entry) * unit;
    const int row0 = b * r + c;
    const int p = pos[klist[j]];
    if (row0 >= m || p < 0) continue;  // p < 0: a column set not made from this index (never written out of bounds)
    T* dst = out + static_cast<int64_t>(p) * m + row0;
    const T* src = values + static_cast<int64_t>(j) * r + c;
    if (vec) {  // r and m multiples of kVec: the unit lies inside the row block and the matrix
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      dst[0] = src[0];
    }
  }
}

// out [L, K] from rows [K, L]: a block per 64 x 64 tile of out, staged transposed in shared
// memory (rows padded to 33 words for 2-byte elements, 65 for 4-byte: no bank conflicts on the
// transposed reads).
constexpr int kTile = 64, kTransposeThreads = 256;

template <typename T>
__global__ void rows_to_columns_kernel(const T* rows, const T* mask, const int* pos, int64_t l_total, int cols,
                                       T* out) {
  constexpr int kLd = kTile + 4 / static_cast<int>(sizeof(T));
  __shared__ alignas(8) unsigned char raw[kTile * kLd * sizeof(T)];  // T may not be trivially constructible
  T(*tile)[kLd] = reinterpret_cast<T(*)[kLd]>(raw);
  __shared__ int spos[kTile];
  const int k0 = static_cast<int>(blockIdx.x) * kTile;
  if (threadIdx.x < kTile) spos[threadIdx.x] = k0 + static_cast<int>(threadIdx.x) < cols ? pos[k0 + threadIdx.x] : -1;
  for (int64_t l0 = static_cast<int64_t>(blockIdx.y) * kTile; l0 < l_total; l0 += static_cast<int64_t>(gridDim.y) * kTile) {
  __syncthreads();
  for (int i = threadIdx.x; i < kTile * kTile; i += kTransposeThreads) {
    const int kk = i / kTile, ll = i % kTile;
    const int p = spos[kk];
    const int64_t l = l0 + ll;
    T v{};
    if (p >= 0 && l < l_total) {
      const int64_t at = static_cast<int64_t>(p) * l_total + l;
      v = rows[at];
      if (mask != nullptr && !nz(mask[at])) v = T{};
    }
    tile[kk][ll] = v;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kTile * kTile; i += kTransposeThreads) {
    const int ll = i / kTile, kk = i % kTile;
    const int64_t l = l0 + ll;
    const int k = k0 + kk;
    if (l < l_total && k < cols) out[l * cols + k] = tile[kk][ll];
  }
  }
}

// The same for 2-byte elements with L and K even: words of two elements, loaded along l and
// stored along k (whole 128-byte lines a warp access), as core/cuda/copy.cu's pair transpose.
__global__ void rows_to_columns_pairs_kernel(const uint32_t* rows, const uint32_t* mask, const int* pos, int64_t l_total,
                                             int cols, uint32_t* out) {
  __shared__ uint32_t tile[kTile][kTile / 2 + 1];
  __shared__ int spos[kTile];
  const int k0 = static_cast<int>(blockIdx.x) * kTile;
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int tid = ty * 32 + tx;
  if (tid < kTile) spos[tid] = k0 + tid < cols ? pos[k0 + tid] : -1;
  for (int64_t l0 = static_cast<int64_t>(blockIdx.y) * kTile; l0 < l_total; l0 += static_cast<int64_t>(gridDim.y) * kTile) {
  __syncthreads();
  for (int kk = ty; kk < kTile; kk += kTransposeThreads / 32) {
    const int p = spos[kk];
    const int64_t l = l0 + 2 * tx;
    uint32_t v = 0;
    if (p >= 0 && l < l_total) {
      const int64_t at = (static_cast<int64_t>(p) * l_total + l) / 2;
      v = rows[at];
      if (mask != nullptr) {
        const uint32_t mk = mask[at];
        if ((mk & 0x7fffu) == 0) v &= 0xffff0000u;
        if ((mk & 0x7fff0000u) == 0) v &= 0xffffu;
      }
    }
    tile[kk][tx] = v;
  }
  __syncthreads();
  for (int j = ty; j < kTile; j += kTransposeThreads / 32) {
    const int64_t l = l0 + j;
    const int c = k0 + 2 * tx;
    if (l >= l_total || c >= cols) continue;
    const int shift = (j % 2) * 16;
    const uint32_t lo = (tile[2 * tx][j / 2] >> shift) & 0xffffu, hi = (tile[2 * tx + 1][j / 2] >> shift) & 0xffffu;
    out[(l * cols + c) / 2] = lo | (hi << 16);
  }
  }
}

}  // namespace

ColumnSet column_set(const KListIndex& a, StreamRef stream) {
  pit::cuda::DeviceGuard guard(a.offsets.device().index);
  const Device dev = a.offsets.device();
  const int64_t nb = a.offsets.numel() - 1, cols = a.cols;
  ColumnSet cs;
  cs.set.rows = Tensor::empty({cols}, DType::i32, dev);
  cs.set.offsets = Tensor::empty({2}, DType::i32, dev);
  cs.set.num_rows = cols;
  cs.set.num_segments = 1;
  cs.pos = Tensor::empty({cols}, DType::i32, dev);
  Tensor flags = Tensor::empty({std::max<int64_t>(cols, 1)}, DType::i32, dev);
  fill_bytes(flags, 0, stream);
  const int64_t entries = a.k.numel();
  if (entries > 0) {
    const int64_t want = (entries + 255) / 256;
    const unsigned grid = static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(want, 8LL * sm_count())));
    mark_columns_kernel<<<grid, 256, 0, native(stream)>>>(a.offsets.data<int32_t>(), static_cast<int>(nb),
                                                          a.k.data<int32_t>(), flags.data<int32_t>());
    PIT_CUDA_CHECK(cudaGetLastError());
  }
  rank_columns_kernel<<<1, kScanThreads, 0, native(stream)>>>(flags.data<int32_t>(), static_cast<int>(cols),
                                                            cs.pos.data<int32_t>(), cs.set.rows.data<int32_t>(),
                                                            cs.set.offsets.data<int32_t>());
  PIT_CUDA_CHECK(cudaGetLastError());
  return cs;
}

Tensor set_columns_t(const KListIndex& a, const ColumnSet& cs, StreamRef stream) {
  pit::cuda::DeviceGuard guard(a.values.device().index);
  Tensor out = Tensor::empty({a.cols, a.rows}, a.values.dtype(), a.values.device());
  const int64_t nb = a.offsets.numel() - 1;
  if (a.cols == 0 || a.rows == 0 || nb == 0) return out;
  zero_rows_kernel<<<static_cast<unsigned>(4 * sm_count()), 256, 0, native(stream)>>>(
      cs.set.offsets.data<int32_t>(), a.rows * static_cast<int64_t>(dtype_size(a.values.dtype())),
      static_cast<unsigned char*>(out.data_ptr()));
  PIT_CUDA_CHECK(cudaGetLastError());
  const int64_t per_block = std::clamp<int64_t>((8LL * sm_count() + nb - 1) / nb, 1, 65535);
  const bool aligned16 = reinterpret_cast<uintptr_t>(a.values.data_ptr()) % 16 == 0;
  dispatch_floating(a.values.dtype(), "set_columns_t (CUDA)", [&]<typename T>() {
    constexpr int64_t kVec = 16 / sizeof(T);
    const bool vec = aligned16 && a.block_rows % kVec == 0 && a.rows % kVec == 0;
    scatter_columns_kernel<T><<<dim3(static_cast<unsigned>(nb), static_cast<unsigned>(per_block)), 256, 0, native(stream)>>>(
        a.offsets.data<int32_t>(), a.k.data<int32_t>(), static_cast<const T*>(a.values.data_ptr()),
        static_cast<int>(a.block_rows), static_cast<int>(a.rows), cs.pos.data<int32_t>(), vec, out.data<T>());
  });
  PIT_CUDA_CHECK(cudaGetLastError());
  return out;
}

Tensor rows_to_columns(const Tensor& rows, const ColumnSet& cs, const Tensor& mask, StreamRef stream) {
  pit::cuda::DeviceGuard guard(rows.device().index);
  const int64_t cols = rows.size(0), l = rows.size(1);
  Tensor out = Tensor::empty({l, cols}, rows.dtype(), rows.device());
  if (l == 0 || cols == 0) return out;
  // x walks K's tiles (consecutive blocks write neighbouring 128-byte pieces of the same rows of
  // out), y L's, looping where L has more than 65535 tiles.
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                  static_cast<unsigned>(std::min<int64_t>((l + kTile - 1) / kTile, 65535)));
  // Pairs of 2-byte elements as 4-byte words: even widths, and bases 4-byte aligned (a view may
  // start at an odd element).
  const auto word_aligned = [](const Tensor& t) { return !t.defined() || reinterpret_cast<uintptr_t>(t.data_ptr()) % 4 == 0; };
  if (dtype_size(rows.dtype()) == 2 && l % 2 == 0 && cols % 2 == 0 && word_aligned(rows) && word_aligned(mask)) {
    rows_to_columns_pairs_kernel<<<grid, dim3(32, kTransposeThreads / 32), 0, native(stream)>>>(
        static_cast<const uint32_t*>(rows.data_ptr()), mask.defined() ? static_cast<const uint32_t*>(mask.data_ptr()) : nullptr,
        cs.pos.data<int32_t>(), l, static_cast<int>(cols), static_cast<uint32_t*>(out.data_ptr()));
    PIT_CUDA_CHECK(cudaGetLastError());
    return out;
  }
  dispatch_floating(rows.dtype(), "rows_to_columns (CUDA)", [&]<typename T>() {
    rows_to_columns_kernel<T><<<grid, kTransposeThreads, 0, native(stream)>>>(
        static_cast<const T*>(rows.data_ptr()), mask.defined() ? static_cast<const T*>(mask.data_ptr()) : nullptr,
        cs.pos.data<int32_t>(), l, static_cast<int>(cols), out.data<T>());
  });
  PIT_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace pit::sparse::cuda
