// The MoE experts (ops/pit/moe.h) at issue #7's shape: T = 16384 tokens, d = 1024, ffn = 4096,
// E = 64 experts, top-1 and top-2, uniform routing and skewed routing (one expert gets ~10% of
// the tokens), forward and forward + backward, against a dense FFN with the same FLOPs per token
// (hidden width k * ffn) in the same run. The routing is given (the router is a [T, d] x [d, E]
// GEMM and a softmax, not timed here); what is timed is dispatch (the index from the routing),
// the two expert GEMMs with the activation and the gate-weighted combine, and in backward all
// their gradients.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "bench/copy_rate.h"
#include "bench/report.h"
#include "bench/timer.h"
#include "core/core.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/cuda/gemm.h"
#include "ops/pit/detect.h"
#include "ops/pit/entry_rows.h"
#include "ops/pit/gemm.h"
#include "ops/pit/moe.h"
#include "ops/pit/moe_grad.h"

namespace pit::bench {
namespace {

constexpr int64_t kTokens = 16384, kModel = 1024, kFfn = 4096, kExperts = 64;

Tensor random_bf16(const Shape& shape, double scale, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& x : v) x = static_cast<float>(scale) * u(gen);
  return from_vector(v, shape).to(Device::cuda(), DType::bf16);
}

// expert_of [T, k] (distinct experts per token); skewed: expert 0 takes ~10% of the first slots.
Tensor routing(int64_t k, bool skewed, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int32_t> ids(static_cast<size_t>(kTokens * k));
  for (int64_t t = 0; t < kTokens; ++t)
    for (int64_t j = 0; j < k; ++j) {
      int32_t e;
      do {
        e = skewed && j == 0 && gen() % 10 == 0 ? 0 : static_cast<int32_t>(gen() % kExperts);
        bool taken = false;
        for (int64_t q = 0; q < j; ++q) taken |= ids[static_cast<size_t>(t * k + q)] == e;
        if (!taken) break;
      } while (true);
      ids[static_cast<size_t>(t * k + j)] = e;
    }
  // PIT_BENCH_MOE_ROUTING_OUT=DIR: the ids also into DIR/routing_top<k>_<uniform|skewed>.i32 (raw
  // int32, [T, k]), which bench/torch_moe.py --routing DIR reads: the peers route as pit does.
  if (const char* dir = std::getenv("PIT_BENCH_MOE_ROUTING_OUT"); dir != nullptr && dir[0] != '\0') {
    const std::string path = std::string(dir) + "/routing_top" + std::to_string(k) + (skewed ? "_skewed" : "_uniform") + ".i32";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    PIT_CHECK(f != nullptr, "pit-bench moe: cannot write ", path, " (PIT_BENCH_MOE_ROUTING_OUT must name a folder)");
    const bool ok = std::fwrite(ids.data(), sizeof(int32_t), ids.size(), f) == ids.size();
    PIT_CHECK(std::fclose(f) == 0 && ok, "pit-bench moe: writing ", path, " failed");
  }
  return from_vector(ids, {kTokens, k}, Device::cuda());
}

const char* engine_name(sparse::Engine e) {
  switch (e) {
    case sparse::Engine::automatic: return "automatic";
    case sparse::Engine::mma: return "mma.sync";
    case sparse::Engine::wgmma: return "wgmma";
    case sparse::Engine::wgmma_persistent: return "persistent";
    case sparse::Engine::wgmma_deep: return "wgmma_deep";
    case sparse::Engine::wgmma_pingpong: return "ping-pong";
    case sparse::Engine::wgmma_tma: return "TMA persistent";
    case sparse::Engine::wgmma_tma_pingpong: return "TMA ping-pong";
    case sparse::Engine::wgmma_wide: return "wide";
  }
  return "?";
}

// The parts of moe_ffn's forward and backward, each timed alone with the calls the op makes
// (ops/pit/moe.cpp), against cuBLAS on the dense GEMM of the same shape (T k rows).
void time_parts(Report& report, const Tensor& x, const Tensor& dy, const Tensor& w1, const Tensor& w2,
                const Tensor& ids, const Tensor& gates, int64_t k, const std::string& tag) {
  using sparse::gather_gemm;
  const int64_t rows = kTokens * k;
  const std::string shape = "T16384 d1024 ffn4096 E64";
  const sparse::RowSetIndex idx = sparse::rows_from_routing(ids, kExperts, gates);
  // The memory-bound rows' ceiling: this GPU's device-to-device copy rate, measured here (256 MiB).
  static const double copy_rate = copy_bandwidth(int64_t{1} << 28);
  const auto dispatch = time_gpu([&](int) { (void)sparse::rows_from_routing(ids, kExperts, gates); });
  // Reads ids (i32) and gates (f32), writes rows (i32) and weights (f32): 16 bytes an entry (offsets aside).
  report.add({"  dispatch " + tag, shape, dispatch.median_ms, double(rows) * 16, false, copy_rate, "", 0});
  Tensor pre = Tensor::empty({rows, kFfn}, DType::bf16, Device::cuda());
  const double gemm_flops = 2.0 * rows * kModel * kFfn;
  // Dense peers: [rows, d] x [d, ffn] and [rows, ffn] x [ffn, d] through cuBLAS (ops::linear).
  const Tensor xr = random_bf16({rows, kModel}, 1.0, 7), hr = random_bf16({rows, kFfn}, 1.0, 8);
  const Tensor up_w = w1.select(0, 0), down_w = w2.select(0, 0);
  const auto dense_up = time_gpu([&](int) {
    const NoGradGuard no_grad;
    (void)ops::linear(Variable(xr), Variable(up_w));
  });
  const auto dense_down = time_gpu([&](int) {
    const NoGradGuard no_grad;
    (void)ops::linear(Variable(hr), Variable(down_w));
  });
  // Ceiling of the GEMM rows: cuBLAS's rate on the faster of the two dense shapes, this run.
  const double gemm_peak = gemm_flops / (std::min(dense_up.median_ms, dense_down.median_ms) * 1e-3);
  // The experts' own shapes through cuBLAS strided-batched (E GEMMs of rows / E rows each: uniform
  // routing's counts, operands contiguous, no gather or scatter): what a grouped GEMM of equal
  // counts reaches. [E, rows / E, d] x W1_e^T (the up GEMM), [E, rows / E, ffn] x W2_e^T (down),
  // [E, rows / E, d] x W2_e (gu), [E, rows / E, ffn] x W1_e (dx).
  const Tensor xe = random_bf16({kExperts, rows / kExperts, kModel}, 1.0, 11);
  const Tensor he = random_bf16({kExperts, rows / kExperts, kFfn}, 1.0, 12);
  const auto batched = [&](const Tensor& a, const Tensor& b) {
    return time_gpu([&](int) { (void)kernels::matmul(a, b); }).median_ms;
  };
  const double batched_up = batched(xe, w1.transpose(1, 2)), batched_down = batched(he, w2.transpose(1, 2));
  const double batched_gu = batched(xe, w2), batched_dx = batched(he, w1);
  // One GEMM of the op: its row (the engine the kernel picks), then a row for each engine in
  // `others` (forced), all against the same peer. run(engine) makes the call. Each other engine
  // is timed alternately with the kernel's pick (time_gpu_pair: in back-to-back timings an engine
  // timed first after the cuBLAS peers measured up to 14% slower than when timed third, whichever
  // engine it was); the pick's row is from the first pair.
  const auto gemm_part = [&](const std::string& name, std::initializer_list<sparse::Engine> others,
                             const std::string& peer, double peer_ms, const auto& run) {
    const auto pick = [&](int) { run(sparse::Engine::automatic); };
    std::vector<Row> rows_out;
    double pick_ms = others.size() == 0 ? time_gpu(pick).median_ms : 0.0;
    for (const sparse::Engine e : others) {
      const auto [tp, te] = time_gpu_pair(pick, [&](int) { run(e); });
      if (pick_ms == 0.0) pick_ms = tp.median_ms;
      rows_out.push_back({"  " + name + ", " + engine_name(e) + " " + tag, shape, te.median_ms, gemm_flops, true,
                          gemm_peak, peer, peer_ms});
    }
    report.add({"  " + name + " " + tag, shape, pick_ms, gemm_flops, true, gemm_peak, peer, peer_ms});
    for (const auto& r : rows_out) report.add(r);
  };
  // The wide engine's epilogue into a compact C by TMA stores (ops/pit/cuda/wide_store.cuh: the up
  // GEMM's with pre and gate * act(pre), the gu GEMM's) timed alternately with its SWrite
  // (set_wide_tma_store), two rows.
  const auto store_part = [&](const std::string& name, double peer_ms, const auto& run) {
    const auto with = [&](bool tma_store) {
      const bool was = sparse::cuda::set_wide_tma_store(tma_store);
      run();
      sparse::cuda::set_wide_tma_store(was);
    };
    const auto [tma, swrite] = time_gpu_pair([&](int) { with(true); }, [&](int) { with(false); });
    report.add({"  " + name + ", TMA stores " + tag, shape, tma.median_ms, gemm_flops, true, gemm_peak,
                "cuBLAS batched", peer_ms});
    report.add({"  " + name + ", SWrite " + tag, shape, swrite.median_ms, gemm_flops, true, gemm_peak,
                "cuBLAS batched", peer_ms});
  };
  using sparse::Engine;
  const auto gather_engines = {Engine::wgmma_pingpong};
  gemm_part("up GEMM (SRead)", gather_engines, "cuBLAS batched", batched_up, [&](Engine e) {
    gather_gemm(x, idx, w1, pre, {.a_gathered = true, .c_scattered = false, .b_trans = true, .engine = e});
  });
  const Tensor h = kernels::unary(UnaryOp::gelu_tanh, pre);
  const auto act = time_gpu([&](int) { (void)kernels::unary(UnaryOp::gelu_tanh, pre); });
  report.add({"  activation " + tag, shape, act.median_ms, 4.0 * rows * kFfn, false, copy_rate, "", 0});
  // What moe_ffn runs: the activation in the up GEMM's epilogue, writing pre and gate * act(pre)
  // (Epilogue::pre, scale_after_activation), timed alternately with the GEMM followed by the
  // activation pass.
  {
    Tensor hf = Tensor::empty({rows, kFfn}, DType::bf16, Device::cuda());
    // The up GEMM writing gate * act(pre) into hf, and pre where `keep` is defined.
    const auto up = [&](const Tensor& keep) {
      gather_gemm(x, idx, w1, hf,
                  {.a_gathered = true, .c_scattered = false, .b_trans = true, .use_weights = true,
                   .epilogue = {.activation = true, .act = UnaryOp::gelu_tanh, .pre = keep,
                                .scale_after_activation = true}});
    };
    // The same work unfused: the GEMM, the activation pass, the gates' pass.
    const Tensor gate_col = idx.weights.slice(0, 0, rows).to(DType::bf16).view({rows, 1});
    const auto [fused, separate] = time_gpu_pair([&](int) { up(pre); }, [&](int) {
      gather_gemm(x, idx, w1, pre, {.a_gathered = true, .c_scattered = false, .b_trans = true});
      (void)kernels::binary(BinaryOp::mul, kernels::unary(UnaryOp::gelu_tanh, pre), gate_col);
    });
    report.add({"  up GEMM writing pre and gate*h " + tag, shape, fused.median_ms, gemm_flops, true, gemm_peak,
                "up GEMM, activation, gates", separate.median_ms});
    store_part("up GEMM writing pre and gate*h", batched_up, [&] { up(pre); });
    // A forward with no backward to follow (moe_ffn under NoGradGuard) writes gate * h alone,
    // timed alternately with the GEMM writing pre too.
    const auto [alone, both] = time_gpu_pair([&](int) { up(Tensor()); }, [&](int) { up(pre); });
    report.add({"  up GEMM writing gate*h alone (no backward) " + tag, shape, alone.median_ms, gemm_flops, true,
                gemm_peak, "writing pre too", both.median_ms});
  }
  Tensor y = Tensor::empty({kTokens, kModel}, DType::bf16, Device::cuda());
  const sparse::Write combine = k > 1 ? sparse::Write::accumulate : sparse::Write::store;
  // On gate * h (h stands in for it: the same shape), so without the gates.
  gemm_part("down GEMM (SWrite)", gather_engines, "cuBLAS batched", batched_down, [&](Engine e) {
    gather_gemm(h, idx, w2, y,
                {.a_gathered = false, .c_scattered = true, .b_trans = true, .zero_c = true,
                 .epilogue = {.write = combine}, .engine = e});
  });
  Tensor dh = Tensor::empty({rows, kFfn}, DType::bf16, Device::cuda());
  gemm_part("bwd gu GEMM", {Engine::wgmma_pingpong}, "cuBLAS batched", batched_gu, [&](Engine e) {
    gather_gemm(dy, idx, w2, dh, {.a_gathered = true, .c_scattered = false, .engine = e});
  });
  store_part("bwd gu GEMM", batched_gu,
             [&] { gather_gemm(dy, idx, w2, dh, {.a_gathered = true, .c_scattered = false}); });
  // The activation's backward with the gates' gradient (reads gu and pre, writes dpre).
  Tensor dpre = Tensor::empty({rows, kFfn}, DType::bf16, Device::cuda());
  Tensor dgates = Tensor::empty({kTokens, k}, DType::f32, Device::cuda());
  const auto act_b = time_gpu([&](int) {
    sparse::moe_activation_backward(UnaryOp::gelu_tanh, dh, pre, idx, ids, dpre, dgates);
  });
  report.add({"  bwd activation+dgates " + tag, shape, act_b.median_ms, 6.0 * rows * kFfn, false, copy_rate, "", 0});
  // The weight gradients against cuBLAS on the same FLOPs in the experts' own shapes: a strided
  // batch of E GEMMs [ffn, d] = dH_e^T X_e over rows / E entries each (uniform routing's counts,
  // operands contiguous: no gather). Each engine timed alternately with the automatic choice (the
  // wide kernel, ops/pit/cuda/weight_grad_wide.cu): the general wgmma kernel (the same sums) and
  // the persistent one.
  const Tensor xb = random_bf16({kExperts, rows / kExperts, kModel}, 1.0, 9);
  const Tensor hb = random_bf16({kExperts, rows / kExperts, kFfn}, 1.0, 10);
  const auto dense_wgrad = time_gpu([&](int) { (void)kernels::matmul(hb.transpose(1, 2), xb); });
  const auto wgrad_engines = {Engine::wgmma, Engine::wgmma_persistent};
  Tensor dw1 = Tensor::empty(w1.shape(), DType::bf16, Device::cuda());
  const auto dw1_call = [&](Engine e) {
    sparse::gather_weight_grad(x, dh, idx, dw1, {.a_gathered = true, .g_gathered = false, .b_trans = true, .engine = e});
  };
  // The automatic choice (the wide kernel, weight_grad_wide.cu) timed alternately with the lean
  // kernel it replaces (PIT_WEIGHT_GRAD_WIDE=0, read per call), as its own rows.
  const auto lean_part = [&](const std::string& name, const auto& run) {
    const auto [wide, lean] = time_gpu_pair([&](int) { run(Engine::automatic); }, [&](int) {
      setenv("PIT_WEIGHT_GRAD_WIDE", "0", 1);
      run(Engine::automatic);
      unsetenv("PIT_WEIGHT_GRAD_WIDE");
    });
    report.add({"  " + name + ", wide kernel " + tag, shape, wide.median_ms, gemm_flops, true, gemm_peak,
                "cuBLAS batched", dense_wgrad.median_ms});
    report.add({"  " + name + ", lean kernel " + tag, shape, lean.median_ms, gemm_flops, true, gemm_peak,
                "cuBLAS batched", dense_wgrad.median_ms});
  };
  gemm_part("bwd dW1", wgrad_engines, "cuBLAS batched", dense_wgrad.median_ms, dw1_call);
  lean_part("bwd dW1", dw1_call);
  // The same with X's rows first copied compact by entry (sparse::gather_entry_rows, the copy
  // moe_ffn makes with MoeRows::compact), so that both operands are compact: the lean kernel, and
  // the TMA engines loading whole 64 x 64 boxes.
  const auto compact_engines = {Engine::wgmma_tma, Engine::wgmma_tma_pingpong};
  const auto gather_rows = [&](const Tensor& t, const std::string& name) {
    const auto copy = time_gpu([&](int) { (void)sparse::gather_entry_rows(t, idx); });
    report.add({"  gather " + name + " rows (gather_entry_rows) " + tag, shape, copy.median_ms,
                2.0 * rows * kModel * 2, false, copy_rate, "", 0});
    return sparse::gather_entry_rows(t, idx);
  };
  const Tensor xg = gather_rows(x, "X");
  gemm_part("bwd dW1 on compact X", compact_engines, "cuBLAS batched", dense_wgrad.median_ms, [&](Engine e) {
    sparse::gather_weight_grad(xg, dh, idx, dw1, {.a_gathered = false, .g_gathered = false, .b_trans = true, .engine = e});
  });
  Tensor dx = Tensor::empty({kTokens, kModel}, DType::bf16, Device::cuda());
  gemm_part("bwd dx GEMM", {Engine::wgmma_pingpong}, "cuBLAS batched", batched_dx, [&](Engine e) {
    gather_gemm(dh, idx, w1, dx,
                {.a_gathered = false, .c_scattered = true, .zero_c = true, .epilogue = {.write = combine},
                 .engine = e});
  });
  Tensor dw2 = Tensor::empty(w2.shape(), DType::bf16, Device::cuda());
  const auto dw2_call = [&](Engine e) {
    sparse::gather_weight_grad(h, dy, idx, dw2, {.a_gathered = false, .g_gathered = true, .b_trans = true, .engine = e});
  };
  gemm_part("bwd dW2 (gated h)", wgrad_engines, "cuBLAS batched", dense_wgrad.median_ms, dw2_call);
  lean_part("bwd dW2 (gated h)", dw2_call);
  const Tensor dyg = gather_rows(dy, "dy");
  gemm_part("bwd dW2 on compact dy", compact_engines, "cuBLAS batched", dense_wgrad.median_ms, [&](Engine e) {
    sparse::gather_weight_grad(h, dyg, idx, dw2, {.a_gathered = false, .g_gathered = false, .b_trans = true, .engine = e});
  });
  // The op's calls back to back with buffers allocated once, without autograd: against moe_ffn
  // fwd+bwd, what the op and autograd add; against the parts' sum, what running in sequence costs.
  // Both row layouts of ops/pit/moe.cpp, timed alternately: SRead of x and dy in each GEMM that
  // reads them (MoeRows::gathered), and x and dy copied once into compact rows (MoeRows::compact).
  Tensor gu = Tensor::empty({rows, kFfn}, DType::bf16, Device::cuda());
  const auto sequence = [&](bool compact) {
    const sparse::RowSetIndex ix = sparse::rows_from_routing(ids, kExperts, gates);
    const Tensor x_rows = compact ? sparse::gather_entry_rows(x, ix) : x;
    Tensor hh = Tensor::empty({rows, kFfn}, DType::bf16, Device::cuda());
    gather_gemm(x_rows, ix, w1, hh,
                {.a_gathered = !compact, .c_scattered = false, .b_trans = true, .use_weights = true,
                 .epilogue = {.activation = true, .act = UnaryOp::gelu_tanh, .pre = pre, .scale_after_activation = true}});
    gather_gemm(hh, ix, w2, y,
                {.a_gathered = false, .c_scattered = true, .b_trans = true, .zero_c = true,
                 .epilogue = {.write = combine}});
    const Tensor dy_rows = compact ? sparse::gather_entry_rows(dy, ix) : dy;
    sparse::gather_weight_grad(hh, dy_rows, ix, dw2, {.a_gathered = false, .g_gathered = !compact, .b_trans = true});
    gather_gemm(dy_rows, ix, w2, gu, {.a_gathered = !compact, .c_scattered = false});
    sparse::moe_activation_backward(UnaryOp::gelu_tanh, gu, pre, ix, ids, gu, dgates);
    sparse::gather_weight_grad(x_rows, gu, ix, dw1, {.a_gathered = !compact, .g_gathered = false, .b_trans = true});
    gather_gemm(gu, ix, w1, dx, {.a_gathered = false, .c_scattered = true, .zero_c = true, .epilogue = {.write = combine}});
  };
  const auto [seq_gathered, seq_compact] =
      time_gpu_pair([&](int) { sequence(false); }, [&](int) { sequence(true); });
  report.add({"  fwd+bwd calls in sequence, gathered rows " + tag, shape, seq_gathered.median_ms, 3 * 2 * gemm_flops,
              true, gemm_peak, "", 0});
  report.add({"  fwd+bwd calls in sequence, compact rows " + tag, shape, seq_compact.median_ms, 3 * 2 * gemm_flops,
              true, gemm_peak, "", 0});
}

}  // namespace

