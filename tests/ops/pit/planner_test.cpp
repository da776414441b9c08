// The planner's decisions (built-in model and measured tables) and the cost-table format.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ops/pit/cost_table.h"
#include "ops/pit/planner.h"
#include "tests/ops/pit/sparse_data.h"

using namespace pit;
using sparse::Kernel;

TEST(PitPlanner, BuiltinModelIsConservative) {
  const int64_t m = 4096, k = 4096, n = 4096;
  const auto plan = [&](double d) {
    return sparse::choose(m, k, n, DType::bf16, {{Kernel::k_lists, {32, 1}, d}, {Kernel::blocks, {32, 32}, d}}, std::nullopt);
  };
  EXPECT_EQ(plan(1.0).kernel, Kernel::dense) << plan(1.0).reason;
  EXPECT_EQ(plan(0.5).kernel, Kernel::dense) << plan(0.5).reason;
  const sparse::Plan low = plan(0.02);
  EXPECT_NE(low.kernel, Kernel::dense) << low.reason;
  EXPECT_LT(low.est_us, low.dense_us);
  EXPECT_NE(low.reason.find("built-in model"), std::string::npos);
}

TEST(PitPlanner, CoverLossIsPartOfTheCost) {
  // 5% of the elements non-zero, scattered: a 32x1 cover keeps ~80% of its micro-tiles, so PIT
  // would not win. The same 5% as whole 32x1 micro-tiles: PIT wins.
  const Tensor scattered = test::sparse_tensor(2048, 2048, 1, 1, 0.05, 1, DType::bf16, Device::cpu(), 0.0);
  const Tensor tiled = test::sparse_tensor(2048, 2048, 32, 1, 0.05, 2, DType::bf16, Device::cpu(), 0.0);
  const sparse::Plan ps = sparse::plan_matmul(scattered, 2048, {.kernels = {Kernel::k_lists}});
  const sparse::Plan pt = sparse::plan_matmul(tiled, 2048, {.kernels = {Kernel::k_lists}});
  EXPECT_EQ(ps.kernel, Kernel::dense) << ps.reason;
  EXPECT_EQ(pt.kernel, Kernel::k_lists) << pt.reason;
  EXPECT_NEAR(pt.density, 0.05, 0.02) << pt.reason;
  // A caller-given density skips the count (and wins over what the tensor holds).
  const sparse::Plan given = sparse::plan_matmul(scattered, 2048, {.density = 0.01, .kernels = {Kernel::k_lists}});
  EXPECT_EQ(given.kernel, Kernel::k_lists) << given.reason;
}

TEST(PitPlanner, TableRoundTripAndInterpolation) {
  sparse::CostTable t;
  t.gpu = "Test GPU 1";
  t.rows.push_back({"", "dense", {1, 1}, DType::bf16, 1024, 1024, 1024, 1.0, 100.0});
  t.rows.push_back({"", "k_lists", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.1, 20.0});
  t.rows.push_back({"", "k_lists", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.5, 80.0});
  t.rows.push_back({"", "detect_k_lists", {32, 1}, DType::bf16, 1024, 1024, 0, 0.1, 5.0});
  const std::string dir = (std::filesystem::temp_directory_path() / "pit_planner_test").string();
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + sparse::cost_table_file_name(t.gpu);
  EXPECT_EQ(sparse::cost_table_file_name("NVIDIA H100 80GB HBM3"), "nvidia_h100_80gb_hbm3.tsv");
  sparse::write_cost_table(path, t);
  const sparse::CostTable r = sparse::read_cost_table(path);
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.gpu, "Test GPU 1");
  EXPECT_EQ(r.rows[1].tile, (sparse::MicroTile{32, 1}));
  // Midpoint of the two measured densities; twice the work (m doubled) -> twice the time.
  EXPECT_NEAR(*r.estimate("k_lists", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.3), 50.0, 1e-9);
  EXPECT_NEAR(*r.estimate("k_lists", {32, 1}, DType::bf16, 2048, 1024, 1024, 0.3), 100.0, 1e-9);
  EXPECT_NEAR(*r.estimate("k_lists", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.9), 80.0, 1e-9);  // clamped
  EXPECT_FALSE(r.estimate("blocks", {32, 32}, DType::bf16, 1024, 1024, 1024, 0.3).has_value());
  // The planner uses it: at 0.1, 20 + 5 us beats 100 us dense; at 0.5, 80 + 5 beats 100 too; a
  // table with a slow PIT row would not.
  const sparse::Plan p = sparse::choose(1024, 1024, 1024, DType::bf16, {{Kernel::k_lists, {32, 1}, 0.1}}, r);
  EXPECT_EQ(p.kernel, Kernel::k_lists) << p.reason;
  EXPECT_NEAR(p.est_us, 25.0, 1e-9);
  EXPECT_NE(p.reason.find("table Test GPU 1"), std::string::npos) << p.reason;
  // find_cost_table through PIT_TABLE_DIR.
  setenv("PIT_TABLE_DIR", dir.c_str(), 1);
  EXPECT_TRUE(sparse::find_cost_table("Test GPU 1").has_value());
  EXPECT_FALSE(sparse::find_cost_table("Other GPU").has_value());
  unsetenv("PIT_TABLE_DIR");
}

TEST(PitPlanner, MalformedTableNamesTheLine) {
  const std::string path = (std::filesystem::temp_directory_path() / "pit_bad_table.tsv").string();
  {
    std::ofstream out(path);
    out << "gpu\tkernel\ttile\tdtype\tm\tk\tn\tdensity\tus\nG\tk_lists\t32y1\tbf16\t1\t1\t1\t0.5\t1\n";
  }
  try {
    sparse::read_cost_table(path);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(":2: micro-tile '32y1'"), std::string::npos) << e.what();
  }
}
