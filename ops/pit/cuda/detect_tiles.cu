// CUDA detection of micro-tiles tr x tc (K lists: tc = 1; blocks: tc = tr) in ONE read of the
// operand. A tile is (block row i, column chunk); as many CTAs as fit on the GPU take tiles by
// ticket. A CTA loads the chunk's tr x C tile into shared memory (16-byte loads when rows are
// aligned), marks non-zero micro-tiles while loading, compacts them with a block scan, gets its
// global offset from a chained scan over the tiles (decoupled look-back: no second pass, no host
// sync) and writes the column list and the condensed values from shared memory, contiguous and
// coalesced. The transposed lists, when
// asked, come from a small position map [block rows, block cols] by two column walks and a scan.
#include <algorithm>
#include <type_traits>

#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/detect.h"
#include "ops/pit/cuda/detect_common.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/scan.cuh"

namespace pit::sparse::cuda {
namespace {

// Shared-memory tile budget: 32 KB keeps 5+ CTAs resident per SM with the flags beside it.
constexpr int64_t kTileBytes = 32 * 1024;
// 16-byte loads each thread issues before using any: 4 x 256 threads x 16 B = 16 KB in flight
// per CTA.
constexpr int kLoads = 4;

template <typename T>
constexpr int pad_elems() {
  return sizeof(T) >= 4 ? 1 : 4 / static_cast<int>(sizeof(T));  // odd row stride in 4-byte words
}

// The mask bytes of one 16-byte pack of T (V = 16 / sizeof(T) of them), loaded as one word;
// byte q is bits 8q..8q+7 (little-endian). A byte array took a register a byte.
template <int V>
using MaskWord = std::conditional_t<
    V == 16, unsigned __int128,
    std::conditional_t<V == 8, unsigned long long, std::conditional_t<V == 4, unsigned, unsigned short>>>;

struct TileGeom {
  int rows, cols, tr, tc, chunk, groups, chunks_per_row, nbr, nbc, tiles;
};

template <typename T, bool kMask, bool kVec>
__global__ void __launch_bounds__(kDetectThreads)
    detect_tiles_kernel(const T* __restrict__ a, const uint8_t* __restrict__ mask, TileGeom g,
                        unsigned long long* state, int* offsets, int* out_cols, T* values, int* pos) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int ld = g.chunk + pad_elems<T>();
  T* tile = reinterpret_cast<T*>(smem_raw);
  int* flag = reinterpret_cast<int*>(smem_raw + ((static_cast<size_t>(g.tr) * ld * sizeof(T) + 15) / 16) * 16);
  int* sel = flag + g.groups;
  __shared__ int scan_smem[kScanWarp + 1];
  __shared__ int s_next, s_base;
  // A block's first tile is its index, the next ones come by ticket (gridDim.x on), each taken
  // while the current tile loads: no tile waits for an atomic's round trip before its loads
  // (under Nsight Compute, waiting for a ticket first was 35 % of the stall samples of 128x1
  // detection at 99 %). A tile's look-back waits only on smaller tiles: the first round relies on
  // blocks starting in index order, as single-pass scans do (CUB's decoupled look-back takes its
  // tile from blockIdx.x); later tiles are handed out in order to running blocks.
  for (int tile_id = static_cast<int>(blockIdx.x); tile_id < g.tiles;) {
    for (int q = threadIdx.x; q < g.groups; q += blockDim.x) flag[q] = 0;
    __syncthreads();  // the flags zeroed, and every thread has read s_next
    if (threadIdx.x == 0) s_next = static_cast<int>(gridDim.x) + take_ticket(state);
    const int bi = tile_id / g.chunks_per_row, ch = tile_id % g.chunks_per_row;
    const int64_t row0 = static_cast<int64_t>(bi) * g.tr;
    const int col0 = ch * g.chunk;

    // Load the tile, zero-filled past the edges (and where the mask is 0), flagging micro-tiles.
    if constexpr (kVec) {
      constexpr int V = 16 / sizeof(T);
      const int vpr = g.chunk / V, total = g.tr * vpr;
      // kLoads 16-byte loads in flight per thread before any is used (memory-level parallelism).
      for (int e0 = threadIdx.x; e0 < total; e0 += blockDim.x * kLoads) {
        pit::cuda::Pack<T> p[kLoads];
        MaskWord<V> m[kLoads];
  #pragma unroll
        for (int u = 0; u < kLoads; ++u) {
          const int e = e0 + u * static_cast<int>(blockDim.x);
          const int y = e / vpr, xv = (e % vpr) * V;
          const int64_t r = row0 + y;
          const int c = col0 + xv;
          if (e < total && r < g.rows && c < g.cols) {
            p[u] = *reinterpret_cast<const pit::cuda::Pack<T>*>(a + r * g.cols + c);
            if constexpr (kMask) m[u] = *reinterpret_cast<const MaskWord<V>*>(mask + r * g.cols + c);
          } else {
  #pragma unroll
            for (int q = 0; q < V; ++q) p[u].v[q] = T(0.0f);
            m[u] = 0;
          }
        }
  #pragma unroll
        for (int u = 0; u < kLoads; ++u) {
          const int e = e0 + u * static_cast<int>(blockDim.x);
          if (e >= total) break;
          const int y = e / vpr, xv = (e % vpr) * V;
          bool any = false;
  #pragma unroll
          for (int q = 0; q < V; ++q) {
            T v = p[u].v[q];
            const bool keep = kMask ? ((m[u] >> (8 * q)) & 0xffu) != 0 : nz(v);
            if (kMask && !keep) v = T(0.0f);
            if (keep && g.tc == 1) flag[xv + q] = 1;
            any = any || keep;
            tile[y * ld + xv + q] = v;
          }
          if (any && g.tc > 1) flag[xv / g.tc] = 1;  // V divides tc when tc > 1 (tc in {16, 32, 64})
        }
      }
    } else {
      for (int e = threadIdx.x; e < g.tr * g.chunk; e += blockDim.x) {
        const int y = e / g.chunk, x = e % g.chunk;
        const int64_t r = row0 + y;
        const int c = col0 + x;
        T v = T(0.0f);
        bool keep = false;
        if (r < g.rows && c < g.cols) {
          v = a[r * g.cols + c];
          if constexpr (kMask) {
            keep = mask[r * g.cols + c] != 0;
            if (!keep) v = T(0.0f);
          } else {
            keep = nz(v);
          }
        }
        tile[y * ld + x] = v;
        if (keep) flag[x / g.tc] = 1;  // every writer stores the same value
      }
    }
    __syncthreads();

    // Compact the flagged micro-tiles of this chunk, in column order.
    int count = 0;
    for (int q0 = 0; q0 < g.groups; q0 += blockDim.x) {
      const int q = q0 + threadIdx.x;
      const int f = q < g.groups ? flag[q] : 0;
      int total;
      const int ex = block_exclusive_scan(f, scan_smem, &total);
      if (f) sel[count + ex] = q;
      count += total;
    }
    if (threadIdx.x < kScanWarp) {  // warp 0 looks back
      const int base = chained_prefix(state, tile_id, count);
      if (threadIdx.x == 0) {
        s_base = base;
        if (ch == 0) offsets[bi] = base;
        if (tile_id == g.tiles - 1) offsets[g.nbr] = base + count;
      }
    }
    __syncthreads();
    const int base = s_base;
    const int gcol0 = ch * g.groups;
    for (int p = threadIdx.x; p < count; p += blockDim.x) {
      out_cols[base + p] = gcol0 + sel[p];
      if (pos) pos[static_cast<int64_t>(bi) * g.nbc + gcol0 + sel[p]] = base + p;
    }
    if (values) {
      const int te = g.tr * g.tc;
      T* out = values + static_cast<int64_t>(base) * te;
      constexpr int V = 16 / sizeof(T);
      if (g.tc == 1 && g.tr % V == 0 && reinterpret_cast<uintptr_t>(values) % 16 == 0) {
        // K lists: entry p's r-vector is tile column sel[p]; 16-byte stores, a run of V rows each
        // (at 0 % sparsity the 2-byte stores made the kernel 2.6x slower than at 99 %).
        const int per = g.tr / V;
        for (int i = threadIdx.x; i < count * per; i += blockDim.x) {
          const int p = i / per, y0 = (i % per) * V;
          pit::cuda::Pack<T> pk;
#pragma unroll
          for (int q = 0; q < V; ++q) pk.v[q] = tile[(y0 + q) * ld + sel[p]];
          *reinterpret_cast<pit::cuda::Pack<T>*>(out + static_cast<int64_t>(p) * g.tr + y0) = pk;
        }
      } else if (g.tc % V == 0 && reinterpret_cast<uintptr_t>(values) % 16 == 0) {
        // Blocks: entry p is the tr x tc micro-tile at tile column sel[p] * tc, row-major; its rows
        // are runs of tc / V packs, stored 16 bytes at a time.
        const int per = te / V;
        for (int i = threadIdx.x; i < count * per; i += blockDim.x) {
          const int p = i / per, rem = (i % per) * V;
          const T* src = tile + (rem / g.tc) * ld + sel[p] * g.tc + rem % g.tc;
          pit::cuda::Pack<T> pk;
#pragma unroll
          for (int q = 0; q < V; ++q) pk.v[q] = src[q];
          *reinterpret_cast<pit::cuda::Pack<T>*>(out + static_cast<int64_t>(p) * te + rem) = pk;
        }
      } else {
        for (int e = threadIdx.x; e < count * te; e += blockDim.x) {
          const int p = e / te, rem = e % te;
          const int y = rem / g.tc, x = rem % g.tc;
          out[e] = tile[y * ld + sel[p] * g.tc + x];
        }
      }
    }
    __syncthreads();  // the tile, flags, selection and s_base are free again; s_next is visible
    tile_id = s_next;
  }
}

// Transposed lists from the position map (pos[i, c] = entry or -1): one thread per block column.
__global__ void transposed_count_kernel(const int* pos, int nbr, int nbc, int* tcount) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= nbc) return;
  int n = 0;
  for (int i = 0; i < nbr; ++i) n += pos[static_cast<int64_t>(i) * nbc + c] >= 0;
  tcount[c] = n;
}