int run_moe(const std::string& markdown_path) {
  Report report;
  std::printf("MoE experts: T=%lld d=%lld ffn=%lld E=%lld, bf16; peer: a dense FFN with k*ffn hidden "
              "(the same FLOPs per token)\n",
              static_cast<long long>(kTokens), static_cast<long long>(kModel), static_cast<long long>(kFfn),
              static_cast<long long>(kExperts));
  Report::print_header();
  const Tensor x = random_bf16({kTokens, kModel}, 1.0, 1), dy = random_bf16({kTokens, kModel}, 1.0, 2);
  const Tensor w1 = random_bf16({kExperts, kFfn, kModel}, 0.03, 3), w2 = random_bf16({kExperts, kModel, kFfn}, 0.03, 4);
  // PIT_BENCH_MOE_TRACE=1 (or 2): three untimed forward + backward passes of top-1 (top-2) uniform
  // and nothing else, for a profiler to list the kernels of one pass (e.g. `ncu --metrics
  // gpu__time_duration.sum build-gpu/pit-bench moe`).
  if (const char* trace = std::getenv("PIT_BENCH_MOE_TRACE"); trace != nullptr && std::string(trace) != "0") {
    const int64_t tk = std::string(trace) == "2" ? 2 : 1;
    const Tensor ids = routing(tk, false, 11);
    const Tensor gates = full({kTokens, tk}, 1.0 / static_cast<double>(tk), DType::f32, Device::cuda());
    for (int i = 0; i < 3; ++i) {
      Variable xv(x, true), g(gates, true), a(w1, true), b(w2, true);
      ops::moe_ffn(xv, ids, g, a, b).backward(dy);
      PIT_CUDA_CHECK(cudaDeviceSynchronize());
    }
    return 0;
  }
  for (const int64_t k : {1, 2}) {
    const Tensor dw1 = random_bf16({k * kFfn, kModel}, 0.03, 5), dw2 = random_bf16({kModel, k * kFfn}, 0.03, 6);
    const Tensor gates = full({kTokens, k}, 1.0 / static_cast<double>(k), DType::f32, Device::cuda());
    const double flops = 4.0 * kTokens * k * kModel * kFfn;  // two GEMMs of 2 T k d ffn
    // The dense FFN of equal FLOPs: forward, and forward + backward, with autograd.
    const auto dense_fwd = [&](int) {
      const NoGradGuard no_grad;
      (void)ops::linear(ops::gelu(ops::linear(Variable(x), Variable(dw1)), ops::GeluApprox::tanh), Variable(dw2));
    };
    const auto dense_bwd = [&](int) {
      Variable xv(x, true), a(dw1, true), b(dw2, true);
      ops::linear(ops::gelu(ops::linear(xv, a), ops::GeluApprox::tanh), b).backward(dy);
    };
    for (const bool skewed : {false, true}) {
      const Tensor ids = routing(k, skewed, 10 + k);
      const std::string tag = "top-" + std::to_string(k) + (skewed ? " skewed" : " uniform");
      const std::string shape = "T16384 d1024 ffn4096 E64";
      // Each timed alternately with its dense peer (time_gpu_pair): timed on their own right
      // after the peer, the top-2 uniform forward came out 0.004 ms over the sum of its parts in
      // one call and 0.074 ms (4%) in the next (docs/BENCHMARKS.md).
      const auto [fwd, dense_f] = time_gpu_pair(
          [&](int) {
            const NoGradGuard no_grad;
            (void)ops::moe_ffn(Variable(x), ids, Variable(gates), Variable(w1), Variable(w2));
          },
          dense_fwd);
      const auto [both, dense_b] = time_gpu_pair(
          [&](int) {
            Variable xv(x, true), g(gates, true), a(w1, true), b(w2, true);
            ops::moe_ffn(xv, ids, g, a, b).backward(dy);
          },
          dense_bwd);
      // Ceiling: the dense FFN's own rate in this run (so "roofline" reads as a fraction of it).
      report.add({"moe_ffn fwd " + tag, shape, fwd.median_ms, flops, true, flops / (dense_f.median_ms * 1e-3),
                  "dense FFN", dense_f.median_ms});
      report.add({"moe_ffn fwd+bwd " + tag, shape, both.median_ms, 3 * flops, true,
                  3 * flops / (dense_b.median_ms * 1e-3), "dense FFN", dense_b.median_ms});
      if (const char* parts = std::getenv("PIT_BENCH_MOE_PARTS"); parts != nullptr && std::string(parts) == "1")
        time_parts(report, x, dy, w1, w2, ids, gates, k, tag);
    }
  }
  if (!markdown_path.empty() && !report.write_markdown(markdown_path, "MoE experts, bf16 (roofline: the dense FFN of equal FLOPs)"))
    std::fprintf(stderr, "pit-bench: cannot write %s\n", markdown_path.c_str());
  return 0;
}

}  // namespace pit::bench
