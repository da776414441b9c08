// pit-bench pit: the PIT GEMMs (bf16) against cuBLAS dense, cuSPARSE CSR SpMM and cuSPARSE
// Blocked-ELL SpMM on the same matrices, plus detection + index time against one read of the
// sparse tensor at the copy bandwidth measured in the same run. Sweep: M x N x K = 4096^3 and the
// FFN down-projection 16384 x 1024 x 4096 (A = the [16384, 4096] activation), sparsity 0, 50, 90,
// 95 and 99 % of micro-tiles, micro-tiles 1x64 rows (K-chunk M-gather), 32x1 and 128x1 k lists,
// 32x32 blocks, plus whole zero rows (1xK, the MoE / padding M-gather) for reference.
// The PIT kernels are called through ops/pit/cuda/gemm.h directly (no planner: every row is the
// PIT kernel itself, also at 0 % where the planner would pick cuBLAS). --tune FILE also measures
// the other candidate micro-tiles and writes the planner's cost table (ops/pit/cost_table.h).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "bench/compare.h"
#include "bench/copy_rate.h"
#include "bench/cublas_peer.h"
#include "bench/pit_data.h"
#include "bench/timer.h"
#include "core/core.h"
#include "core/cuda/runtime.h"
#include "ops/pit/cost_table.h"
#include "ops/pit/cuda/gemm.h"
#include "autograd/grad_mode.h"
#include "ops/pit/detect.h"
#include "ops/pit/pit_ops.h"
#include "ops/pit/planner.h"