__global__ void transposed_write_kernel(const int* pos, int nbr, int nbc, const int* t_offsets, int* t_rows,
                                        int* t_pos) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= nbc) return;
  int j = t_offsets[c];
  for (int i = 0; i < nbr; ++i) {
    const int p = pos[static_cast<int64_t>(i) * nbc + c];
    if (p < 0) continue;
    t_rows[j] = i;
    t_pos[j] = p;
    ++j;
  }
}

template <typename T, bool kMask, bool kVec>
void launch_tiles(const Tensor& a, const Tensor& mask, const TileGeom& g, const Tensor& state,
                  cpu::TileLists& out, const Tensor& pos, StreamRef stream) {
  const size_t smem = ((static_cast<size_t>(g.tr) * (g.chunk + pad_elems<T>()) * sizeof(T) + 15) / 16) * 16 +
                      2 * sizeof(int) * static_cast<size_t>(g.groups);
  auto kernel = detect_tiles_kernel<T, kMask, kVec>;
  // As many blocks as can be resident at once (each takes tiles until none is left).
  const int per_sm = allow_smem(kernel, smem, kDetectThreads);
  const int grid = static_cast<int>(std::min<int64_t>(g.tiles, int64_t{per_sm} * sm_count()));
  kernel<<<grid, kDetectThreads, smem, native(stream)>>>(
      static_cast<const T*>(a.data_ptr()), kMask ? static_cast<const uint8_t*>(mask.data_ptr()) : nullptr, g,
      state_ptr(state), out.offsets.data<int32_t>(), out.cols.data<int32_t>(),
      out.values.defined() ? static_cast<T*>(out.values.data_ptr()) : nullptr,
      pos.defined() ? pos.data<int32_t>() : nullptr);
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

cpu::TileLists detect_tiles(const Tensor& a, const Tensor& mask, int64_t tr, int64_t tc, bool values,
                            bool transposed, StreamRef stream) {
  pit::cuda::DeviceGuard guard(a.device().index);
  const int64_t rows = a.size(0), cols = a.size(1);
  const int64_t nbr = (rows + tr - 1) / tr, nbc = (cols + tc - 1) / tc, cap = nbr * nbc;
  cpu::TileLists out;
  out.offsets = Tensor::empty({nbr + 1}, DType::i32, a.device());
  out.cols = Tensor::empty({cap}, DType::i32, a.device());
  if (values) out.values = Tensor::empty({cap, tr * tc}, a.dtype(), a.device());
  Tensor pos;
  if (transposed) {
    pos = Tensor::empty({cap}, DType::i32, a.device());
    fill_bytes(pos, 0xff, stream);  // -1: not listed
  }
  // Chunk width: the 32 KB tile budget, a multiple of 64 columns (so of tc and of a 16-byte
  // pack), at most 1024 so that flags and the selection list stay small.
  const int64_t elem = static_cast<int64_t>(a.itemsize());
  const int64_t chunk = std::clamp<int64_t>((kTileBytes / (tr * elem)) / 64 * 64, 64, 1024);
  TileGeom g{static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(tr), static_cast<int>(tc),
             static_cast<int>(chunk), static_cast<int>(chunk / tc), static_cast<int>((cols + chunk - 1) / chunk),
             static_cast<int>(nbr), static_cast<int>(nbc), 0};
  g.tiles = nbr * g.chunks_per_row;
  if (g.tiles == 0) {
    fill_bytes(out.offsets, 0, stream);
  } else {
    const Tensor state = chain_state(g.tiles, a.device(), stream);
    const bool aligned = (cols * elem) % 16 == 0 && reinterpret_cast<uintptr_t>(a.data_ptr()) % 16 == 0 &&
                         (!mask.defined() || reinterpret_cast<uintptr_t>(mask.data_ptr()) % 16 == 0);
    dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(a.dtype(), "detect (CUDA)", [&]<typename T>() {
      if (mask.defined()) {
        if (aligned) launch_tiles<T, true, true>(a, mask, g, state, out, pos, stream);
        else launch_tiles<T, true, false>(a, mask, g, state, out, pos, stream);
      } else {
        if (aligned) launch_tiles<T, false, true>(a, mask, g, state, out, pos, stream);
        else launch_tiles<T, false, false>(a, mask, g, state, out, pos, stream);
      }
    });
  }
  if (!transposed) return out;
  out.t_offsets = Tensor::empty({nbc + 1}, DType::i32, a.device());
  out.t_rows = Tensor::empty({cap}, DType::i32, a.device());
  out.t_pos = Tensor::empty({cap}, DType::i32, a.device());
  const Tensor tcount = Tensor::empty({std::max<int64_t>(nbc, 1)}, DType::i32, a.device());
  const unsigned blocks = static_cast<unsigned>(std::max<int64_t>(1, (nbc + 255) / 256));
  if (nbc > 0)
    transposed_count_kernel<<<blocks, 256, 0, native(stream)>>>(pos.data<int32_t>(), static_cast<int>(nbr),
                                                                 static_cast<int>(nbc), tcount.data<int32_t>());
  exclusive_scan_kernel<<<1, 1024, 0, native(stream)>>>(tcount.data<int32_t>(), out.t_offsets.data<int32_t>(),
                                                         static_cast<int>(nbc));
  if (nbc > 0)
    transposed_write_kernel<<<blocks, 256, 0, native(stream)>>>(pos.data<int32_t>(), static_cast<int>(nbr),
                                                                 static_cast<int>(nbc), out.t_offsets.data<int32_t>(),
                                                                 out.t_rows.data<int32_t>(), out.t_pos.data<int32_t>());
  PIT_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace pit::sparse::cuda
