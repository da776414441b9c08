#pragma once
// The planner's measured cost table: one row per (GPU, kernel, micro-tile, dtype, shape,
// density) with the measured time. pit-bench pit --tune measures it on a GPU and writes it with
// write_cost_table(); it is checked in as data under ops/pit/tables/<gpu file name>.tsv, one file
// per GPU model. The file is TSV (a '#' starts a comment line); the format, with illustrative
// values:
//
//   # pit cost table v1
//   # compute capability 9.0
//   gpu	kernel	tile	dtype	m	k	n	density	us
//   NVIDIA H100 80GB HBM3	dense	-	bf16	4096	4096	4096	1	190.0
//   NVIDIA H100 80GB HBM3	k_lists	32x1	bf16	4096	4096	4096	0.1	31.5
//   NVIDIA H100 80GB HBM3	detect_k_lists	32x1	bf16	4096	4096	0	0.1	14.0
//
// kernel: dense (cuBLAS; tile "-"), k_lists, blocks, rows (the PIT GEMM for that index kind)
// or detect_<kind> (detection alone; n = 0). density: the fraction of non-zero micro-tiles.
// The "# compute capability" line (optional) lets a GPU without a table of its own plan with the
// table of one of its architecture (cost_table_for).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "ops/pit/index.h"

namespace pit::sparse {

struct CostRow {
  std::string gpu;
  std::string kernel;  // dense, k_lists, blocks, rows, detect_k_lists, detect_blocks, detect_rows
  MicroTile tile;      // 1x1 for dense ("-")
  DType dtype = DType::bf16;
  int64_t m = 0, k = 0, n = 0;
  double density = 1.0;
  double us = 0.0;
};

struct CostTable {
  std::string gpu;         // the GPU model the rows were measured on
  std::string capability;  // its compute capability ("9.0"), or empty when the file does not say
  std::vector<CostRow> rows;

  // Estimated microseconds for `kernel` with `tile` and `dtype` on an m x k x n problem at
  // `density`: among the rows of that (kernel, tile, dtype), the measured shape nearest in
  // log(m*k*n) is the shape class; time is interpolated linearly in density between the two
  // nearest measured densities (clamped at the ends) and scaled by the work ratio
  // (m*k*n, or m*k for detection). nullopt when the table has no such row.
  // (Indexes the rows on every call: the planner uses a CostModel built once.)
  std::optional<double> estimate(const std::string& kernel, MicroTile tile, DType dtype, int64_t m, int64_t k,
                                 int64_t n, double density) const;
};

// A table's rows indexed for estimates: grouped by (kernel, tile, dtype), each group's shape
// classes with their log work and their (density, us) points sorted. Built once per table; an
// estimate then costs a scan of the groups and of one group's classes (the planner prices every
// candidate on every call: the scan over all rows was most of the choice's host time).
class CostModel {
 public:
  explicit CostModel(const CostTable& table);
  // As CostTable::estimate.
  std::optional<double> estimate(const std::string& kernel, MicroTile tile, DType dtype, int64_t m, int64_t k,
                                 int64_t n, double density) const;
  const std::string& gpu() const { return gpu_; }

 private:
  struct Class {
    int64_t m, k, n;
    double log_work;
    std::vector<std::pair<double, double>> points;  // (density, us), by density
  };
  struct Group {
    std::string kernel;
    MicroTile tile;
    DType dtype;
    std::vector<Class> classes;  // in the order first seen
  };
  std::string gpu_;
  std::vector<Group> groups_;
};

// Reads a table; throws naming the file, line and field on a malformed row.
CostTable read_cost_table(const std::string& path);
// Writes `table` to `path`, rows in the given order, with the header above; atomically (a
// temporary file in the same directory, renamed over `path`), so a run stopped half-way leaves the
// old table, never a truncated one.
void write_cost_table(const std::string& path, const CostTable& table);
// "NVIDIA H100 80GB HBM3" -> "nvidia_h100_80gb_hbm3.tsv": the table's file name for a GPU.
std::string cost_table_file_name(const std::string& gpu);
// The directory of the checked-in tables: $PIT_TABLE_DIR when set, else ops/pit/tables of the
// source tree this library was built from.
std::string cost_table_dir();
// The table the planner uses on a GPU: its own, else the first (by file name) of the tables in
// cost_table_dir() measured on a GPU of the same compute capability (relative costs of the PIT
// kernels and cuBLAS carry over within an architecture far better than the built-in model's),
// else none (the built-in model). `note` says which, for a user. Decided once per (directory, GPU,
// capability); tables are read once per path and kept for the life of the process (a table written
// later by pit-bench --tune is seen by the next process).
struct TableChoice {
  const CostTable* table = nullptr;
  const CostModel* model = nullptr;
  bool own = false;  // the GPU's own table
  std::string note;
};
const TableChoice& cost_table_for(const std::string& gpu, const std::string& capability);

}  // namespace pit::sparse
