// pit-bench sparse: issue #6's sparse FFN block on the GPU, bf16 compute, f32 master weights:
// x [8192, 4096] -> Linear 4096 -> 16384, ReLU, Linear 16384 -> 4096, both weights pruned to
// 90% in micro-tiles (nn::SparseLinear: compact values on the PIT kernels), against the same
// block dense in pit (nn::Linear, cuBLAS); the two sparse layers run as nn::MLP runs them
// (nn::relu_ffn: ops::sparse_relu_ffn, or with PIT_RELU_FFN=pair two sparse_linear ops). A
// training step is timed whole: forward, backward
// from a given dy, and the AdamW step. The memory of weights + gradients + optimizer state is
// counted from the tensors themselves (values or weights, their gradients, AdamW's two moments,
// and the sparse layers' index arrays).
// Second table: one layer (4096 -> 16384, 8192 tokens, 32x1 and 64x64) forward + backward on the
// PIT kernels against its dense path (W scattered to dense, cuBLAS, gradient gathered back) by
// density: where SparseLinear's dense_path_from should sit on this GPU. Third: each GEMM of the
// PIT path alone at 90% sparsity against cuBLAS on the dense weight, and the transposes; for
// blocks also block_linear (y and dx as they lie, what sparse_linear runs).
// Fourth: activation sparsity, the FFN's second GEMM y = h W2^T on a ReLU output h [8192, 16384]
// with 90% or 99% zeros, forward and forward + backward (dh at h's non-zeros, dW2), as
// nn::MLP's sparse_activation runs it (pit_matmul, planned by the planner with a PlanSite),
// against the dense matmul; two patterns: zeros independent of each other (the worst case for
// micro-tiles) and neurons with skewed firing rates (rate of neuron j ~ Beta(a, 1 - a) with
// mean a, so many neurons rarely fire and a few often, as in trained ReLU LMs).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/timer.h"
#include "core/core.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/compact.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "ops/pit/planner.h"
#include "ops/pit/pit_ops.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/sparse_linear.h"
#include "trainer/optim/adamw.h"
#include "trainer/sparse/mask.h"

namespace pit::bench {
namespace {

constexpr int64_t kTokens = 8192, kModel = 4096, kFfn = 16384;

Tensor random_on_gpu(const Shape& shape, uint64_t seed, DType dtype) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.f * philox_uniform(seed, 0, i) - 1.f;
  return from_vector(v, shape).to(Device::cuda(), dtype);
}

// A unit mask keeping about `density` of the units, drawn with Philox.
Tensor random_units(const Shape& grid, double density, uint64_t seed) {
  std::vector<uint8_t> on(static_cast<size_t>(shape_numel(grid)));
  for (size_t i = 0; i < on.size(); ++i) on[i] = philox_uniform(seed, 1, i) < density;
  return from_vector(on, grid);
}

int64_t bytes_of(const Tensor& t) { return t.defined() ? static_cast<int64_t>(t.nbytes()) : 0; }

struct Block {
  std::shared_ptr<nn::ModuleList> net = std::make_shared<nn::ModuleList>();
  nn::Linear *fc = nullptr, *proj = nullptr;
  std::unique_ptr<optim::AdamW> opt;

  // Dense, or pruned to `density` in `unit` micro-tiles when unit is given.
  Block(const sparse::MicroTile* unit, double density) {
    Generator gen(1);
    fc = net->push_back(std::make_shared<nn::Linear>(kModel, kFfn, true, gen)).get();
    proj = net->push_back(std::make_shared<nn::Linear>(kFfn, kModel, true, gen)).get();
    net->to(Device::cuda());
    net->set_compute_dtype(DType::bf16);
    if (unit) {
      for (nn::Linear* l : {fc, proj}) {
        nn::SparseLinear& s = l->sparsify(*unit);
        s.set_tile_mask(random_units(s.tile_mask().shape(), density, 7).to(Device::cuda()));
      }
    }
    opt = std::make_unique<optim::AdamW>(optim::with_default_decay(net->named_parameters()));
  }

  // proj(relu(fc(x))) as nn::MLP runs it (nn::relu_ffn: two sparse layers are one op). With
  // input_grad, x's gradient too, as for a block inside a network (the first layer's dx GEMM).
  Variable forward(const Tensor& x, bool input_grad = true) {
    return nn::relu_ffn(*fc, *proj, Variable(x, input_grad));
  }

