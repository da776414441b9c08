// The PIT planner (ops/pit/planner.h).
#include "ops/pit/planner.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "ops/pit/detect.h"
#if PIT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace pit::sparse {
namespace {

// The built-in model, fitted to `pit-bench pit` on an NVIDIA H200 (bf16, 4096^3 and
// 16384 x 1024 x 4096, 2026-12-03; docs/BENCHMARKS.md), where the measured rows were:
//   dense      cuBLAS at about 780 TFLOP/s bf16 (f32 without TF32 ~45, f64 ~20);
//   PIT GEMM   dense time * density / efficiency(tile) + fixed(tile) per 2^24 outputs (the part
//              that does not shrink with density: launching the grid, staging indices, storing C);
//   detection  (38 + 48 * density) us per 32 MiB of A (k lists, blocks), 28 us for row sets.
// Micro-tiles the sweep did not measure (16x1, 64x1, 16x16, 64x64) take the less favourable of
// their measured neighbours. A table measured on the GPU (cost_table.h) replaces all of this.
double peak_flops(DType dtype) { return dtype == DType::f32 ? 45e12 : (dtype == DType::f64 ? 20e12 : 780e12); }
// What one kernel costs at the least, however small its problem: the built-in model adds it to
// each kernel, and a table's estimates (scaled down linearly from the large shapes measured) are
// held at it, so that a tiny problem does not pick detection plus a PIT GEMM (two launches at
// least) over one cuBLAS call.
constexpr double kLaunchUs = 5.0;
double at_least_a_launch(double us) { return std::max(us, kLaunchUs); }
constexpr double kOutputsPerUnit = 16777216.0;  // 2^24: the fixed costs below are per this many outputs
constexpr double kDetectBytesPerUnit = 33554432.0;  // 32 MiB: detection costs are per this many bytes of A

struct TileCost {
  double efficiency;  // PIT time per unit density, relative to dense
  double fixed_us;    // per 2^24 outputs
};

TileCost tile_cost(const Candidate& c) {
  const int64_t r = c.tile.rows;
  switch (c.kernel) {
    case Kernel::blocks: return {0.14, 70.0};                          // 32x32 measured: 0.14, 69 us
    case Kernel::rows: return {0.27, 110.0};                           // 1 x K measured: 0.27, 111 us
    case Kernel::k_lists:
      if (r >= 128) return {0.31, 105.0};                              // 128x1 measured: 0.31, 104 us
      if (r >= 64) return {0.17, 105.0};
      if (r >= 32) return {0.17, 60.0};                                // 32x1 measured: 0.17, 59 us
      return {0.12, 60.0};
    case Kernel::dense: break;
  }
  return {1.0, 0.0};
}

double builtin_detect_us(Kernel kernel, int64_t m, int64_t k, DType dtype, double density) {
  const double units = static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(dtype_size(dtype)) /
                       kDetectBytesPerUnit;
  return kLaunchUs + units * (kernel == Kernel::rows ? 28.0 : 38.0 + 48.0 * density);
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
  return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) / peak_flops(dtype) * 1e6 +
         kLaunchUs;
}

double builtin_pit_us(const Candidate& c, int64_t m, int64_t k, int64_t n, DType dtype) {
  const TileCost t = tile_cost(c);
  const double outputs = static_cast<double>(m) * static_cast<double>(n) / kOutputsPerUnit;
  return (builtin_dense_us(m, k, n, dtype) - kLaunchUs) * c.density / t.efficiency + kLaunchUs +
         t.fixed_us * outputs + builtin_detect_us(c.kernel, m, k, dtype, c.density);
}

Plan choose(int64_t m, int64_t k, int64_t n, DType dtype, const std::vector<Candidate>& candidates,
            const CostModel* table) {
  Plan p;
  std::optional<double> dense;
  if (table) dense = table->estimate("dense", {1, 1}, dtype, m, k, n, 1.0);
  p.dense_us = dense ? at_least_a_launch(*dense) : builtin_dense_us(m, k, n, dtype);
  p.est_us = p.dense_us;
  p.kernel = Kernel::dense;
  p.source = table && dense ? "table " + table->gpu() : "built-in model";
  p.priced.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    double us = 0.0;
    std::optional<double> gemm, det;
    if (table && dense) {
      gemm = table->estimate(kernel_name(c.kernel), c.tile, dtype, m, k, n, c.density);
      det = table->estimate(detect_kernel(c.kernel), c.tile, dtype, m, k, 0, c.density);
    }
    if (gemm) {
      us = at_least_a_launch(*gemm) + (det ? at_least_a_launch(*det) : builtin_detect_us(c.kernel, m, k, dtype, c.density));
    } else {
      us = builtin_pit_us(c, m, k, n, dtype);
    }
    p.priced.push_back({c.kernel, c.tile, c.density, us});
    if (us < p.est_us) {
      p.est_us = us;
      p.kernel = c.kernel;
      p.tile = c.tile;
      p.density = c.density;
    }
  }
  return p;
}