namespace pit::bench {
namespace {

enum class Kind { rows, k_lists, blocks };
struct Gran {
  std::string name;
  Kind kind;
  int64_t tr, tc;  // tc = 0: whole rows
};
struct Problem {
  int64_t m, n, k;
  std::string name;
};

// Times fn with a run count that keeps slow peers (CSR at low sparsity) to about 0.3 s.
Timing time_auto(const std::function<void(int)>& fn) {
  cudaEvent_t e0, e1;
  PIT_CUDA_CHECK(cudaEventCreate(&e0));
  PIT_CUDA_CHECK(cudaEventCreate(&e1));
  fn(0);
  PIT_CUDA_CHECK(cudaEventRecord(e0));
  fn(0);
  PIT_CUDA_CHECK(cudaEventRecord(e1));
  PIT_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  PIT_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  const int runs = static_cast<int>(std::clamp(300.0 / std::max(ms, 1e-3f), 5.0, 50.0));
  return time_gpu(fn, 3, runs);
}

// PIT_BENCH_ENGINE=mma|wgmma|persistent, or unset for each kernel's own choice.
sparse::Engine bench_engine() {
  const char* eng = std::getenv("PIT_BENCH_ENGINE");
  if (!eng) return sparse::Engine::automatic;
  const std::string e = eng;
  if (e == "mma") return sparse::Engine::mma;
  if (e == "wgmma") return sparse::Engine::wgmma;
  if (e == "persistent") return sparse::Engine::wgmma_persistent;
  PIT_THROW("PIT_BENCH_ENGINE must be mma, wgmma or persistent, got '", e, "'");
}

struct Cublas {
  CublasPeer peer;  // pit's math mode
  cublasHandle_t h = peer.h;
  void gemm(const Tensor& a, const Tensor& b, Tensor& c) const {  // row-major C = A B, bf16
    const int m = static_cast<int>(a.size(0)), k = static_cast<int>(a.size(1)), n = static_cast<int>(b.size(1));
    const float one = 1.f, zero = 0.f;
    PIT_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b.data_ptr(), CUDA_R_16BF, n,
                                  a.data_ptr(), CUDA_R_16BF, k, &zero, c.data_ptr(), CUDA_R_16BF, n,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
};

struct Cusparse {
  cusparseHandle_t h = nullptr;
  Cusparse() { PIT_CUSPARSE_CHECK(cusparseCreate(&h)); }
  ~Cusparse() { cusparseDestroy(h); }
};

cusparseDnMatDescr_t dn(const Tensor& t) {
  cusparseDnMatDescr_t d = nullptr;
  PIT_CUSPARSE_CHECK(cusparseCreateDnMat(&d, t.size(0), t.size(1), t.size(1), t.data_ptr(), CUDA_R_16BF,
                                         CUSPARSE_ORDER_ROW));
  return d;
}

// C = A B with cuSPARSE SpMM on `sp` (CSR or Blocked-ELL); returns the timing.
Timing time_spmm(const Cusparse& cs, cusparseSpMatDescr_t sp, const Tensor& b, Tensor& c, cusparseSpMMAlg_t alg) {
  cusparseDnMatDescr_t db = dn(b), dc = dn(c);
  const float one = 1.f, zero = 0.f;
  size_t bytes = 0;
  PIT_CUSPARSE_CHECK(cusparseSpMM_bufferSize(cs.h, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                             &one, sp, db, &zero, dc, CUDA_R_32F, alg, &bytes));
  Tensor buf = Tensor::empty({static_cast<int64_t>(std::max<size_t>(bytes, 16))}, DType::u8, Device::cuda());
  const Timing t = time_auto([&](int) {
    PIT_CUSPARSE_CHECK(cusparseSpMM(cs.h, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one, sp,
                                    db, &zero, dc, CUDA_R_32F, alg, buf.data_ptr()));
  });
  cusparseDestroyDnMat(db);
  cusparseDestroyDnMat(dc);
  return t;
}

Timing time_csr(const Cusparse& cs, const Tensor& a, const Tensor& b, Tensor& c) {
  const int64_t m = a.size(0), k = a.size(1);
  cusparseDnMatDescr_t da = dn(a);
  Tensor offsets = Tensor::empty({m + 1}, DType::i32, Device::cuda());
  cusparseSpMatDescr_t sp = nullptr;
  PIT_CUSPARSE_CHECK(cusparseCreateCsr(&sp, m, k, 0, offsets.data_ptr(), nullptr, nullptr, CUSPARSE_INDEX_32I,
                                       CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_16BF));
  size_t bytes = 0;
  PIT_CUSPARSE_CHECK(cusparseDenseToSparse_bufferSize(cs.h, da, sp, CUSPARSE_DENSETOSPARSE_ALG_DEFAULT, &bytes));
  Tensor buf = Tensor::empty({static_cast<int64_t>(std::max<size_t>(bytes, 16))}, DType::u8, Device::cuda());
  PIT_CUSPARSE_CHECK(cusparseDenseToSparse_analysis(cs.h, da, sp, CUSPARSE_DENSETOSPARSE_ALG_DEFAULT, buf.data_ptr()));
  int64_t r = 0, cc = 0, nnz = 0;
  PIT_CUSPARSE_CHECK(cusparseSpMatGetSize(sp, &r, &cc, &nnz));
  Tensor cols = Tensor::empty({std::max<int64_t>(nnz, 1)}, DType::i32, Device::cuda());
  Tensor vals = Tensor::empty({std::max<int64_t>(nnz, 1)}, DType::bf16, Device::cuda());
  PIT_CUSPARSE_CHECK(cusparseCsrSetPointers(sp, offsets.data_ptr(), cols.data_ptr(), vals.data_ptr()));
  PIT_CUSPARSE_CHECK(cusparseDenseToSparse_convert(cs.h, da, sp, CUSPARSE_DENSETOSPARSE_ALG_DEFAULT, buf.data_ptr()));
  const Timing t = time_spmm(cs, sp, b, c, CUSPARSE_SPMM_ALG_DEFAULT);
  cusparseDestroySpMat(sp);
  cusparseDestroyDnMat(da);
  return t;
}

// Blocked-ELL with 32 x 32 blocks built from A's 32x32 block index.
Timing time_bell(const Cusparse& cs, const Tensor& a, const Tensor& b, Tensor& c) {
  const sparse::BlockListIndex bi = sparse::detect_blocks(a, 32, {.values = true});
  const std::vector<int32_t> off = bi.offsets.to(Device::cpu()).to_vector<int32_t>();
  int64_t slots = 1;
  for (size_t i = 0; i + 1 < off.size(); ++i) slots = std::max<int64_t>(slots, off[i + 1] - off[i]);
  Tensor col_ind, values;
  blocked_ell(bi, slots, col_ind, values);
  cusparseSpMatDescr_t sp = nullptr;
  PIT_CUSPARSE_CHECK(cusparseCreateBlockedEll(&sp, a.size(0), a.size(1), 32, slots * 32, col_ind.data_ptr(),
                                              values.data_ptr(), CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                                              CUDA_R_16BF));
  const Timing t = time_spmm(cs, sp, b, c, CUSPARSE_SPMM_BLOCKED_ELL_ALG1);
  cusparseDestroySpMat(sp);
  return t;
}

struct Result {
  std::string problem, tile;
  double sparsity = 0, density = 0;
  double pit = 0, dense = 0, csr = 0, bell = 0, detect = 0, read = 0, err = 0;
};

std::string ms_or_dash(double v) {
  char s[32];
  if (v <= 0) return "-";
  std::snprintf(s, sizeof s, "%.4f", v);
  return s;
}
std::string ratio(double peer, double pit) {
  char s[32];
  if (peer <= 0 || pit <= 0) return "-";
  std::snprintf(s, sizeof s, "%.2fx", peer / pit);
  return s;
}

void print_row(const Result& r) {
  std::printf("%-22s %-9s %5.0f%% %9.4f %9.4f %7s %9s %8s %9s %8s %8.4f %8.4f %6.2f %9.2e\n", r.problem.c_str(),
              r.tile.c_str(), 100 * r.sparsity, r.pit, r.dense, ratio(r.dense, r.pit).c_str(),
              ms_or_dash(r.csr).c_str(), ratio(r.csr, r.pit).c_str(), ms_or_dash(r.bell).c_str(),
              ratio(r.bell, r.pit).c_str(), r.detect, r.read, r.detect / r.read, r.err);
  std::fflush(stdout);
}

// pit_matmul end to end with the planner deciding (the density read-back, the plan, detection
// when it picks PIT, the kernel), against cuBLAS on the same operands: what a user of the op
// gets, and the "0% sparsity no slower than 1.1x cuBLAS" target of issue #4.
struct PlannedRow {
  std::string pattern;
  double sparsity = 0, ms = 0, dense = 0;
  double plan_ms = 0;  // plan_matmul alone, host wall time (count kernels, read-back, choice)
  std::string plan;
  double site_ms = 0, site_dense = 0;  // pit_matmul with a PlanSite (no wait), and cuBLAS beside it
};

// What runs before each timed run of pit and of cuBLAS: an L2 flush, so that neither finds its
// operands in the L2 (at high sparsity pit's B and compact A fit there, cuBLAS's A and B do not);
// PIT_BENCH_WARM_L2=1: nothing (the operands of the run before stay; the tables before 2026-12-08).
std::function<void()> before_each_run() {
  const char* warm = std::getenv("PIT_BENCH_WARM_L2");
  if (warm != nullptr && warm[0] == '1') return {};
  static const L2Flush flush;
  return [] { flush(); };
}

// PIT_BENCH_FILTER="4096^3 128x1 90%": only the rows whose "problem tile sparsity" contains it
// (for profiling one kernel); every row without it.
bool wanted(const std::string& problem, const std::string& tile, double sparsity) {
  const char* f = std::getenv("PIT_BENCH_FILTER");
  if (f == nullptr) return true;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%.0f%%", 100 * sparsity);
  return (problem + " " + tile + " " + pct).find(f) != std::string::npos;
}

std::vector<PlannedRow> run_planned(const Cublas& cublas) {
  const int64_t m = 4096, n = 4096, k = 4096;
  Tensor a = Tensor::empty({m, k}, DType::bf16, Device::cuda());
  const Tensor b = randn({k, n}, DType::bf16, Device::cuda());
  Tensor ref = Tensor::empty({m, n}, DType::bf16, Device::cuda());
  std::vector<PlannedRow> rows;
  uint64_t seed = 777;
  NoGradGuard no_grad;
  for (const auto& [name, tr, tc] : {std::tuple<const char*, int64_t, int64_t>{"32x1", 32, 1}, {"128x1", 128, 1},
                                     {"32x32", 32, 32}})
    for (const double sp : {0.0, 0.5, 0.9, 0.99}) {
      ++seed;
      if (!wanted("4096^3", name, sp)) continue;
      fill_sparse(a, tr, tc, 1.0 - sp, seed);
      const Variable va(a), vb(b);
      const sparse::Plan plan = sparse::plan_matmul(a, n);
      std::vector<double> plan_times;
      for (int i = 0; i < 21; ++i) {
        PIT_CUDA_CHECK(cudaDeviceSynchronize());
        const auto t0 = std::chrono::steady_clock::now();
        (void)sparse::plan_matmul(a, n);
        plan_times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::nth_element(plan_times.begin(), plan_times.begin() + 10, plan_times.end());
      // Its parts (printed only): the counts with their read-back, and the choice on the host.
      std::vector<double> count_times, exact_times, choose_times;
      int64_t stride = 1;
      const std::vector<sparse::MicroTile> cands = sparse::candidate_tiles();
      const sparse::CostModel* table = sparse::device_cost_table(0).model;
      for (int i = 0; i < 21; ++i) {
        PIT_CUDA_CHECK(cudaDeviceSynchronize());
        const auto t0 = std::chrono::steady_clock::now();
        const sparse::TileCounts counts = sparse::planner_counts(a, cands, {}, sparse::PlanOptions{}.sample_bytes);
        const auto t1 = std::chrono::steady_clock::now();
        std::vector<sparse::Candidate> cs;
        for (size_t q = 0; q < cands.size(); ++q)
          cs.push_back({cands[q].cols == 1 ? sparse::Kernel::k_lists : sparse::Kernel::blocks, cands[q],
                        static_cast<double>(counts.nonzero[q]) / static_cast<double>(counts.looked[q])});
        (void)sparse::choose(m, k, n, DType::bf16, cs, table);
        const auto t2 = std::chrono::steady_clock::now();
        (void)sparse::planner_counts(a, cands, {}, 0);  // all of A, for comparison
        const auto t3 = std::chrono::steady_clock::now();
        stride = counts.stride;
        count_times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        choose_times.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
        exact_times.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
      }
      std::nth_element(exact_times.begin(), exact_times.begin() + 10, exact_times.end());
      std::nth_element(count_times.begin(), count_times.begin() + 10, count_times.end());
      std::nth_element(choose_times.begin(), choose_times.begin() + 10, choose_times.end());
      std::printf("planned parts: counts of 1/%ld of A with the wait %.4f ms (all of A %.4f ms), choice %.4f ms\n",
                  static_cast<long>(stride), count_times[10], exact_times[10], choose_times[10]);
      const auto [tp, td] = time_gpu_pair([&](int) { (void)ops::pit_matmul(va, vb); },
                                          [&](int) { cublas.gemm(a, b, ref); }, 5, 30, before_each_run());
      // The same at a call site (a layer's PlanSite): planned from the previous call's counts.
      sparse::PlanSite site;
      const auto [ts, tsd] = time_gpu_pair([&](int) { (void)ops::pit_matmul(va, vb, {.site = &site}); },
                                           [&](int) { cublas.gemm(a, b, ref); }, 5, 30, before_each_run());
      char what[64];
      std::snprintf(what, sizeof what, "%s %ldx%ld", sparse::kernel_name(plan.kernel),
                    static_cast<long>(plan.tile.rows), static_cast<long>(plan.tile.cols));
      rows.push_back({name, sp, tp.median_ms, td.median_ms, plan_times[10],
                      plan.kernel == sparse::Kernel::dense ? "dense" : what, ts.median_ms, tsd.median_ms});
      std::printf("planned %-6s %4.0f%%  pit_matmul %8.4f ms  cuBLAS %8.4f ms  %5.2fx  plan_matmul %7.4f ms  plan: %s"
                  "  | at a site %8.4f ms  cuBLAS %8.4f ms  %5.2fx\n",
                  name, 100 * sp, tp.median_ms, td.median_ms, td.median_ms / tp.median_ms, plan_times[10],
                  rows.back().plan.c_str(), ts.median_ms, tsd.median_ms, tsd.median_ms / ts.median_ms);
      std::fflush(stdout);
    }
  return rows;
}

}  // namespace

int run_pit_gemm(const std::string& markdown_path, const std::string& tune_path) {
  check_device(Device::cuda());
  const bool tune = !tune_path.empty();
  cudaDeviceProp prop{};
  PIT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const double bw = copy_bandwidth(int64_t{1} << 30);
  std::printf("GPU: %s; device-to-device copy: %.0f GB/s (read + write); %s\n", prop.name, bw / 1e9,
              before_each_run() ? "the L2 flushed before each timed run of pit and cuBLAS"
                                : "PIT_BENCH_WARM_L2=1: operands left in the L2 by the run before");
  if (!tune) std::printf("%s\n", sparse::device_cost_table(0).note.c_str());  // what the planned rows price with
  const StreamRef stream = current_stream(Device::cuda());
  Cublas cublas;
  Cusparse cusparse;
  const std::vector<Problem> problems = {{4096, 4096, 4096, "4096^3"}, {16384, 1024, 4096, "FFN 16384x1024x4096"}};
  std::vector<Gran> grans = {{"1x64", Kind::rows, 1, 64}, {"32x1", Kind::k_lists, 32, 1},
                             {"128x1", Kind::k_lists, 128, 1}, {"32x32", Kind::blocks, 32, 32},
                             {"1xK rows", Kind::rows, 1, 0}};
  if (tune)
    for (const Gran& g : {Gran{"16x1", Kind::k_lists, 16, 1}, Gran{"64x1", Kind::k_lists, 64, 1},
                         Gran{"16x16", Kind::blocks, 16, 16}, Gran{"64x64", Kind::blocks, 64, 64}})
      grans.push_back(g);
  const std::vector<double> sparsities = {0.0, 0.5, 0.9, 0.95, 0.99};
  sparse::CostTable table;
  table.gpu = prop.name;
  table.capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  std::vector<Result> results;
  std::printf("%-22s %-9s %6s %9s %9s %7s %9s %8s %9s %8s %8s %8s %6s %9s\n", "problem", "tile", "sparse", "PIT ms",
              "cuBLAS", "vs cuB", "CSR ms", "vs CSR", "BELL ms", "vs BELL", "detect", "read", "d/r", "rel err");
  uint64_t seed = 1;
  for (const Problem& pr : problems) {
    Tensor b = randn({pr.k, pr.n}, DType::bf16, Device::cuda());
    Tensor c = Tensor::empty({pr.m, pr.n}, DType::bf16, Device::cuda());
    Tensor ref = Tensor::empty({pr.m, pr.n}, DType::bf16, Device::cuda());
    Tensor a = Tensor::empty({pr.m, pr.k}, DType::bf16, Device::cuda());
    const double read_ms = a.nbytes() / bw * 1e3;  // one read at the measured rate
    for (const Gran& g : grans)
      for (const double sp : sparsities) {
        const int64_t tc = g.tc == 0 ? pr.k : g.tc;
        ++seed;
        if (!wanted(pr.name, g.name, sp)) continue;
        fill_sparse(a, g.tr, tc, 1.0 - sp, seed);
        Result r{pr.name, g.name, sp};
        r.read = read_ms;
        std::function<void(int)> run, detect;
        // PIT_BENCH_ENGINE forces the tensor-core engine of the M-gather and of the 128-row
        // K-condense (mma, wgmma, persistent), to compare them.
        const sparse::Engine engine = bench_engine();
        sparse::RowSetIndex ri;
        sparse::KListIndex ki;
        sparse::BlockListIndex bi;
        std::string kernel;
        int64_t tiles = 0, listed = 0;
        if (g.kind == Kind::rows) {
          const int64_t w = g.tc;  // 0: one segment of whole rows
          detect = [&, w](int) { ri = sparse::detect_rows(a, w); };
          detect(0);
          // C is zeroed first (the dispatcher's zero_c); K-chunks add into it (several chunks meet
          // one row), whole rows are stored.
          const sparse::Write wr = w > 0 ? sparse::Write::accumulate : sparse::Write::store;
          run = [&, wr](int) {
            PIT_CUDA_CHECK(cudaMemsetAsync(c.data_ptr(), 0, c.nbytes(), pit::cuda::native(stream)));
            sparse::cuda::gather_gemm(a, ri, b, c, {.epilogue = {.write = wr}, .engine = engine}, stream);
          };
          kernel = "rows";
          tiles = pr.m * (w == 0 ? 1 : (pr.k + w - 1) / w);
          listed = sparse::read_count(ri);
        } else if (g.kind == Kind::k_lists) {
          detect = [&](int) { ki = sparse::detect_k_lists(a, g.tr, {.values = true}); };
          detect(0);
          run = [&](int) { sparse::cuda::condense_gemm(ki, b, c, {}, stream, engine); };
          kernel = "k_lists";
          tiles = (pr.m + g.tr - 1) / g.tr * pr.k;
          listed = sparse::read_count(ki);
        } else {
          detect = [&](int) { bi = sparse::detect_blocks(a, g.tr, {.values = true}); };
          detect(0);
          run = [&](int) { sparse::cuda::block_gemm(bi, b, c, {}, stream); };
          kernel = "blocks";
          tiles = (pr.m + g.tr - 1) / g.tr * ((pr.k + g.tr - 1) / g.tr);
          listed = sparse::read_count(bi);
        }
        // A launch error left by detection would otherwise surface at the next check.
        PIT_CUDA_CHECK(cudaDeviceSynchronize());
        PIT_CHECK(cudaGetLastError() == cudaSuccess, "detection (", g.name, ", ", pr.name, ") left a CUDA error");
        r.density = tiles > 0 ? static_cast<double>(listed) / tiles : 0;
        // Correctness against cuBLAS on the same operands.
        try {
          run(0);
        } catch (const std::exception& e) {
          std::printf("  %s %s %.0f%%: %s\n", pr.name.c_str(), g.name.c_str(), 100 * sp, e.what());
          continue;
        }
        cublas.gemm(a, b, ref);
        PIT_CUDA_CHECK(cudaDeviceSynchronize());
        r.err = rel_err(c, ref);
        const auto [tp, td] = time_gpu_pair(run, [&](int) { cublas.gemm(a, b, ref); }, 5, 30, before_each_run());
        r.pit = tp.median_ms;
        r.dense = td.median_ms;
        r.detect = time_gpu(detect, 3, 20).median_ms;
        if (!tune) {
          try {
            r.csr = time_csr(cusparse, a, b, ref).median_ms;
          } catch (const std::exception& e) {
            std::printf("  cuSPARSE CSR: %s\n", e.what());
          }
          try {
            r.bell = time_bell(cusparse, a, b, ref).median_ms;
          } catch (const std::exception& e) {
            std::printf("  cuSPARSE Blocked-ELL: %s\n", e.what());
          }
        }
        print_row(r);
        results.push_back(r);
        const sparse::MicroTile mt{g.tr, g.tc == 0 ? pr.k : g.tc};
        table.rows.push_back({prop.name, kernel, mt, DType::bf16, pr.m, pr.k, pr.n, r.density, r.pit * 1e3});
        table.rows.push_back({prop.name, "detect_" + kernel, mt, DType::bf16, pr.m, pr.k, 0, r.density, r.detect * 1e3});
        if (&g == &grans.front() && sp == 0.0)
          table.rows.push_back({prop.name, "dense", {1, 1}, DType::bf16, pr.m, pr.k, pr.n, 1.0, r.dense * 1e3});
      }
  }
  const std::vector<PlannedRow> planned = tune ? std::vector<PlannedRow>{} : run_planned(cublas);
  if (tune) {
    sparse::write_cost_table(tune_path, table);
    std::printf("cost table written to %s (%zu rows)\n", tune_path.c_str(), table.rows.size());
  }
  if (!markdown_path.empty()) {
    FILE* f = std::fopen(markdown_path.c_str(), "w");
    PIT_CHECK(f, "pit-bench pit: cannot write ", markdown_path);
    std::fprintf(f,
                 "### PIT GEMMs, bf16 (%s; copy %.0f GB/s; %s)\n\n"
                 "| problem | micro-tile | sparsity | density | PIT ms | cuBLAS ms | vs cuBLAS | CSR ms | vs CSR | "
                 "BELL-32 ms | vs BELL | detect ms | read ms | detect/read | rel err |\n"
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
                 prop.name, bw / 1e9, before_each_run() ? "L2 flushed before each timed run" : "warm L2");
    for (const Result& r : results)
      std::fprintf(f, "| %s | %s | %.0f%% | %.3f | %.4f | %.4f | %s | %s | %s | %s | %s | %.4f | %.4f | %.2f | %.1e |\n",
                   r.problem.c_str(), r.tile.c_str(), 100 * r.sparsity, r.density, r.pit, r.dense,
                   ratio(r.dense, r.pit).c_str(), ms_or_dash(r.csr).c_str(), ratio(r.csr, r.pit).c_str(),
                   ms_or_dash(r.bell).c_str(), ratio(r.bell, r.pit).c_str(), r.detect, r.read, r.detect / r.read,
                   r.err);
    if (!planned.empty()) {
      std::fprintf(f,
                   "\n#### pit_matmul with the planner, 4096^3 bf16 (end to end: density read-back, plan, "
                   "detection, kernel; plan_matmul ms: the planning alone, host wall time; at a site: "
                   "pit_matmul with a PlanSite, planned from the previous call's counts, against cuBLAS timed "
                   "beside it)\n\n"
                   "| pattern | sparsity | pit_matmul ms | cuBLAS ms | vs cuBLAS | plan_matmul ms | plan | "
                   "at a site ms | cuBLAS ms | vs cuBLAS |\n"
                   "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
      for (const PlannedRow& r : planned)
        std::fprintf(f, "| %s | %.0f%% | %.4f | %.4f | %s | %.4f | %s | %.4f | %.4f | %s |\n", r.pattern.c_str(),
                     100 * r.sparsity, r.ms, r.dense, ratio(r.dense, r.ms).c_str(), r.plan_ms, r.plan.c_str(), r.site_ms,
                     r.site_dense, ratio(r.site_dense, r.site_ms).c_str());
    }
    std::fclose(f);
  }
  int bad = 0;
  for (const Result& r : results) bad += r.err > 2e-2;
  if (bad) std::printf("pit-bench pit: %d rows with relative error > 2e-2 against cuBLAS\n", bad);
  return bad ? 1 : 0;
}

}  // namespace pit::bench
