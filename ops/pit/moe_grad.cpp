// sparse::moe_activation_backward (ops/pit/moe_grad.h): validate once (shapes, dtypes, devices,
// index and routing agreement; each message names the problem and the fix), then run the CPU
// reference (ops/pit/cpu/moe_grad.cpp) or the CUDA kernel (ops/pit/cuda/moe_grad.cu).
#include "ops/pit/moe_grad.h"

#include <cstdint>
#include <string>

#include "ops/pit/cpu/moe_grad.h"
#include "ops/pit/gemm.h"
#if PIT_WITH_CUDA
#include "ops/pit/cuda/moe_grad.h"
#endif

namespace pit::sparse {
namespace {

constexpr const char* kOp = "moe_activation_backward";


// A [rows, cols] buffer of `dtype` on `device` (gu's), named `what` in the messages.
void check_buffer(const Tensor& t, const char* what, const Shape& want, DType dtype, Device device) {
  PIT_CHECK(t.defined() && t.shape() == want, kOp, ": ", what, " must be ", shape_str(want),
            " (one row per index entry, F columns like gu), got ", shape_of(t));
  PIT_CHECK(t.dtype() == dtype, kOp, ": ", what, " is ", dtype_name(t.dtype()), " but gu is ",
            dtype_name(dtype), "; gu, pre and dpre share one dtype");
  PIT_CHECK(t.device() == device, kOp, ": ", what, " is on ", t.device().str(), " but gu is on ",
            device.str(), "; move it with Tensor::to");
}

void check_index(const RowSetIndex& idx, Device device) {
  PIT_CHECK(idx.num_segments >= 1 && idx.segment_cols == 0, kOp,
            ": idx must have expert segments (rows_from_routing), got ", idx.str());
  constexpr const char* fix = "build the index with rows_from_routing on the operands' device";
  check_row_set(idx, device, kOp, fix);
  if (idx.weights.defined()) check_row_set_weights(idx, device, kOp, fix);
}

void check_routing(const Tensor& expert_of, const Tensor& dgates, const RowSetIndex& idx, Device device) {
  PIT_CHECK(expert_of.defined() && expert_of.dim() == 2 && expert_of.size(0) == idx.num_rows, kOp,
            ": dgates needs expert_of [", idx.num_rows, ", k] (the routing idx was built from), got ",
            shape_of(expert_of));
  PIT_CHECK(expert_of.dtype() == DType::i32 || expert_of.dtype() == DType::i64, kOp,
            ": expert_of must be i32 or i64, got ", dtype_name(expert_of.dtype()));
  PIT_CHECK(dgates.shape() == expert_of.shape() && dgates.dtype() == DType::f32 && dgates.is_contiguous(), kOp,
            ": dgates must be contiguous f32 ", shape_str(expert_of.shape()), " like expert_of, got ",
            dtype_name(dgates.dtype()), " ", shape_of(dgates));
  PIT_CHECK(expert_of.device() == device && dgates.device() == device, kOp, ": expert_of (",
            expert_of.device().str(), ") and dgates (", dgates.device().str(), ") must be on gu's device, ",
            device.str(), "; move them with Tensor::to");
}

}  // namespace

void moe_activation_backward(UnaryOp act, const Tensor& gu_in, const Tensor& pre_in, const RowSetIndex& idx,
                             const Tensor& expert_of, Tensor& dpre, Tensor& dgates) {
  check_fused_activation(act, kOp);
  PIT_CHECK(gu_in.defined() && gu_in.dim() == 2, kOp, ": gu must be [capacity, F], got ", shape_of(gu_in));
  PIT_CHECK(dpre.defined() || dgates.defined(), kOp, ": dpre and dgates are undefined: nothing to compute");
  const Device dev = gu_in.device();
  const DType dt = gu_in.dtype();
  PIT_CHECK(is_floating(dt), kOp, ": gu has dtype ", dtype_name(dt),
            "; supported: f32, bf16, f16 (and f64 on the CPU)");
  PIT_CHECK(!(dev.is_cuda() && dt == DType::f64), kOp,
            ": f64 on CUDA is not supported; use f32, bf16 or f16 (convert with Tensor::to)");
  check_index(idx, dev);
  const Shape shape{idx.rows.numel(), gu_in.size(1)};
  check_buffer(gu_in, "gu", shape, dt, dev);
  check_buffer(pre_in, "pre", shape, dt, dev);
  if (dpre.defined()) {
    check_buffer(dpre, "dpre", shape, dt, dev);
    PIT_CHECK(dpre.is_contiguous(), kOp, ": dpre must be contiguous (it is written in place)");
  }
  if (dgates.defined()) check_routing(expert_of, dgates, idx, dev);
  check_device(dev);
  const Tensor gu = gu_in.contiguous(), pre = pre_in.contiguous();
  const Tensor ids = dgates.defined() ? expert_of.contiguous() : Tensor();
  if (!dev.is_cuda()) return cpu::moe_activation_backward(act, gu, pre, idx, ids, dpre, dgates);
#if PIT_WITH_CUDA
  cuda::moe_activation_backward(act, gu, pre, idx, ids, dpre, dgates, current_stream(dev));
#else
  PIT_THROW(kOp, ": built without CUDA");
#endif
}

}  // namespace pit::sparse