std::string Plan::reason() const {
  // Formatted only when asked: on every plan it was about a third of the choice's host time.
  char buf[160];
  std::snprintf(buf, sizeof buf, ": dense %g us", dense_us);
  std::string why = source + buf;
  if (sample_stride > 1) why += "; densities from 1/" + std::to_string(sample_stride) + " of A";
  if (!dense_only.empty()) why += "; dense only: " + dense_only;
  for (const Priced& c : priced) {
    std::snprintf(buf, sizeof buf, "; %s %ldx%ld at density %g: %g us", kernel_name(c.kernel),
                  static_cast<long>(c.tile.rows), static_cast<long>(c.tile.cols), c.density, c.us);
    why += buf;
  }
  return why;
}

namespace {

// Name and compute capability of GPU `index`, read once; {"unknown", ""} where it cannot be asked.
std::pair<std::string, std::string> gpu_identity(int index) {
#if PIT_WITH_CUDA
  static std::mutex mu;
  static std::map<int, std::pair<std::string, std::string>> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(index);
  if (it != known.end()) return it->second;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return {"unknown", ""};
  return known[index] = {prop.name, std::to_string(prop.major) + "." + std::to_string(prop.minor)};
#else
  (void)index;
  return {"cpu", ""};
#endif
}

}  // namespace

std::string gpu_name(int index) { return gpu_identity(index).first; }

std::string gpu_capability(int index) { return gpu_identity(index).second; }

const TableChoice& device_cost_table(int index) { return cost_table_for(gpu_name(index), gpu_capability(index)); }

namespace {
// This call's counts launched at the site; the newest back returned (this call's on its first
// call or when the candidates changed).
TileCounts site_counts(PlanSite& site, const Tensor& a, const std::vector<MicroTile>& tiles, const Tensor& mask,
                       int64_t sample_bytes) {
  if (site.tiles != tiles) {
    site.tiles = tiles;
    site.latest.reset();
  }
  const std::optional<TileCounts> back =
      planner_counts_ahead(site.counts, a, tiles, mask, sample_bytes, !site.latest.has_value());
  if (back) site.latest = back;
  return *site.latest;
}
}  // namespace

std::string pit_kernels_refuse(const Tensor& a) {
  if (a.numel() >= std::numeric_limits<int32_t>::max())
    return "A has " + std::to_string(a.numel()) + " elements, 2^31 or more (PIT indices are int32)";
  const DType dt = a.dtype();
  if (a.is_cuda() && dt != DType::f32 && dt != DType::bf16 && dt != DType::f16)
    return std::string(dtype_name(dt)) + " on CUDA (the PIT kernels take f32, bf16 and f16 there)";
  return "";
}

Plan plan_matmul(const Tensor& a, int64_t n, const PlanOptions& options, const Tensor& mask) {
  PIT_CHECK(a.defined() && a.dim() >= 1, "plan_matmul: A is undefined or a scalar");
  const int64_t k = a.size(-1), m = leading_rows(a.shape());
  const std::string refused = pit_kernels_refuse(a);
  std::vector<MicroTile> tiles;
  std::vector<Kernel> kinds;
  for (const MicroTile& t : refused.empty() ? candidate_tiles() : std::vector<MicroTile>{}) {
    const Kernel kind = t.cols == 1 ? Kernel::k_lists : Kernel::blocks;
    bool allowed = options.kernels.empty();
    for (const Kernel want : options.kernels) allowed = allowed || want == kind;
    if (!allowed) continue;
    tiles.push_back(t);
    kinds.push_back(kind);
  }
  std::vector<Candidate> cands;
  int64_t stride = 1;
  if (!tiles.empty()) {
    std::vector<double> dens(tiles.size(), options.density);
    if (options.density < 0.0) {
      // The planner's one synchronisation: a few counts back to the host (none at a site, past its
      // first call).
      const TileCounts counts = options.site != nullptr ? site_counts(*options.site, a, tiles, mask, options.sample_bytes)
                                                        : planner_counts(a, tiles, mask, options.sample_bytes);
      stride = counts.stride;
      for (size_t i = 0; i < tiles.size(); ++i)
        dens[i] = counts.looked[i] > 0 ? static_cast<double>(counts.nonzero[i]) / static_cast<double>(counts.looked[i]) : 0.0;
    }
    for (size_t i = 0; i < tiles.size(); ++i) cands.push_back({kinds[i], tiles[i], dens[i]});
  }
  const auto plan = [&](const CostModel* model) {
    Plan p = choose(m, k, n, a.dtype(), cands, model);
    p.sample_stride = stride;
    p.dense_only = refused;
    return p;
  };
  if (options.table) {
    const CostModel model(*options.table);
    return plan(&model);
  }
  return plan(a.is_cuda() ? device_cost_table(a.device().index).model : nullptr);
}

}  // namespace pit::sparse
