// cuBLAS GEMM. cuBLAS is column-major: a row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so A and B swap places and nothing is copied.
#include "ops/cuda/gemm.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <thread>

#include "core/cuda/runtime.h"

namespace pit::cuda {
namespace {

// One handle per (device, thread): handles are not thread-safe to share, and cuBLAS binds a
// handle to the device current at creation. Handles live until the process ends.
cublasHandle_t handle_for(int device) {
  thread_local std::map<int, cublasHandle_t> handles;
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cublasHandle_t h = nullptr;
  PIT_CUBLAS_CHECK(cublasCreate(&h));
  // f16/bf16 split-K partial sums stay in f32: cuBLAS otherwise may reduce them in the output
  // type, which costs bf16 results several ulps against the f32-accumulated reference.
  PIT_CUBLAS_CHECK(cublasSetMathMode(h, static_cast<cublasMath_t>(
                                            CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  handles.emplace(device, h);
  return h;
}

cudaDataType_t data_type(DType d) {
  switch (d) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    default:
      PIT_THROW("matmul on CUDA: dtype ", dtype_name(d), " is not supported; supported dtypes: "
                "f32, f64, f16, bf16");
  }
}

}  // namespace

void gemm(const GemmArgs& g, StreamRef stream) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  check_gemm_fits_int(g, "cuBLAS");
  DeviceGuard guard(stream.device.index);
  cublasHandle_t h = handle_for(stream.device.index);
  PIT_CUBLAS_CHECK(cublasSetStream(h, native(stream)));
  const cudaDataType_t type = data_type(g.dtype);
  // f16/bf16 accumulate in f32 on tensor cores; f32 stays full f32 (no TF32) so that results
  // match the CPU reference; f64 is f64.
  const cublasComputeType_t compute = g.dtype == DType::f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  const float alpha_f = static_cast<float>(g.alpha), beta_f = static_cast<float>(g.beta);
  const void* alpha = g.dtype == DType::f64 ? static_cast<const void*>(&g.alpha) : &alpha_f;
  const void* beta = g.dtype == DType::f64 ? static_cast<const void*>(&g.beta) : &beta_f;
  const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Column-major view: C^T (n x m) = op(B)^T (n x k) * op(A)^T (k x m).
  if (g.batch == 1) {
    PIT_CUBLAS_CHECK(cublasGemmEx(h, op_b, op_a, static_cast<int>(g.n), static_cast<int>(g.m),
                                  static_cast<int>(g.k), alpha, g.b, type, static_cast<int>(g.ldb),
                                  g.a, type, static_cast<int>(g.lda), beta, g.c, type,
                                  static_cast<int>(g.ldc), compute, CUBLAS_GEMM_DEFAULT));
  } else {
    PIT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h, op_b, op_a, static_cast<int>(g.n), static_cast<int>(g.m), static_cast<int>(g.k), alpha,
        g.b, type, static_cast<int>(g.ldb), g.stride_b, g.a, type, static_cast<int>(g.lda),
        g.stride_a, beta, g.c, type, static_cast<int>(g.ldc), g.stride_c,
        static_cast<int>(g.batch), compute, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace pit::cuda
