// CUDA gather_entry_rows (ops/pit/entry_rows.h): a warp per entry, its row copied in the widest
// units (16, 4, 2 or 1 bytes) that divide the row and both base addresses, the entries past the
// count (read on the device) skipped.
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
                      const int32_t* __restrict__ count_at, int64_t capacity, U* __restrict__ out,
                      pit::DeviceErrorSink err) {
  // The count never exceeds the index's capacity (rows_from_routing); bounded here all the same.
  const int64_t count = min(int64_t{*count_at}, capacity);
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
  // Enough warps for every entry, up to a few blocks an SM.
  const auto grid = static_cast<unsigned>(
      std::min<int64_t>((capacity + kThreads / 32 - 1) / (kThreads / 32), int64_t{8} * sm_count()));
  const int32_t* count_at = idx.offsets.data<int32_t>() + idx.num_segments;
  const auto launch = [&]<typename U>() {
    entry_rows_kernel<U><<<grid, kThreads, 0, native(stream)>>>(
        static_cast<const U*>(src.data_ptr()), src.size(0), row_bytes / static_cast<int64_t>(sizeof(U)),
        idx.rows.data<int32_t>(), count_at, capacity, static_cast<U*>(out.data_ptr()), err);
  };
  // The widest unit that divides the row and both base addresses (u8 rows of odd length: bytes).
  const auto fits = [&](int64_t unit) {
    const auto aligned = [&](const void* q) { return reinterpret_cast<uintptr_t>(q) % static_cast<uintptr_t>(unit) == 0; };
    return row_bytes % unit == 0 && aligned(src.data_ptr()) && aligned(out.data_ptr());
  };
  if (fits(16)) launch.template operator()<uint4>();
  else if (fits(4)) launch.template operator()<uint32_t>();
  else if (fits(2)) launch.template operator()<uint16_t>();
  else launch.template operator()<uint8_t>();
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::sparse::cuda
