// CUDA gather_entry_rows (ops/pit/entry_rows.h): a warp per entry, its row copied in 16-byte
// chunks (2-byte units where a row is not a 16-byte multiple at 16-byte aligned addresses), the
// entries past the count (read on the device) skipped.
#include "ops/pit/cuda/entry_rows.h"

#include <algorithm>
#include <cstdint>

#include "core/cuda/backend.h"
#include "core/cuda/device_error.cuh"
#include "core/cuda/runtime.h"
#include "ops/pit/cuda/launch.cuh"

namespace pit::sparse::cuda {
namespace {

constexpr int kThreads = 256;

template <typename U>
__global__ void __launch_bounds__(kThreads)
    entry_rows_kernel(const U* __restrict__ src, int64_t src_rows, int64_t units, const int32_t* __restrict__ rows,
                      const int32_t* __restrict__ count_at, U* __restrict__ out, pit::DeviceErrorSink err) {
  const int64_t count = *count_at;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t warps = int64_t{gridDim.x} * (kThreads / 32);
  for (int64_t e = (blockIdx.x * int64_t{kThreads} + threadIdx.x) / 32; e < count; e += warps) {
    const int32_t r = rows[e];
    if (r < 0 || r >= src_rows) {
      pit::cuda::record_device_error(err, r, src_rows, e);
      continue;
    }
    const U* from = src + r * units;
    U* to = out + e * units;
#pragma unroll 4
    for (int64_t c = lane; c < units; c += 32) to[c] = from[c];
  }
}

int32_t error_kind() {
  static const int32_t kind = register_device_error_kind(
      {.op = "gather_entry_rows",
       .value = "row",
       .axis = "the source's rows",
       .position = "entry of the index",
       .from_end = false,
       .valid_extra = "",
       .fix = "build the index over this tensor's rows (rows_from_routing with one routing row per source row)"});
  return kind;
}

}  // namespace

void gather_entry_rows(const Tensor& src, const RowSetIndex& idx, Tensor& out, StreamRef stream) {
  const int64_t capacity = idx.rows.numel(), row_bytes = src.size(1) * static_cast<int64_t>(dtype_size(src.dtype()));
  if (capacity == 0 || row_bytes == 0) return;
  pit::cuda::DeviceGuard guard(src.device().index);
  const pit::DeviceErrorSink err = pit::cuda::device_error_sink(src.device().index, error_kind(), 0);
  const auto aligned16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  // Enough warps for every entry, up to a few blocks an SM.
  const auto grid = static_cast<unsigned>(
      std::min<int64_t>((capacity + kThreads / 32 - 1) / (kThreads / 32), int64_t{8} * sm_count()));
  const int32_t* count_at = idx.offsets.data<int32_t>() + idx.num_segments;
  const auto launch = [&]<typename U>() {
    entry_rows_kernel<U><<<grid, kThreads, 0, native(stream)>>>(
        static_cast<const U*>(src.data_ptr()), src.size(0), row_bytes / static_cast<int64_t>(sizeof(U)),
        idx.rows.data<int32_t>(), count_at, static_cast<U*>(out.data_ptr()), err);
  };
  if (row_bytes % 16 == 0 && aligned16(src.data_ptr()) && aligned16(out.data_ptr())) launch.template operator()<uint4>();
  else launch.template operator()<uint16_t>();
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::sparse::cuda
