// Tensor maps for TMA loads (ops/cuda/tensor_map.h).
#include "ops/cuda/tensor_map.h"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <mutex>
#include <string>

#include "core/error.h"

namespace pit::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static std::once_flag once;
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static cudaError_t error = cudaSuccess;
  static cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSuccess;
  std::call_once(once, [] {
    void* p = nullptr;
    error = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found);
    fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  });
  PIT_CHECK(error == cudaSuccess && found == cudaDriverEntryPointSuccess && fn != nullptr,
            "TMA: the CUDA driver has no cuTensorMapEncodeTiled (",
            error != cudaSuccess ? cudaGetErrorString(error) : "symbol not found",
            "); it needs a driver of CUDA 12.0 or later: update the driver, or use Engine::automatic");
  return fn;
}

// Rank 2 (mats == 0) or 3.
CUtensorMap encode(DType dtype, const void* base, int64_t mats, int64_t rows, int64_t cols, int64_t ld,
                   int64_t mat_stride, int box_rows, const char* what) {
  PIT_CHECK(dtype == DType::f16 || dtype == DType::bf16, "TMA map of ", what, ": f16 or bf16 only, got ",
            dtype_name(dtype));
  PIT_CHECK(reinterpret_cast<uintptr_t>(base) % 16 == 0 && (ld * 2) % 16 == 0 && (mat_stride * 2) % 16 == 0,
            "TMA map of ", what, ": the rows must start 16-byte aligned (base pointer and a row length that is a "
            "multiple of 8 elements, here ", ld, "); use Engine::automatic");
  PIT_CHECK(box_rows >= 1 && box_rows <= 256, "TMA map of ", what, ": a box of 1 to 256 rows, not ", box_rows);
  constexpr int64_t kMax = int64_t{1} << 31;
  PIT_CHECK(rows >= 1 && cols >= 1 && rows < kMax && cols < kMax && mats < kMax, "TMA map of ", what, ": ", rows,
            " x ", cols, " is empty or too large for 32-bit coordinates");
  CUtensorMap map{};
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows),
                              static_cast<cuuint64_t>(mats > 0 ? mats : 1)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(ld) * 2, static_cast<cuuint64_t>(mat_stride) * 2};  // bytes
  const cuuint32_t box[3] = {64, static_cast<cuuint32_t>(box_rows), 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const cuuint32_t rank = mats > 0 ? 3 : 2;
  const CUresult r = encode_fn()(&map, dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                                 rank, const_cast<void*>(base), dims, strides, box, elem_strides,
                                 CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                 CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  PIT_CHECK(r == CUDA_SUCCESS, "TMA map of ", what, " (", mats > 0 ? std::to_string(mats) + " x " : std::string(),
            rows, " x ", cols, ", row stride ", ld, " elements, box ", box_rows,
            " x 64): cuTensorMapEncodeTiled failed with error ", static_cast<int>(r));
  return map;
}

}  // namespace

CUtensorMap tensor_map_2d(DType dtype, const void* base, int64_t rows, int64_t cols, int64_t ld, int box_rows,
                          const char* what) {
  return encode(dtype, base, 0, rows, cols, ld, 0, box_rows, what);
}

CUtensorMap tensor_map_3d(DType dtype, const void* base, int64_t mats, int64_t rows, int64_t cols, int64_t ld,
                          int64_t mat_stride, int box_rows, const char* what) {
  PIT_CHECK(mats >= 1, "TMA map of ", what, ": at least one matrix");
  return encode(dtype, base, mats, rows, cols, ld, mat_stride, box_rows, what);
}

}  // namespace pit::cuda
