// The PIT planner (ops/pit/planner.h).
#include "ops/pit/planner.h"

#include <limits>
#include <map>
#include <mutex>
#include <sstream>

#include "ops/pit/detect.h"
#if PIT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace pit::sparse {
namespace {

// Dense peaks of the built-in model, a little under what cuBLAS reaches on an H100/H200
// (bf16 ~700 TFLOP/s measured at 4096^3; f32 without TF32 ~50).
double peak_flops(DType dtype) { return dtype == DType::f32 ? 45e12 : (dtype == DType::f64 ? 20e12 : 550e12); }
// Detection reads A once (plus small writes); 1.5 reads at this bandwidth is its budget.
constexpr double kDetectBandwidth = 2.5e12;
// Launch and scan overheads of detection, microseconds.
constexpr double kDetectFixedUs = 6.0;

// PIT efficiency relative to dense per micro-tile: small tiles reuse less per gather.
double efficiency(const Candidate& c) {
  const int64_t r = c.tile.rows;
  if (c.kernel == Kernel::blocks) return r >= 64 ? 0.5 : (r >= 32 ? 0.45 : 0.3);
  if (c.kernel == Kernel::rows) return 0.5;
  return r >= 128 ? 0.5 : (r >= 64 ? 0.45 : (r >= 32 ? 0.4 : 0.3));
}

const char* detect_kernel(Kernel k) {
  switch (k) {
    case Kernel::k_lists: return "detect_k_lists";
    case Kernel::blocks: return "detect_blocks";
    case Kernel::rows: return "detect_rows";
    case Kernel::dense: break;
  }
  return "detect_none";
}

}  // namespace

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::dense: return "dense";
    case Kernel::k_lists: return "k_lists";
    case Kernel::blocks: return "blocks";
    case Kernel::rows: return "rows";
  }
  return "?";
}

std::vector<MicroTile> candidate_tiles() {
  return {{16, 1}, {32, 1}, {64, 1}, {128, 1}, {16, 16}, {32, 32}, {64, 64}};
}

double builtin_dense_us(int64_t m, int64_t k, int64_t n, DType dtype) {
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) / peak_flops(dtype) * 1e6 + 5.0;
}

double builtin_pit_us(const Candidate& c, int64_t m, int64_t k, int64_t n, DType dtype) {
  const double detect = static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(dtype_size(dtype)) * 1.5 /
                            kDetectBandwidth * 1e6 + kDetectFixedUs;
  return (builtin_dense_us(m, k, n, dtype) - 5.0) * c.density / efficiency(c) + 5.0 + detect;
}

Plan choose(int64_t m, int64_t k, int64_t n, DType dtype, const std::vector<Candidate>& candidates,
            const std::optional<CostTable>& table) {
  Plan p;
  std::optional<double> dense;
  if (table) dense = table->estimate("dense", {1, 1}, dtype, m, k, n, 1.0);
  p.dense_us = dense ? *dense : builtin_dense_us(m, k, n, dtype);
  p.est_us = p.dense_us;
  p.kernel = Kernel::dense;
  std::ostringstream why;
  why << "dense " << p.dense_us << " us";
  for (const Candidate& c : candidates) {
    double us = 0.0;
    std::optional<double> gemm, det;
    if (table && dense) {
      gemm = table->estimate(kernel_name(c.kernel), c.tile, dtype, m, k, n, c.density);
      det = table->estimate(detect_kernel(c.kernel), c.tile, dtype, m, k, 0, c.density);
    }
    if (gemm) {
      us = *gemm + (det ? *det : builtin_pit_us({c.kernel, c.tile, 0.0}, m, k, 0, dtype));
    } else {
      us = builtin_pit_us(c, m, k, n, dtype);
    }
    why << "; " << kernel_name(c.kernel) << " " << c.tile.str() << " at density " << c.density << ": " << us << " us";
    if (us < p.est_us) {
      p.est_us = us;
      p.kernel = c.kernel;
      p.tile = c.tile;
      p.density = c.density;
    }
  }
  p.reason = std::string(table && dense ? "table " + table->gpu : "built-in model") + ": " + why.str();
  return p;
}

std::string gpu_name(int index) {
#if PIT_WITH_CUDA
  static std::mutex mu;
  static std::map<int, std::string> names;
  std::lock_guard<std::mutex> lock(mu);
  auto it = names.find(index);
  if (it != names.end()) return it->second;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return "unknown";
  return names[index] = prop.name;
#else
  (void)index;
  return "cpu";
#endif
}

Plan plan_matmul(const Tensor& a, int64_t n, const PlanOptions& options, const Tensor& mask) {
  PIT_CHECK(a.defined() && a.dim() >= 1, "plan_matmul: A is undefined or a scalar");
  const int64_t k = a.size(-1), m = k > 0 ? a.numel() / k : 0;
  std::vector<MicroTile> tiles;
  std::vector<Kernel> kinds;
  for (const MicroTile& t : candidate_tiles()) {
    const Kernel kind = t.cols == 1 ? Kernel::k_lists : Kernel::blocks;
    bool allowed = options.kernels.empty();
    for (const Kernel want : options.kernels) allowed = allowed || want == kind;
    if (!allowed) continue;
    tiles.push_back(t);
    kinds.push_back(kind);
  }
  std::vector<Candidate> cands;
  if (!tiles.empty()) {
    std::vector<double> dens(tiles.size(), options.density);
    if (options.density < 0.0) {
      // The planner's one synchronisation: a few counts back to the host.
      const std::vector<int64_t> counts = count_micro_tiles(a, tiles, mask).to(Device::cpu()).to_vector<int64_t>();
      for (size_t i = 0; i < tiles.size(); ++i) {
        const double total = static_cast<double>((m + tiles[i].rows - 1) / tiles[i].rows) *
                             static_cast<double>((k + tiles[i].cols - 1) / tiles[i].cols);
        dens[i] = total > 0 ? static_cast<double>(counts[i]) / total : 0.0;
      }
    }
    for (size_t i = 0; i < tiles.size(); ++i) cands.push_back({kinds[i], tiles[i], dens[i]});
  }
  std::optional<CostTable> table = options.table;
  if (!table && a.is_cuda()) table = find_cost_table(gpu_name(a.device().index));
  return choose(m, k, n, a.dtype(), cands, table);
}

}  // namespace pit::sparse
