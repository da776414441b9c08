// kernels::causal_attention and its backward: checks, dense copies of strided inputs, and the
// CPU / CUDA dispatch. The arithmetic is in ops/cpu/attention.cpp and ops/cuda/attention.cu.
//
// Inputs may be any strided views (e.g. a (B, T, H, Dh) projection transposed to (B, H, T, Dh));
// the kernels read dense [B * H][T][Dh] rows, so such views are copied with contiguous() first.
// Outputs are contiguous: out (B, H, T, Dh) in the inputs' dtype, lse (B, H, T) f32, and the
// gradients in the inputs' shape and dtype.
#include <cstdint>

#include "ops/cpu/attention.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/attention.h"
#endif

namespace pit::kernels {
namespace {

void check_operand(const char* op, const Tensor& t, const char* name) {
  PIT_CHECK(t.defined(), op, ": ", name, " is undefined");
  PIT_CHECK(t.dim() == 4, op, ": ", name, " must be 4-D (batch, heads, seq, head_dim), got shape ",
            shape_str(t.shape()));
}

void check_same(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  PIT_CHECK(a.shape() == b.shape(), op, ": ", an, " of shape ", shape_str(a.shape()), " and ", bn,
            " of shape ", shape_str(b.shape()), " differ; all must be (batch, heads, seq, head_dim)");
  PIT_CHECK(a.dtype() == b.dtype(), op, ": ", an, " of dtype ", dtype_name(a.dtype()), " and ", bn,
            " of dtype ", dtype_name(b.dtype()), "; convert one with to(dtype) (a Variable: ops::cast, which keeps its gradient)");
  PIT_CHECK(a.device() == b.device(), op, ": ", an, " on ", a.device(), " and ", bn, " on ",
            b.device(), "; move one with to(device) (a model: Module::to)");
}

// Checks q, k, v and returns their dims as the kernels see them.
cpu::AttentionDims check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  check_operand(op, q, "q");
  check_operand(op, k, "k");
  check_operand(op, v, "v");
  check_same(op, q, "q", k, "k");
  check_same(op, q, "q", v, "v");
  const DType dt = q.dtype();
  const int64_t dh = q.size(3);
  PIT_CHECK(dh >= 1, op, ": head_dim (the last dim of q, k, v) must be positive, got shape ",
            shape_str(q.shape()));
  if (q.is_cuda()) {
    PIT_CHECK(dt == DType::f32 || dt == DType::f16 || dt == DType::bf16, op, ": dtype ",
              dtype_name(dt), " is not supported on CUDA; supported dtypes: f32, f16, bf16");
    const int64_t limit = attention_head_dim_limit(q.device());
    PIT_CHECK(limit == 0 || dh <= limit, op, ": head_dim ", dh, " is not supported on CUDA (at most ", limit,
              "; 64 and 128 take the fastest kernels)");
  } else {
    PIT_CHECK(is_floating(dt), op, ": dtype ", dtype_name(dt),
              " is not supported; supported dtypes: f32, f64, f16, bf16");
  }
  return {q.size(0) * q.size(1), q.size(2), dh};
}

}  // namespace

int64_t attention_head_dim_limit(Device device) {
#if PIT_WITH_CUDA
  if (device.is_cuda()) return cuda::kMaxAttentionHeadDim;
#endif
  (void)device;
  return 0;
}

AttentionResult causal_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  const char* op = "causal_attention";
  const cpu::AttentionDims dims = check_qkv(op, q_in, k_in, v_in);
  const Shape& shape = q_in.shape();
  const Device device = q_in.device();
  AttentionResult r{Tensor::empty(shape, q_in.dtype(), device),
                    Tensor::empty({shape[0], shape[1], shape[2]}, DType::f32, device)};
  if (dims.bh * dims.t == 0) return r;
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  if (q.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::causal_attention(q.dtype(), dims, q.data_ptr(), k.data_ptr(), v.data_ptr(),
                           r.out.data_ptr(), r.lse.data<float>(), current_stream(device));
#endif
  } else {
    cpu::causal_attention(q.dtype(), dims, q.data_ptr(), k.data_ptr(), v.data_ptr(),
                          r.out.data_ptr(), r.lse.data<float>());
  }
  return r;
}

AttentionGrads causal_attention_backward(const Tensor& dout_in, const Tensor& q_in,
                                         const Tensor& k_in, const Tensor& v_in,
                                         const AttentionResult& saved) {
  const char* op = "causal_attention_backward";
  const cpu::AttentionDims dims = check_qkv(op, q_in, k_in, v_in);
  check_operand(op, dout_in, "dout");
  check_same(op, dout_in, "dout", q_in, "q");
  check_operand(op, saved.out, "the saved output");
  check_same(op, saved.out, "the saved output", q_in, "q");
  PIT_CHECK(saved.lse.defined(), op, ": the saved lse is undefined");
  const Shape& shape = q_in.shape();
  const Shape lse_shape{shape[0], shape[1], shape[2]};
  PIT_CHECK(saved.lse.shape() == lse_shape && saved.lse.dtype() == DType::f32, op,
            ": the saved lse must be f32 of shape ", shape_str(lse_shape), ", got ",
            dtype_name(saved.lse.dtype()), " of shape ", shape_str(saved.lse.shape()));
  PIT_CHECK(saved.lse.device() == q_in.device(), op, ": the saved lse on ", saved.lse.device(),
            " and q on ", q_in.device());

  const Device device = q_in.device();
  AttentionGrads g{Tensor::empty(shape, q_in.dtype(), device),
                   Tensor::empty(shape, q_in.dtype(), device),
                   Tensor::empty(shape, q_in.dtype(), device)};
  if (dims.bh * dims.t == 0) return g;
  const Tensor dout = dout_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous(),
               v = v_in.contiguous(), out = saved.out.contiguous();
  if (q.is_cuda()) {
#if PIT_WITH_CUDA
    const Tensor lse = saved.lse.contiguous();
    Tensor delta = Tensor::empty(lse_shape, DType::f32, device);  // D_i = dout_i . out_i
    cuda::causal_attention_backward(q.dtype(), dims, dout.data_ptr(), q.data_ptr(), k.data_ptr(),
                                    v.data_ptr(), out.data_ptr(), lse.data<float>(),
                                    delta.data<float>(), g.dq.data_ptr(), g.dk.data_ptr(),
                                    g.dv.data_ptr(), current_stream(device));
#endif
  } else {
    // The CPU recomputes the lse in f64 (see ops/cpu/attention.h); saved.lse is only checked.
    cpu::causal_attention_backward(q.dtype(), dims, dout.data_ptr(), q.data_ptr(), k.data_ptr(),
                                   v.data_ptr(), out.data_ptr(), g.dq.data_ptr(), g.dk.data_ptr(),
                                   g.dv.data_ptr());
  }
  return g;
}

}  // namespace pit::kernels
