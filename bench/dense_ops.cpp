// Dense-op benchmark at transformer shapes (bf16): B*T = 16384 tokens, d = 1024, ffn = 4096,
// 16 heads of 64, sequence 1024. Matmuls are compared with cuBLAS called directly on the same
// buffers; memory-bound ops with the device-to-device copy bandwidth measured in the same run,
// each run on its own copy of the inputs (Copies) so that the L2 does not serve what DRAM must.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "bench/copy_rate.h"
#include "bench/cublas_peer.h"
#include "bench/report.h"
#include "bench/timer.h"
#include "core/core.h"
#include "ops/kernels.h"

namespace pit::bench {
namespace {

constexpr int64_t kTokens = 16384, kModel = 1024, kFfn = 4096, kHeads = 16, kSeq = 1024;
constexpr int64_t kHeadDim = kModel / kHeads, kBatch = kTokens / kSeq;

std::string dims(std::initializer_list<int64_t> d) {
  std::string s;
  for (int64_t v : d) {
    if (!s.empty()) s += 'x';
    s += std::to_string(v);
  }
  return s;
}

// Row-major C[m,n] = A[m,k] op(B) with cuBLAS directly: the peer for pit's matmul.
struct CublasDirect {
  CublasPeer peer;  // the same math mode as pit's handles, so both run the same kernels
  cublasHandle_t h = peer.h;
  // trans_b: B is given as [n, k] (a linear layer's weight); otherwise [k, n].
  void gemm(const Tensor& a, const Tensor& b, Tensor& c, int64_t m, int64_t n, int64_t k,
            bool trans_a, bool trans_b, int64_t batch = 1) const {
    const float one = 1.0f, zero = 0.0f;
    const int lda = static_cast<int>(trans_a ? m : k), ldb = static_cast<int>(trans_b ? k : n);
    const cublasOperation_t oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1) {
      PIT_CUBLAS_CHECK(cublasGemmEx(h, ob, oa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
                                    &one, b.data_ptr(), CUDA_R_16BF, ldb, a.data_ptr(), CUDA_R_16BF, lda,
                                    &zero, c.data_ptr(), CUDA_R_16BF, static_cast<int>(n),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
      PIT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          h, ob, oa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &one, b.data_ptr(),
          CUDA_R_16BF, ldb, k * n, a.data_ptr(), CUDA_R_16BF, lda, m * k, &zero, c.data_ptr(),
          CUDA_R_16BF, static_cast<int>(n), m * n, static_cast<int>(batch), CUBLAS_COMPUTE_32F,
          CUBLAS_GEMM_DEFAULT));
    }
  }
};

Tensor rnd(const Shape& s) { return randn(s, DType::bf16, Device::cuda()); }

// Copies of a memory-bound row's inputs, taken in turn run after run (`copy(i)`): enough (three
// times the L2 in all) that no run reads operands the runs before it left in the L2, which the
// copy roofline (512 MiB) gets no help from either. One copy for inputs of 3x the L2 or more.
struct Copies {
  std::vector<Tensor> t;
  const Tensor& operator()(int i) const { return t[static_cast<size_t>(i) % t.size()]; }
};
int copies_for(double bytes) {
  int l2 = 0;
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  return std::max(1, static_cast<int>(std::ceil(3.0 * l2 / bytes)));
}
Copies copies(int n, const std::function<Tensor()>& make) {
  Copies c;
  for (int i = 0; i < n; ++i) c.t.push_back(make());
  return c;
}
Copies rnd_copies(const Shape& s, int n) { return copies(n, [&] { return rnd(s); }); }

// PIT_BENCH_FILTER="layernorm": only the rows whose op contains it (all rows without it).
bool wanted(const std::string& op) {
  const char* f = std::getenv("PIT_BENCH_FILTER");
  return f == nullptr || op.find(f) != std::string::npos;
}

}  // namespace

