// Deterministic index_add on the GPU: out[k] += sum of src[j] over the j with index[j] == k,
// added in ascending j, so the result is the same bits on every run (exact resume needs it:
// index_add is the embedding's backward). Atomics would add in whatever order the threads meet.
//
// 1. keys: index[j] made non-negative (an index outside [-n, n) is recorded in the device's
//    error slot and gets the key n, which sorts last and is skipped); values: j.
// 2. A stable radix sort of (key, j) over the bits that n needs (CUB, of the CUDA toolkit).
// 3. One block per (sorted position p, column chunk, outer) whose p starts a run of equal keys
//    walks that run in order and adds the sum to out once (a grid past CUDA's limits walks the
//    rest in a loop). Four partial sums in a fixed pattern
//    keep several loads in flight on long runs (a frequent token) without giving up determinism.
// Nothing synchronises with the host.
#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/backend.h"
#include "core/cuda/device_error.cuh"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "core/memory.h"
#include "ops/cuda/index.h"

namespace pit::cuda {
namespace {

constexpr unsigned kRunThreads = 128;  // columns per block of the run walk

__global__ void keys_kernel(const int64_t* __restrict__ index, int64_t stride, int64_t m, int64_t n,
                            int64_t* __restrict__ keys, int32_t* __restrict__ pos,
                            DeviceErrorSink err) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < m;
       j += int64_t{gridDim.x} * blockDim.x) {
    const int64_t v = index[j * stride];
    const int64_t k = v < 0 ? v + n : v;
    const bool ok = static_cast<uint64_t>(k) < static_cast<uint64_t>(n);
    if (!ok) record_device_error(err, v, n, j);
    keys[j] = ok ? k : n;
    pos[j] = static_cast<int32_t>(j);
  }
}

// Block (x, y) walks items x, x + gridDim.x, ... of the m * col_chunks (index entry, column chunk)
// pairs and outer slices y, y + gridDim.y, ...: each output element is summed by one thread, in
// the sorted order, whatever the grid.
template <typename T, typename Acc>
__global__ void run_sum_kernel(Acc* __restrict__ out, const T* __restrict__ src,
                               const int64_t* __restrict__ keys, const int32_t* __restrict__ pos,
                               int64_t m, int64_t n, int64_t inner, int64_t col_chunks, int64_t outer) {
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y)
    for (int64_t item = blockIdx.x; item < m * col_chunks; item += gridDim.x) {
      const int64_t p = item / col_chunks;
      const int64_t i = (item % col_chunks) * kRunThreads + threadIdx.x;
      const int64_t key = keys[p];
      if (key >= n || (p > 0 && keys[p - 1] == key) || i >= inner) continue;
      const T* s = src + o * m * inner + i;
      Acc part[4] = {Acc(0), Acc(0), Acc(0), Acc(0)};
      int64_t q = p;
      for (; q + 4 <= m && keys[q + 3] == key; q += 4) {
#pragma unroll
        for (int u = 0; u < 4; ++u) part[u] += convert<Acc>(s[int64_t{pos[q + u]} * inner]);
      }
      for (int u = 0; q < m && keys[q] == key; ++q, ++u) part[u] += convert<Acc>(s[int64_t{pos[q]} * inner]);
      out[(o * n + key) * inner + i] += (part[0] + part[1]) + (part[2] + part[3]);
    }
}

}  // namespace

void index_add_sorted(Tensor& acc, const Tensor& index, int64_t index_stride, const Tensor& src,
                      int64_t outer, int64_t n, int64_t m, int64_t inner, DeviceErrorSink err,
                      StreamRef stream) {
  PIT_CHECK(m <= INT32_MAX, "index_add: more than 2^31 - 1 indices (", m, ") on CUDA");
  const cudaStream_t s = native(stream);
  auto keys_in = Storage::allocate(static_cast<size_t>(m) * 2 * sizeof(int64_t), stream.device, stream);
  auto pos_in = Storage::allocate(static_cast<size_t>(m) * 2 * sizeof(int32_t), stream.device, stream);
  int64_t* keys = static_cast<int64_t*>(keys_in->data());
  int32_t* pos = static_cast<int32_t*>(pos_in->data());
  keys_kernel<<<grid_for(m, kThreads), kThreads, 0, s>>>(index.data<int64_t>(), index_stride, m, n,
                                                          keys, pos, err);
  PIT_CUDA_CHECK(cudaGetLastError());

  // Keys are in [0, n]: sort on the bits that n needs.
  const int end_bit = std::bit_width(static_cast<uint64_t>(n));
  cub::DoubleBuffer<int64_t> kb(keys, keys + m);
  cub::DoubleBuffer<int32_t> vb(pos, pos + m);
  size_t temp_bytes = 0;
  PIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, kb, vb, static_cast<int>(m), 0,
                                                 end_bit, s));
  auto temp = Storage::allocate(std::max<size_t>(temp_bytes, 1), stream.device, stream);
  PIT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp->data(), temp_bytes, kb, vb, static_cast<int>(m),
                                                 0, end_bit, s));

  const int64_t col_chunks = (inner + kRunThreads - 1) / kRunThreads;
  // The kernel walks what the grid does not cover (grid limits: 2^31 - 1 by 65535).
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(m * col_chunks, INT32_MAX)),
                  static_cast<unsigned>(std::min<int64_t>(outer, 65535)));
  dispatch_floating(src.dtype(), "index_add", [&]<typename T>() {
    using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
    run_sum_kernel<T, Acc><<<grid, kRunThreads, 0, s>>>(acc.data<Acc>(), src.data<T>(), kb.Current(),
                                                       vb.Current(), m, n, inner, col_chunks, outer);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::cuda