  void step(const Tensor& x, const Tensor& dy, bool input_grad = true) {
    forward(x, input_grad).backward(dy);
    opt->step(1e-4);
    opt->zero_grad();
  }

  // Weights + gradients + AdamW moments (+ the sparse layers' index arrays), in bytes, counted from
  // the tensors themselves: a step first (the moments exist), then a backward (the gradients).
  int64_t state_bytes(const Tensor& x, const Tensor& dy) {
    step(x, dy);
    forward(x).backward(dy);
    int64_t n = opt->state_bytes();
    for (const auto& [name, v] : net->named_parameters()) {
      n += bytes_of(v.data());
      PIT_CHECK(v.grad().defined(), "pit-bench sparse: ", name, " has no gradient to count");
      n += bytes_of(v.grad());
    }
    opt->zero_grad();
    for (nn::Linear* l : {fc, proj}) {
      if (!l->sparse()) continue;
      const sparse::CompactLayout& c = l->sparse()->layout();
      n += bytes_of(c.lists.offsets) + bytes_of(c.lists.k) + bytes_of(c.blocks.offsets) + bytes_of(c.blocks.col) +
           bytes_of(c.inside) + bytes_of(c.positions) + bytes_of(l->sparse()->tile_mask());
    }
    return n;
  }
};

void write_line(std::FILE* md, const char* fmt, auto... args) {
  std::printf(fmt, args...);
  if (md) std::fprintf(md, fmt, args...);
}

// A ReLU output [tokens, ffn] on the GPU (bf16) with about `zeros` of its elements zero: each
// element fires (a U(0, 1) value) with its neuron's rate; rates all 1 - zeros (`skewed` false) or
// drawn from Beta(a, 1 - a), a = 1 - zeros. `*zero_fraction`: the zeros drawn.
Tensor relu_output(double zeros, bool skewed, uint64_t seed, double* zero_fraction) {
  const double a = 1.0 - zeros;
  std::mt19937_64 gen(seed);
  std::gamma_distribution<double> ga(a, 1.0), gb(1.0 - a, 1.0);
  std::vector<double> rate(static_cast<size_t>(kFfn), a);
  if (skewed)
    for (double& r : rate) {
      const double x = ga(gen), y = gb(gen);
      r = x + y > 0 ? x / (x + y) : 0.0;
    }
  std::vector<float> h(static_cast<size_t>(kTokens * kFfn));
  int64_t zero = 0;
  for (int64_t t = 0; t < kTokens; ++t)
    for (int64_t j = 0; j < kFfn; ++j) {
      const size_t i = static_cast<size_t>(t * kFfn + j);
      const bool fires = philox_uniform(seed, 2, i) < rate[static_cast<size_t>(j)];
      h[i] = fires ? 0.5f + 0.5f * philox_uniform(seed, 3, i) : 0.f;
      zero += fires ? 0 : 1;
    }
  *zero_fraction = static_cast<double>(zero) / static_cast<double>(h.size());
  return from_vector(h, {kTokens, kFfn}).to(Device::cuda(), DType::bf16);
}

// PIT_BENCH_SPARSE_TRACE=activation: three untimed forward + backward passes of the fourth
// table's pit_matmul on h with 99% zeros at skewed rates, then one of the dense matmul (read the
// whole list: the passes' kernels come in the order they ran).
void activation_trace() {
  const Tensor w = random_on_gpu({kModel, kFfn}, 12, DType::bf16);
  const Tensor dy = random_on_gpu({kTokens, kModel}, 13, DType::bf16);
  double zero_fraction = 0;
  const Tensor h = relu_output(0.99, true, 21, &zero_fraction);
  sparse::PlanSite site;
  for (int i = 0; i < 3; ++i) {
    Variable hv(h, true), wv(w, true);
    ops::pit_matmul(hv, ops::transpose(wv, 0, 1), {.site = &site}).backward(dy);
  }
  Variable hv(h, true), wv(w, true);
  ops::matmul(hv, ops::transpose(wv, 0, 1)).backward(dy);
  PIT_CUDA_CHECK(cudaDeviceSynchronize());
}

// The fourth table (see the top of the file).
void activation_sparsity(std::FILE* md) {
  write_line(md, "\n### Activation sparsity: the second GEMM y = h W2^T, h = ReLU output [%lld, %lld], W2 [%lld, %lld], bf16\n\n",
             static_cast<long long>(kTokens), static_cast<long long>(kFfn), static_cast<long long>(kModel),
             static_cast<long long>(kFfn));
  write_line(md, "| h | zeros | 32x1 tiles non-zero | dense fwd ms | pit fwd ms | fwd speed-up | dense fwd+bwd ms | pit fwd+bwd ms | fwd+bwd speed-up |\n"
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const Tensor w = random_on_gpu({kModel, kFfn}, 12, DType::bf16);
  const Tensor dy = random_on_gpu({kTokens, kModel}, 13, DType::bf16);
  for (const bool skewed : {false, true})
    for (const double zeros : {0.9, 0.99}) {
      double zero_fraction = 0;
      const Tensor h = relu_output(zeros, skewed, 21, &zero_fraction);
      const double tiles = static_cast<double>(sparse::count_micro_tiles(h, {sparse::MicroTile{32, 1}}).to(Device::cpu()).to_vector<int64_t>()[0]) /
                           static_cast<double>(sparse::MicroTile{32, 1}.count_in(kTokens, kFfn));
      sparse::PlanSite site;  // as a layer keeps it across steps
      const auto pit = [&](bool backward) {
        Variable hv(h, backward), wv(w, backward);
        const Variable y = ops::pit_matmul(hv, ops::transpose(wv, 0, 1), {.site = &site});
        if (backward) y.backward(dy);
      };
      const auto dense = [&](bool backward) {
        Variable hv(h, backward), wv(w, backward);
        const Variable y = ops::matmul(hv, ops::transpose(wv, 0, 1));
        if (backward) y.backward(dy);
      };
      const auto [df, pf] = time_gpu_pair([&](int) { dense(false); }, [&](int) { pit(false); }, 5, 30);
      const auto [db, pb] = time_gpu_pair([&](int) { dense(true); }, [&](int) { pit(true); }, 5, 30);
      write_line(md, "| %s | %.1f%% | %.1f%% | %.3f | %.3f | %.2fx | %.3f | %.3f | %.2fx |\n",
                 skewed ? "skewed neuron rates" : "independent zeros", 100.0 * zero_fraction, 100.0 * tiles,
                 df.median_ms, pf.median_ms, df.median_ms / pf.median_ms, db.median_ms, pb.median_ms,
                 db.median_ms / pb.median_ms);
    }
}

// The first table: the block's training step, dense and at 90% sparsity in each micro-tile.
void block_table(std::FILE* md, const Tensor& x, const Tensor& dy) {
  const double sparsity = 0.9;
  write_line(md, "### Sparse FFN block, bf16: %lld tokens, %lld -> %lld -> %lld, training step (fwd + bwd with x's "
                 "gradient + AdamW)\n\n",
             static_cast<long long>(kTokens), static_cast<long long>(kModel), static_cast<long long>(kFfn),
             static_cast<long long>(kModel));
  // Each sparse block timed alternately with the dense one (time_gpu_pair, both alive: about 2.5
  // GB): timed one after the other, a step's time drifted by several percent with what ran before
  // it (docs/BENCHMARKS.md), as much as the 4x target's margin on an H100. The speed-up is against
  // the dense step of the same pair; the dense row gives the first pair's.
  write_line(md, "| block | ms / step | dense in the same pairs, ms | speed-up vs dense | weights + grads + AdamW state | vs dense |\n"
                 "|---|---:|---:|---:|---:|---:|\n");
  Block dense(nullptr, 1.0);
  const int64_t dense_bytes = dense.state_bytes(x, dy);
  bool first = true;
  for (const sparse::MicroTile unit :
       {sparse::MicroTile{32, 1}, sparse::MicroTile{64, 1}, sparse::MicroTile{128, 1}, sparse::MicroTile{32, 32},
        sparse::MicroTile{64, 64}}) {
    Block block(&unit, 1.0 - sparsity);
    const auto [d, t] = time_gpu_pair([&](int) { dense.step(x, dy); }, [&](int) { block.step(x, dy); }, 5, 30);
    if (unit == sparse::MicroTile{64, 64}) {  // the step as the tables before 2026-12-08 timed it
      const auto [dn, tn] = time_gpu_pair([&](int) { dense.step(x, dy, false); },
                                          [&](int) { block.step(x, dy, false); }, 5, 30);
      std::printf("64x64 without x's gradient (the first layer's dx GEMM left out on both sides): %.3f ms against "
                  "%.3f dense, %.2fx\n", tn.median_ms, dn.median_ms, dn.median_ms / tn.median_ms);
    }
    if (first) {
      write_line(md, "| dense (pit, cuBLAS) | %.3f | | 1.00x | %.1f MiB | 100%% |\n", d.median_ms,
                 static_cast<double>(dense_bytes) / (1 << 20));
      first = false;
    }
    const int64_t bytes = block.state_bytes(x, dy);
    write_line(md, "| %s at %.0f%% sparsity | %.3f | %.3f | %.2fx | %.1f MiB | %.1f%% |\n", unit.str().c_str(),
               100.0 * sparsity, t.median_ms, d.median_ms, d.median_ms / t.median_ms,
               static_cast<double>(bytes) / (1 << 20), 100.0 * static_cast<double>(bytes) / static_cast<double>(dense_bytes));
  }
}

}  // namespace

int run_sparse(const std::string& markdown_path) {
  std::FILE* md = markdown_path.empty() ? nullptr : std::fopen(markdown_path.c_str(), "w");
  const Tensor x = random_on_gpu({kTokens, kModel}, 1, DType::bf16);
  const Tensor dy = random_on_gpu({kTokens, kModel}, 2, DType::bf16);
  const double sparsity = 0.9;
  // PIT_BENCH_SPARSE_TRACE=64x64 (or another micro-tile, or "dense"): three untimed training steps
  // of that block and nothing else (or "activation": activation_trace above), for a profiler to list the kernels of one step (`ncu --metrics
  // gpu__time_duration.sum --csv build-gpu/pit-bench sparse > F; python3 bench/ncu_pass.py F
  // --marker adamw --ends 4`: a step ends with AdamW on each of its four parameters).
  if (const char* trace = std::getenv("PIT_BENCH_SPARSE_TRACE")) {
    const std::string name = trace;
    if (name == "activation") {
      activation_trace();
      return 0;
    }
    std::unique_ptr<Block> block;
    if (name == "dense") {
      block = std::make_unique<Block>(nullptr, 1.0);
    } else {
      sparse::MicroTile unit;
      long long r = 0, c = 0;
      PIT_CHECK(std::sscanf(trace, "%lldx%lld", &r, &c) == 2 && r > 0 && c > 0,
                "PIT_BENCH_SPARSE_TRACE: \"", name, "\" is neither \"dense\" nor a micro-tile such as 64x64");
      unit.rows = r;
      unit.cols = c;
      block = std::make_unique<Block>(&unit, 1.0 - sparsity);
    }
    for (int i = 0; i < 3; ++i) block->step(x, dy);
    PIT_CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
  }
  // Which cost table the planner prices the activation table's pit_matmul with (it changes the
  // kernels: without the H100's own table, 2.75x against 3.18x there).
  std::printf("GPU: %s; %s\n\n", sparse::gpu_name(0).c_str(), sparse::device_cost_table(0).note.c_str());
  // PIT_BENCH_SPARSE_TABLE=activation or block: the fourth or the first table alone (each
  // measures one change in a minute).
  if (const char* only = std::getenv("PIT_BENCH_SPARSE_TABLE")) {
    const std::string table = only;
    PIT_CHECK(table == "activation" || table == "block", "PIT_BENCH_SPARSE_TABLE: \"", table,
              "\" is not a table this benchmark runs alone (\"activation\" or \"block\")");
    if (table == "activation") activation_sparsity(md);
    else block_table(md, x, dy);
    if (md) std::fclose(md);
    return 0;
  }
  block_table(md, x, dy);

  write_line(md, "\n### One sparse layer, PIT kernels vs the dense path: %lld -> %lld, %lld tokens, bf16, fwd + bwd\n\n",
             static_cast<long long>(kModel), static_cast<long long>(kFfn), static_cast<long long>(kTokens));
  write_line(md, "| micro-tile | density | PIT kernels ms | dense path ms | faster |\n|---|---:|---:|---:|---|\n");
  const Tensor w = random_on_gpu({kFfn, kModel}, 3, DType::bf16);
  const Tensor g = random_on_gpu({kTokens, kFfn}, 4, DType::bf16);
  for (const sparse::MicroTile unit : {sparse::MicroTile{32, 1}, sparse::MicroTile{64, 64}})
    for (const double density : {0.05, 0.1, 0.2, 0.3, 0.5}) {
      const Tensor units = random_units({kFfn / unit.rows, kModel / unit.cols}, density, 9).to(Device::cuda());
      const Tensor mask = sparse_train::expand_tiles(units, kFfn, kModel, unit.rows, unit.cols);
      // The same layer on PIT kernels (dense_from 2: never the dense path) and on the dense path
      // (dense_from 0), timed alternately.
      sparse::CompactLayout layouts[2];
      Tensor values[2];
      for (int dense = 0; dense < 2; ++dense) {
        layouts[dense] = sparse::compact_layout(mask, unit, false, dense ? 0.0 : 2.0);
        values[dense] = sparse::compact_values(layouts[dense], w, mask);
      }
      const auto run = [&](int dense) {
        Variable xv(x, true), vv(values[dense], true);
        ops::sparse_linear(xv, vv, Variable(), layouts[dense]).backward(g);
      };
      const auto [pit, dense_path] = time_gpu_pair([&](int) { run(0); }, [&](int) { run(1); }, 5, 30);
      const double ms[2] = {pit.median_ms, dense_path.median_ms};
      write_line(md, "| %s | %.2f | %.3f | %.3f | %s |\n", unit.str().c_str(), density, ms[0], ms[1],
                 ms[0] < ms[1] ? "PIT" : "dense");
    }

  // Each GEMM of the layer alone at 90% sparsity, as sparse_linear calls them, against cuBLAS on
  // the dense weight (the dense path's GEMMs; its scatter and gather not included).
  write_line(md, "\n### Each GEMM of one layer at 90%% sparsity (%lld -> %lld, %lld tokens, bf16) vs cuBLAS dense\n\n",
             static_cast<long long>(kModel), static_cast<long long>(kFfn), static_cast<long long>(kTokens));
  write_line(md, "| micro-tile | y^T = W x^T ms | dx^T = W^T dy^T ms | dW at tiles ms | transposes ms | cuBLAS y / dx / dW ms |\n"
                 "|---|---:|---:|---:|---:|---:|\n");
  const Tensor xt = x.t().contiguous(), gt = g.t().contiguous();
  const Tensor wd = w.contiguous();
  const double y_ms = time_gpu([&](int) { (void)kernels::matmul(x, wd.t()); }, 3, 20).median_ms;
  const double dx_ms = time_gpu([&](int) { (void)kernels::matmul(g, wd); }, 3, 20).median_ms;
  const double dw_ms = time_gpu([&](int) { (void)kernels::matmul(g.t(), x); }, 3, 20).median_ms;
  const double tr_ms = time_gpu([&](int) {
    (void)x.t().contiguous();
    (void)g.t().contiguous();
    (void)gt.t().contiguous();
    (void)xt.t().contiguous();
  }, 3, 20).median_ms;
  std::string linear_rows;  // block_linear's table, printed after this one
  for (const sparse::MicroTile unit : {sparse::MicroTile{32, 1}, sparse::MicroTile{128, 1}, sparse::MicroTile{32, 32},
                                       sparse::MicroTile{64, 64}}) {
    const Tensor units = random_units({kFfn / unit.rows, kModel / unit.cols}, 0.1, 11).to(Device::cuda());
    const Tensor mask = sparse_train::expand_tiles(units, kFfn, kModel, unit.rows, unit.cols);
    const sparse::CompactLayout l = sparse::compact_layout(mask, unit, false);
    const Tensor v = sparse::compact_values(l, w, mask);
    Tensor yt = Tensor::empty({kFfn, kTokens}, DType::bf16, Device::cuda());
    Tensor dxt = Tensor::empty({kModel, kTokens}, DType::bf16, Device::cuda());
    Tensor dv = Tensor::empty(l.values_shape(), DType::bf16, Device::cuda());
    double f = 0, d = 0, s = 0;
    if (l.is_blocks()) {
      const sparse::BlockListIndex idx = sparse::blocks_with(l, v);
      sparse::BlockListIndex out = sparse::blocks_with(l, dv);
      f = time_gpu([&](int) { sparse::block_gemm(idx, xt, yt); }, 3, 20).median_ms;
      // The transposed values built once: the column times the GEMM, as the K lists' column does.
      const sparse::BlockListIndex tidx = sparse::transposed_blocks_with(l, v);
      d = time_gpu([&](int) { sparse::block_gemm(tidx, gt, dxt); }, 3, 20).median_ms;
      s = time_gpu([&](int) { sparse::sampled_gemm(g, x, out, true, false); }, 3, 20).median_ms;
      // What sparse_linear runs for blocks: x, y, dy and dx as they lie (block_linear and
      // block_linear_dx; 64 x 64 in bf16 one kernel each, dx reading W's blocks as they lie; other
      // blocks block_gemm between transposes, dx on a transposed copy of the values).
      Tensor y = Tensor::empty({kTokens, kFfn}, DType::bf16, Device::cuda());
      Tensor dx = Tensor::empty({kTokens, kModel}, DType::bf16, Device::cuda());
      const double fl = time_gpu([&](int) { sparse::block_linear(x, idx, y); }, 3, 20).median_ms;
      const double dl = time_gpu([&](int) { sparse::block_linear_dx(g, idx, dx); }, 3, 20).median_ms;
      // The 64 x 64 kernels with output tiles of 128 tokens instead of 256 (PIT_BLOCK_LINEAR_TOKENS)
      // and dW items of two blocks instead of four (PIT_BLOCK_SAMPLED_BLOCKS).
      setenv("PIT_BLOCK_LINEAR_TOKENS", "128", 1);
      setenv("PIT_BLOCK_SAMPLED_BLOCKS", "2", 1);
      const double fl128 = time_gpu([&](int) { sparse::block_linear(x, idx, y); }, 3, 20).median_ms;
      const double dl128 = time_gpu([&](int) { sparse::block_linear_dx(g, idx, dx); }, 3, 20).median_ms;
      const double s2 = time_gpu([&](int) { sparse::sampled_gemm(g, x, out, true, false); }, 3, 20).median_ms;
      unsetenv("PIT_BLOCK_LINEAR_TOKENS");
      unsetenv("PIT_BLOCK_SAMPLED_BLOCKS");
      char line[256];
      std::snprintf(line, sizeof line, "| %s | %.3f | %.3f | %.3f | %.3f / %.3f / %.3f | %.3f / %.3f |\n",
                    unit.str().c_str(), fl, dl, s, fl128, dl128, s2, y_ms, dx_ms);
      linear_rows += line;
    } else {
      const sparse::KListIndex idx = sparse::lists_with(l, v);
      sparse::KListIndex out = sparse::lists_with(l, dv);
      f = time_gpu([&](int) { sparse::condense_gemm(idx, xt, yt); }, 3, 20).median_ms;
      d = time_gpu([&](int) { sparse::condense_gemm_tn(idx, gt, dxt); }, 3, 20).median_ms;
      s = time_gpu([&](int) { sparse::sampled_gemm(gt, xt, out, false, true); }, 3, 20).median_ms;  // as sparse_linear
    }
    write_line(md, "| %s | %.3f | %.3f | %.3f | %.3f | %.3f / %.3f / %.3f |\n", unit.str().c_str(), f, d, s, tr_ms, y_ms,
               dx_ms, dw_ms);
  }
  write_line(md, "\n### Blocks as sparse_linear runs them: y = x W^T and dx = dy W without transposes (block_linear)\n\n"
                 "| micro-tile | y ms | dx ms | dW ms | 64x64 before: 128-token tiles y / dx, dW in pairs ms | cuBLAS y / dx ms |\n"
                 "|---|---:|---:|---:|---:|---:|\n");
  write_line(md, "%s", linear_rows.c_str());
  activation_sparsity(md);
  if (md) std::fclose(md);
  return 0;
}

}  // namespace pit::bench