int run_dense_ops(const std::string& markdown_path) {
  check_device(Device::cuda());
  const double bandwidth = copy_bandwidth(int64_t{1} << 29);  // 512 MiB copied, 1 GiB moved
  std::printf("device-to-device copy: %.0f GB/s (read + write)\n", bandwidth / 1e9);
  CublasDirect cublas;
  // Compute roofline: cuBLAS bf16 at 8192^3, the best case for the tensor cores.
  double peak_flops = 0;
  {
    const int64_t s = 8192;
    Tensor a = rnd({s, s}), b = rnd({s, s}), c = rnd({s, s});
    const Timing t = time_gpu([&](int) { cublas.gemm(a, b, c, s, s, s, false, false); });
    peak_flops = 2.0 * s * s * s / (t.median_ms * 1e-3);
    std::printf("cuBLAS bf16 8192^3: %.0f TFLOP/s (compute roofline)\n\n", peak_flops / 1e12);
  }
  Report report;
  Report::print_header();
  const double bf = 2.0;  // bytes per bf16 element

  auto matmul_row = [&](const std::string& op, int64_t m, int64_t n, int64_t k, const Tensor& a,
                        const Tensor& b, bool ta, bool tb, int64_t batch = 1) {
    if (!wanted(op)) return;
    // pit: the operands as the autograd would pass them (transposed views, no copies).
    const Tensor av = ta ? a.transpose(-1, -2) : a, bv = tb ? b.transpose(-1, -2) : b;
    Tensor c = Tensor::empty(batch > 1 ? Shape{batch, m, n} : Shape{m, n}, DType::bf16, Device::cuda());
    // Interleaved, so that clock drift cannot favour either side.
    const auto [t, p] = time_gpu_pair([&](int) { (void)kernels::matmul(av, bv); },
                                      [&](int) { cublas.gemm(a, b, c, m, n, k, ta, tb, batch); });
    report.add({op, (batch > 1 ? std::to_string(batch) + "x" : "") + dims({m, k}) + " @ " + dims({k, n}),
                t.median_ms, 2.0 * batch * m * n * k, true, peak_flops, "cuBLAS", p.median_ms});
  };
  {
    const Tensor x = rnd({kTokens, kModel}), w1 = rnd({kFfn, kModel}), h = rnd({kTokens, kFfn});
    const Tensor w2 = rnd({kModel, kFfn}), dy = rnd({kTokens, kFfn});
    matmul_row("linear fwd (x W1^T)", kTokens, kFfn, kModel, x, w1, false, true);
    matmul_row("linear fwd (h W2^T)", kTokens, kModel, kFfn, h, w2, false, true);
    matmul_row("linear bwd dX (dY W1)", kTokens, kModel, kFfn, dy, w1, false, false);
    matmul_row("linear bwd dW (dY^T X)", kFfn, kModel, kTokens, dy, x, true, false);
  }
  {
    const int64_t bh = kBatch * kHeads;
    const Tensor q = rnd({bh, kSeq, kHeadDim}), k = rnd({bh, kSeq, kHeadDim});
    const Tensor p = rnd({bh, kSeq, kSeq}), v = rnd({bh, kSeq, kHeadDim});
    matmul_row("attention Q K^T", kSeq, kSeq, kHeadDim, q, k, false, true, bh);
    matmul_row("attention P V", kSeq, kHeadDim, kSeq, p, v, false, false, bh);
  }

  auto memory_row = [&](const std::string& op, const std::string& shape, double bytes,
                        const std::function<void(int)>& fn) {
    if (!wanted(op)) return;
    const Timing t = time_gpu(fn);
    report.add({op, shape, t.median_ms, bytes, false, bandwidth, "", 0});
    std::printf("    (host: %.1f us to queue each run)\n", t.host_ms * 1e3);
  };
  {
    const double n = static_cast<double>(kTokens * kFfn);
    const int c = copies_for(n * bf);
    const Copies h = rnd_copies({kTokens, kFfn}, c), g = rnd_copies({kTokens, kFfn}, c);
    memory_row("gelu fwd", dims({kTokens, kFfn}), 2 * n * bf,
               [&](int i) { (void)kernels::unary(UnaryOp::gelu_tanh, h(i)); });
    const Tensor y = kernels::unary(UnaryOp::gelu_tanh, h(0));
    memory_row("gelu bwd", dims({kTokens, kFfn}), 3 * n * bf,  // reads grad and x; y unused
               [&](int i) { (void)kernels::unary_backward(UnaryOp::gelu_tanh, g(i), h(i), y); });
    const Copies h16 = copies(c, [&, k = 0]() mutable { return h(k++).to(DType::f16); });  // f16: the same kernels
    memory_row("gelu fwd (f16)", dims({kTokens, kFfn}), 2 * n * bf,
               [&](int i) { (void)kernels::unary(UnaryOp::gelu_tanh, h16(i)); });
    memory_row("bias grad (sum dim 0)", dims({kTokens, kFfn}), n * bf,
               [&](int i) { (void)kernels::sum(g(i), {0}); });
  }
  {
    const int c = copies_for(static_cast<double>(kTokens * kModel) * bf);
    const Copies a = rnd_copies({kTokens, kModel}, c), b = rnd_copies({kTokens, kModel}, c);
    memory_row("add (residual)", dims({kTokens, kModel}), 3.0 * kTokens * kModel * bf,
               [&](int i) { (void)kernels::binary(BinaryOp::add, a(i), b(i)); });
  }
  {
    const int64_t rows = kBatch * kHeads * kSeq;
    const double n = static_cast<double>(rows * kSeq);
    const int c = copies_for(n * bf);
    const Copies s = rnd_copies({rows, kSeq}, c), g = rnd_copies({rows, kSeq}, c);
    memory_row("softmax fwd", dims({rows, kSeq}), 2 * n * bf, [&](int i) { (void)kernels::softmax(s(i), -1); });
    const Copies y = copies(c, [&, k = 0]() mutable { return kernels::softmax(s(k++), -1); });
    memory_row("softmax bwd", dims({rows, kSeq}), 3 * n * bf,
               [&](int i) { (void)kernels::softmax_backward(g(i), y(i), -1); });
  }

  {
    const double n = static_cast<double>(kTokens * kModel);
    const int c = copies_for(n * bf);
    const Copies x = rnd_copies({kTokens, kModel}, c), g = rnd_copies({kTokens, kModel}, c);
    const Tensor w = rnd({kModel}), b = rnd({kModel});
    memory_row("layernorm fwd", dims({kTokens, kModel}), 2 * n * bf,
               [&](int i) { (void)kernels::layernorm(x(i), w, b, 1e-5); });
    std::vector<kernels::NormResult> saved;
    for (int i = 0; i < c; ++i) saved.push_back(kernels::layernorm(x(i), w, b, 1e-5));
    memory_row("layernorm bwd", dims({kTokens, kModel}), 3 * n * bf,  // reads x, dy; writes dx
               [&](int i) { (void)kernels::layernorm_backward(g(i), x(i), w, saved[static_cast<size_t>(i % c)], true); });
  }
  {
    // Embedding lookup (index_select of whole rows) of kTokens ids in a GPT-2-sized table: reads
    // and writes kTokens rows. Fresh ids each run (in turn), so that the rows read are not the
    // ones the last run left in the L2.
    const int64_t vocab = 50304;
    const Tensor table = rnd({vocab, kModel});
    const Copies ids = copies(copies_for(static_cast<double>(kTokens * kModel) * bf), [&] {
      return kernels::unary(UnaryOp::mul_scalar, rand({kTokens}, DType::f32, Device::cuda()),
                            static_cast<double>(vocab - 1)).to(DType::i64);
    });
    memory_row("embedding fwd", dims({kTokens, kModel}), 2.0 * kTokens * kModel * bf,
               [&](int i) { (void)kernels::index_select(table, 0, ids(i)); });
  }
  {
    // Cross-entropy over a GPT-2-sized vocabulary for 8192 tokens.
    const int64_t rows = 8192, vocab = 50304;
    const Tensor logits = rnd({rows, vocab});
    const Tensor targets = kernels::unary(UnaryOp::mul_scalar, rand({rows}, DType::f32, Device::cuda()),
                                          static_cast<double>(vocab - 1)).to(DType::i64);
    const double n = static_cast<double>(rows * vocab);
    memory_row("cross-entropy fwd", dims({rows, vocab}), n * bf,
               [&](int) { (void)kernels::cross_entropy(logits, targets, -100, 0.0); });
    const kernels::CrossEntropyResult saved = kernels::cross_entropy(logits, targets, -100, 0.0);
    const Tensor gl = ones({rows}, DType::f32, Device::cuda());
    memory_row("cross-entropy bwd", dims({rows, vocab}), 2 * n * bf,  // reads logits, writes dlogits
               [&](int) { (void)kernels::cross_entropy_backward(gl, logits, targets, saved, -100, 0.0); });
    // Both in one timed run, as bench/torch_dense_ops.py times torch's (logits read twice, dlogits written).
    memory_row("cross-entropy fwd+bwd", dims({rows, vocab}), 3 * n * bf, [&](int) {
      const kernels::CrossEntropyResult r = kernels::cross_entropy(logits, targets, -100, 0.0);
      (void)kernels::cross_entropy_backward(gl, logits, targets, r, -100, 0.0);
    });
  }
  if (wanted("attention fwd (fused)") || wanted("attention bwd (fused)") || wanted("attention fwd+bwd (fused)")) {
    // Fused causal attention: FLOPs of the causal half, 4 B H T^2 Dh / 2 forward (QK^T and PV).
    const Tensor q = rnd({kBatch, kHeads, kSeq, kHeadDim}), k = rnd({kBatch, kHeads, kSeq, kHeadDim});
    const Tensor v = rnd({kBatch, kHeads, kSeq, kHeadDim}), dout = rnd({kBatch, kHeads, kSeq, kHeadDim});
    const double fwd_flops = 2.0 * kBatch * kHeads * kSeq * kSeq * kHeadDim;
    const std::string shape = dims({kBatch, kHeads, kSeq, kHeadDim}) + " causal";
    const Timing tf = time_gpu([&](int) { (void)kernels::causal_attention(q, k, v); });
    report.add({"attention fwd (fused)", shape, tf.median_ms, fwd_flops, true, peak_flops, "", 0});
    const kernels::AttentionResult saved = kernels::causal_attention(q, k, v);
    const Timing tb = time_gpu([&](int) { (void)kernels::causal_attention_backward(dout, q, k, v, saved); });
    // Backward: 5 matmuls of the forward's size (S recompute, dV, dP, dQ, dK) = 2.5x forward.
    report.add({"attention bwd (fused)", shape, tb.median_ms, 2.5 * fwd_flops, true, peak_flops, "", 0});
    // Both in one timed run, as bench/torch_dense_ops.py times torch's.
    const Timing tfb = time_gpu([&](int) {
      const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
      (void)kernels::causal_attention_backward(dout, q, k, v, r);
    });
    report.add({"attention fwd+bwd (fused)", shape, tfb.median_ms, 3.5 * fwd_flops, true, peak_flops, "", 0});
  }

  if (!markdown_path.empty() && !report.write_markdown(markdown_path, "Dense ops, bf16"))
    std::fprintf(stderr, "pit-bench: cannot write %s\n", markdown_path.c_str());
  return 0;
}

}  // namespace pit::bench
