#pragma once
// The PIT planner: given C = A B with A sparse, the detected density of A per candidate
// micro-tile, the problem's shape and dtype, pick the index kind, micro-tile and kernel, or the
// dense cuBLAS path where PIT would not win. Costs come from the GPU's measured table
// (ops/pit/cost_table.h) when one is checked in, else from a built-in model fitted to the
// kernels' measured speed on an H200.
//
// Densities: plan_matmul() counts A's non-zero micro-tiles for every candidate in one launch
// (planner_counts) and waits for those few counts: this is the planner's only host
// synchronisation. On the GPU, an operand larger than PlanOptions::sample_bytes is counted on a
// sample of about that many bytes (regions spread over every band of rows and every strip of
// columns), so that planning costs little next to the GEMM it plans. A caller that knows the
// density (a pruning schedule, a routing capacity) passes it in PlanOptions and the planner then
// reads nothing back. A call site that plans every step (a layer) can keep a PlanSite, so that
// the wait goes too.
// The micro-tile cover is part of the cost: a 32x1 cover of scattered non-zeros has a much
// higher density than the element density, and is priced at that density.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/pit/cost_table.h"
#include "ops/pit/detect.h"
#include "ops/pit/index.h"

namespace pit::sparse {

enum class Kernel : uint8_t { dense, k_lists, blocks, rows };
const char* kernel_name(Kernel k);  // "dense", "k_lists", "blocks", "rows"

struct Candidate {
  Kernel kernel = Kernel::k_lists;
  MicroTile tile;
  double density = 1.0;  // fraction of non-zero micro-tiles under this cover
};

struct Plan {
  Kernel kernel = Kernel::dense;
  MicroTile tile;
  double density = 1.0;  // of the chosen cover (1 for dense)
  double est_us = 0.0;   // estimated time of the chosen path (detection included for PIT)
  double dense_us = 0.0; // estimated time of the dense path
  struct Priced {
    Kernel kernel;
    MicroTile tile;
    double density, us;
  };
  int64_t sample_stride = 1;    // densities from 1 / sample_stride of A (1: all of it, or given)
  std::string source;           // "table <GPU name>" or "built-in model"
  std::string dense_only;       // why no PIT candidate was priced (pit_kernels_refuse), if so
  std::vector<Priced> priced;   // every candidate with its estimate (detection included)
  std::string reason() const;   // one line: why, for logs and tests (formatted on demand)
};

// The candidates the planner considers for A [m, k]: K lists r x 1 (r in 16, 32, 64, 128) and
// blocks b x b (b in 16, 32, 64).
std::vector<MicroTile> candidate_tiles();

// One call site's planning state: a layer's sparse operand, planned once a step. plan_matmul
// with PlanOptions::site launches this call's counts and plans from the newest counts already
// back, normally the previous call's, so that nothing waits; only the site's first call (and a
// call whose candidates or device changed) waits for its own counts. The plan decides the speed
// only, never the result: a density one call old costs one slower call when the sparsity jumps.
// One site per operand, used by one thread at a time, its calls on one stream.
struct PlanSite {
  CountsAhead counts;
  std::vector<MicroTile> tiles;      // the candidates counted
  std::optional<TileCounts> latest;  // the newest counts back
};

struct PlanOptions {
  // Caller-given density of A's non-zero micro-tiles, used for every candidate (no read-back).
  double density = -1.0;
  // On the GPU, count A on a sample of about this many bytes when it is larger (0: count all of
  // it, exactly). 4 MiB: 1/8 of a 4096 x 4096 bf16 operand, a few microseconds.
  int64_t sample_bytes = int64_t{4} << 20;
  // Restrict the choice (e.g. backward reuses the forward's kind): empty = all candidates.
  std::vector<Kernel> kernels = {};
  // The table to use; unset: device_cost_table(the operand's GPU) (its own table, one of its
  // architecture, or the built-in model).
  std::optional<CostTable> table = {};
  // Plan ahead at this call site (see PlanSite; on CUDA, without a given density); null: count
  // this call's operand and wait for the counts.
  PlanSite* site = nullptr;
};

// Pure decision from densities (testable without a GPU): cheapest of dense and each candidate.
Plan choose(int64_t m, int64_t k, int64_t n, DType dtype, const std::vector<Candidate>& candidates,
            const CostModel* model);

// Why the PIT kernels cannot take A at all (empty: they can): 2^31 elements or more (their
// indices are int32), or a dtype they lack on A's device (f64 on CUDA). The dense path can.
std::string pit_kernels_refuse(const Tensor& a);

// Plans C = A B for A [m, k] (a's leading dims flattened) and B [k, n] on a's device; only the
// dense path where pit_kernels_refuse(a) says why.
Plan plan_matmul(const Tensor& a, int64_t n, const PlanOptions& options = {}, const Tensor& mask = {});

// The built-in model (no table), fitted to pit-bench on an H200 (ops/pit/planner.cpp): dense
// time = 2mnk / peak(dtype); PIT time = dense time * density / efficiency(tile) + a fixed cost
// per output + detection. With today's kernels (efficiency 0.12 .. 0.31) PIT wins at 4096^3 bf16
// only below about 4-6% density.
double builtin_dense_us(int64_t m, int64_t k, int64_t n, DType dtype);
double builtin_pit_us(const Candidate& c, int64_t m, int64_t k, int64_t n, DType dtype);

// The name of GPU `index` as the table is keyed ("NVIDIA H100 80GB HBM3"); "cpu" without CUDA.
std::string gpu_name(int index);
// Its compute capability ("9.0"); empty without CUDA.
std::string gpu_capability(int index);
// The cost table the planner uses on GPU `index` (cost_table_for its name and capability).
const TableChoice& device_cost_table(int index);

}  // namespace pit::sparse
