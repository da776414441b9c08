// The planner's decisions (built-in model and measured tables) and the cost-table format.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ops/pit/cost_table.h"
#include "ops/pit/pit_ops.h"
#include "ops/pit/planner.h"
#include "tests/gpu.h"
#include "tests/ops/pit/sparse_data.h"

using namespace pit;
using sparse::Kernel;

// The built-in model reproduces what pit-bench measured on an H200 at 4096^3 bf16 (PIT GEMM +
// detection against cuBLAS; docs/BENCHMARKS.md): 32x1 loses at 10% density (0.170 + 0.044 ms
// against 0.163) and wins at 1% (0.070 + 0.040 against 0.162); 128x1 likewise (0.159 + 0.040
// against 0.164; 0.111 + 0.036 against 0.164); 32x32 loses at 5% (0.134 + 0.040 against 0.162)
// and wins at 1% (0.083 + 0.037 against 0.161).
TEST(PitPlanner, BuiltinModelFollowsTheMeasuredKernels) {
  const int64_t m = 4096, k = 4096, n = 4096;
  const auto plan = [&](Kernel kernel, sparse::MicroTile tile, double d) {
    return sparse::choose(m, k, n, DType::bf16, {{kernel, tile, d}}, nullptr);
  };
  for (const double d : {1.0, 0.5, 0.1}) {
    EXPECT_EQ(plan(Kernel::k_lists, {32, 1}, d).kernel, Kernel::dense) << plan(Kernel::k_lists, {32, 1}, d).reason();
    EXPECT_EQ(plan(Kernel::k_lists, {128, 1}, d).kernel, Kernel::dense) << plan(Kernel::k_lists, {128, 1}, d).reason();
  }
  EXPECT_EQ(plan(Kernel::blocks, {32, 32}, 0.05).kernel, Kernel::dense) << plan(Kernel::blocks, {32, 32}, 0.05).reason();
  EXPECT_EQ(plan(Kernel::k_lists, {32, 1}, 0.01).kernel, Kernel::k_lists) << plan(Kernel::k_lists, {32, 1}, 0.01).reason();
  EXPECT_EQ(plan(Kernel::k_lists, {128, 1}, 0.01).kernel, Kernel::k_lists) << plan(Kernel::k_lists, {128, 1}, 0.01).reason();
  const sparse::Plan low = plan(Kernel::blocks, {32, 32}, 0.01);
  EXPECT_EQ(low.kernel, Kernel::blocks) << low.reason();
  EXPECT_LT(low.est_us, low.dense_us);
  EXPECT_NE(low.reason().find("built-in model"), std::string::npos);
}

TEST(PitPlanner, CoverLossIsPartOfTheCost) {
  // 1% of the elements non-zero, scattered: a 32x1 cover keeps ~28% of its micro-tiles, so PIT
  // would not win. The same 1% as whole 32x1 micro-tiles: PIT wins.
  const int64_t s = 4096;
  const Tensor scattered = test::sparse_tensor(s, s, 1, 1, 0.01, 1, DType::bf16, Device::cpu(), 0.0);
  const Tensor tiled = test::sparse_tensor(s, s, 32, 1, 0.01, 2, DType::bf16, Device::cpu(), 0.0);
  const sparse::Plan ps = sparse::plan_matmul(scattered, s, {.kernels = {Kernel::k_lists}});
  const sparse::Plan pt = sparse::plan_matmul(tiled, s, {.kernels = {Kernel::k_lists}});
  EXPECT_EQ(ps.kernel, Kernel::dense) << ps.reason();
  EXPECT_EQ(pt.kernel, Kernel::k_lists) << pt.reason();
  EXPECT_NEAR(pt.density, 0.01, 0.005) << pt.reason();
  // A caller-given density skips the count (and wins over what the tensor holds).
  const sparse::Plan given = sparse::plan_matmul(scattered, s, {.density = 0.005, .kernels = {Kernel::k_lists}});
  EXPECT_EQ(given.kernel, Kernel::k_lists) << given.reason();
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
  const sparse::CostModel model(r);
  EXPECT_EQ(model.gpu(), "Test GPU 1");
  const sparse::Plan p = sparse::choose(1024, 1024, 1024, DType::bf16, {{Kernel::k_lists, {32, 1}, 0.1}}, &model);
  EXPECT_EQ(p.kernel, Kernel::k_lists) << p.reason();
  EXPECT_NEAR(p.est_us, 25.0, 1e-9);
  EXPECT_NE(p.reason().find("table Test GPU 1"), std::string::npos) << p.reason();
  // The GPU's own table through PIT_TABLE_DIR (cost_table_for, as the planner looks it up).
  setenv("PIT_TABLE_DIR", dir.c_str(), 1);
  const sparse::CostTable* found = sparse::cost_table_for("Test GPU 1", "").table;
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->rows.size(), 4u);
  EXPECT_EQ(sparse::cost_table_for("Test GPU 1", "").table, found);  // read once, then cached
  const sparse::CostModel* found_model = sparse::cost_table_for("Test GPU 1", "").model;
  ASSERT_NE(found_model, nullptr);
  EXPECT_NEAR(*found_model->estimate("k_lists", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.3), 50.0, 1e-9);
  EXPECT_EQ(sparse::cost_table_for("Other GPU", "").table, nullptr);
  unsetenv("PIT_TABLE_DIR");
}

// A table's rows are measured at large shapes and scaled down linearly; a kernel still costs a
// launch however small its problem. A PIT GEMM ten times faster than dense at 1024^3 wins there
// and at 512^3, but not at 128^3, where detection plus the GEMM (two launches) cost more than one
// dense call, whatever the scaled times say.
TEST(PitPlanner, EveryKernelCostsALaunchAtLeast) {
  sparse::CostTable t;
  t.gpu = "Test GPU 2";
  t.rows.push_back({"", "dense", {1, 1}, DType::bf16, 1024, 1024, 1024, 1.0, 100.0});
  t.rows.push_back({"", "k_lists", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.1, 10.0});
  t.rows.push_back({"", "detect_k_lists", {32, 1}, DType::bf16, 1024, 1024, 0, 0.1, 1.0});
  const sparse::CostModel model(t);
  const auto plan = [&](int64_t s) {
    return sparse::choose(s, s, s, DType::bf16, {{Kernel::k_lists, {32, 1}, 0.1}}, &model);
  };
  for (const int64_t s : {1024, 512}) EXPECT_EQ(plan(s).kernel, Kernel::k_lists) << s << ": " << plan(s).reason();
  const sparse::Plan tiny = plan(128);  // scaled: dense 0.2 us, the GEMM 0.02 + detection 0.016
  EXPECT_EQ(tiny.kernel, Kernel::dense) << tiny.reason();
  EXPECT_GE(tiny.dense_us, 1.0) << tiny.reason();
  ASSERT_EQ(tiny.priced.size(), 1u);
  EXPECT_GE(tiny.priced[0].us, 2 * tiny.dense_us) << tiny.reason();
}

// The model's choices, on rows given out of order: the nearest shape class in log(m k n) (ties to
// the class seen first), linear interpolation in density between the neighbouring points,
// clamping at the ends (the first of equal points), scaling by the work ratio.
TEST(PitPlanner, CostModelShapeClassesAndInterpolation) {
  sparse::CostTable t;
  t.gpu = "G";
  const auto row = [&](int64_t m, double d, double us) {
    t.rows.push_back({"G", "k_lists", {32, 1}, DType::bf16, m, 1024, 1024, d, us});
  };
  row(4096, 1.0, 800.0);
  row(1024, 0.5, 60.0);
  row(4096, 0.1, 100.0);
  row(1024, 0.1, 20.0);
  row(1024, 1.0, 90.0);
  row(1024, 1.0, 95.0);  // a second point at the top density: the first one counts
  t.rows.push_back({"G", "k_lists", {32, 1}, DType::f16, 1024, 1024, 1024, 0.5, 7.0});  // other dtype
  const sparse::CostModel model(t);
  const auto est = [&](int64_t m, double d) { return *model.estimate("k_lists", {32, 1}, DType::bf16, m, 1024, 1024, d); };
  EXPECT_NEAR(est(1024, 0.1), 20.0, 1e-9);
  EXPECT_NEAR(est(1024, 0.3), 40.0, 1e-9);   // between 0.1 and 0.5
  EXPECT_NEAR(est(1024, 0.75), 75.0, 1e-9);  // between 0.5 and 1.0 (90)
  EXPECT_NEAR(est(1024, 0.05), 20.0, 1e-9);  // clamped below
  EXPECT_NEAR(est(1024, 1.0), 90.0, 1e-9);   // clamped above, the first point at 1.0
  EXPECT_NEAR(est(512, 0.1), 10.0, 1e-9);    // class 1024 (nearer than 4096), half the work
  EXPECT_NEAR(est(4096, 0.55), 450.0, 1e-9); // class 4096: 100 + 0.5 * 700
  EXPECT_NEAR(est(3000, 0.1), 100.0 * 3000.0 / 4096.0, 1e-9);  // nearer 4096 in log work
  EXPECT_NEAR(*model.estimate("k_lists", {32, 1}, DType::f16, 1024, 1024, 1024, 0.9), 7.0, 1e-9);
  EXPECT_FALSE(model.estimate("k_lists", {64, 1}, DType::bf16, 1024, 1024, 1024, 0.5).has_value());
  EXPECT_FALSE(model.estimate("blocks", {32, 1}, DType::bf16, 1024, 1024, 1024, 0.5).has_value());
  // CostTable::estimate gives the same figures: class 4096, 100 + (0.2 / 0.9) 700, scaled.
  EXPECT_NEAR(*t.estimate("k_lists", {32, 1}, DType::bf16, 3000, 1024, 1024, 0.3),
              (100.0 + 0.2 / 0.9 * 700.0) * 3000.0 / 4096.0, 1e-9);
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
  // A dtype or a kernel it does not know: named with the line (a misspelt kernel used to be
  // ignored, its rows never matching, and the GPU planned with the built-in model unawares).
  for (const auto& [row, want] : {std::pair<std::string, std::string>{"G\tk_lists\t32x1\tbf61\t1\t1\t1\t0.5\t1", ":2: unknown dtype 'bf61'"},
                                  {"G\tk_list\t32x1\tbf16\t1\t1\t1\t0.5\t1", ":2: unknown kernel 'k_list'"}}) {
    {
      std::ofstream out(path);
      out << "gpu\tkernel\ttile\tdtype\tm\tk\tn\tdensity\tus\n" << row << "\n";
    }
    try {
      sparse::read_cost_table(path);
      ADD_FAILURE() << "no throw for " << row;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

// Every checked-in table (ops/pit/tables) parses, is filed under its GPU's name (the planner looks
// it up by that name), and says what a measured table must: dense bf16 at 4096^3 has a time, and
// 32x1 K lists at 1% density beat it.
TEST(PitPlanner, CheckedInTablesParseAndAreNamedForTheirGpu) {
  int tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(sparse::cost_table_dir())) {
    if (entry.path().extension() != ".tsv") continue;
    ++tables;
    const std::string file = entry.path().filename().string();
    const sparse::CostTable t = sparse::read_cost_table(entry.path().string());
    EXPECT_EQ(sparse::cost_table_file_name(t.gpu), file) << file << " holds the table of " << t.gpu;
    EXPECT_FALSE(t.capability.empty()) << file << " lacks its '# compute capability' line";
    const auto dense = t.estimate("dense", {1, 1}, DType::bf16, 4096, 4096, 4096, 1.0);
    const auto lists = t.estimate("k_lists", {32, 1}, DType::bf16, 4096, 4096, 4096, 0.01);
    ASSERT_TRUE(dense.has_value() && lists.has_value()) << file;
    EXPECT_GT(*dense, 0.0) << file;
    EXPECT_LT(*lists, *dense) << file;
  }
  EXPECT_GE(tables, 2) << "expected the H100 and H200 tables in " << sparse::cost_table_dir();
}

// A GPU without a table of its own plans with a table of its compute capability (the first by file
// name), else with the built-in model; the note names what was chosen and how to measure this GPU.
// Tables are written atomically: no temporary file is left, and the capability line round-trips.
TEST(PitPlanner, GpusWithoutATablePlanWithOneOfTheirArchitecture) {
  const std::string dir = (std::filesystem::temp_directory_path() / "pit_planner_fallback").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto table = [](const std::string& gpu, const std::string& cap, double dense_us) {
    sparse::CostTable t;
    t.gpu = gpu;
    t.capability = cap;
    t.rows.push_back({"", "dense", {1, 1}, DType::bf16, 1024, 1024, 1024, 1.0, dense_us});
    return t;
  };
  sparse::write_cost_table(dir + "/" + sparse::cost_table_file_name("Big GPU 80GB"), table("Big GPU 80GB", "9.0", 100));
  sparse::write_cost_table(dir + "/" + sparse::cost_table_file_name("Zed GPU"), table("Zed GPU", "9.0", 300));
  sparse::write_cost_table(dir + "/" + sparse::cost_table_file_name("Old GPU"), table("Old GPU", "8.0", 200));
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().extension(), ".tsv") << "left behind: " << e.path();  // no temporary file
  EXPECT_EQ(sparse::read_cost_table(dir + "/old_gpu.tsv").capability, "8.0");
  std::ofstream(dir + "/aaa_broken.tsv") << "# compute capability 9.0\nnot a header\n";  // first by name
  std::ofstream(dir + "/" + sparse::cost_table_file_name("Torn GPU")) << "# compute capability 9.0\n<<<<<<< HEAD\n";

  setenv("PIT_TABLE_DIR", dir.c_str(), 1);
  const sparse::TableChoice& own = sparse::cost_table_for("Old GPU", "8.0");
  const sparse::TableChoice& kin = sparse::cost_table_for("Big GPU PCIe", "9.0");
  const sparse::TableChoice& none = sparse::cost_table_for("New GPU", "10.0");
  const sparse::TableChoice& unknown = sparse::cost_table_for("Mystery GPU", "");
  // A GPU's own table that does not read (a merge conflict) is named and passed over, not thrown
  // at every pit_matmul.
  const sparse::TableChoice* torn = nullptr;
  EXPECT_NO_THROW(torn = &sparse::cost_table_for("Torn GPU", "9.0"));
  unsetenv("PIT_TABLE_DIR");

  ASSERT_NE(own.model, nullptr);
  EXPECT_TRUE(own.own);
  EXPECT_EQ(own.table->gpu, "Old GPU");
  ASSERT_NE(kin.model, nullptr);
  EXPECT_FALSE(kin.own);
  EXPECT_EQ(kin.table->gpu, "Big GPU 80GB");  // the first 9.0 table by file name
  EXPECT_NEAR(*kin.model->estimate("dense", {1, 1}, DType::bf16, 1024, 1024, 1024, 1.0), 100.0, 1e-9);
  EXPECT_NE(kin.note.find("no cost table for Big GPU PCIe; using big_gpu_80gb.tsv"), std::string::npos) << kin.note;
  EXPECT_NE(kin.note.find("pit-bench pit --tune " + dir + "/big_gpu_pcie.tsv"), std::string::npos) << kin.note;
  EXPECT_NE(kin.note.find("skipped aaa_broken.tsv"), std::string::npos) << kin.note;  // named, not fatal
  EXPECT_EQ(none.model, nullptr);
  EXPECT_NE(none.note.find("built-in model"), std::string::npos) << none.note;
  EXPECT_EQ(unknown.model, nullptr);
  EXPECT_NE(unknown.note.find("compute capability unknown"), std::string::npos) << unknown.note;
  ASSERT_NE(torn, nullptr);
  EXPECT_FALSE(torn->own);
  ASSERT_NE(torn->model, nullptr);
  EXPECT_EQ(torn->table->gpu, "Big GPU 80GB");
  EXPECT_NE(torn->note.find("skipped torn_gpu.tsv (this GPU's own)"), std::string::npos) << torn->note;
}

// A the PIT kernels cannot take at all gets the dense plan, with the reason, whatever its density
// says: 2^31 elements or more (their indices are int32), f64 on CUDA. pit_matmul then runs dense
// instead of throwing in detection.
TEST(PitPlanner, OperandsThePitKernelsCannotTakePlanDense) {
  const Tensor huge = zeros({1, 1}).expand({65536, 32768});  // 2^31 elements, none stored
  EXPECT_NE(sparse::pit_kernels_refuse(huge).find("2^31 or more"), std::string::npos);
  const sparse::Plan p = sparse::plan_matmul(huge, 64, {.density = 0.01});
  EXPECT_EQ(p.kernel, sparse::Kernel::dense);
  EXPECT_TRUE(p.priced.empty());
  EXPECT_NE(p.reason().find("dense only: A has 2147483648 elements"), std::string::npos) << p.reason();
  EXPECT_EQ(sparse::pit_kernels_refuse(zeros({64, 64}, DType::f64)), "");  // f64 runs on the CPU
}

// f64, which the PIT kernels lack on CUDA, plans dense there and runs.
TEST(PitPlannerCuda, F64OnCudaPlansDense) {
  PIT_REQUIRE_CUDA();
  const Tensor g = zeros({4096, 4096}, DType::f64, Device::cuda());
  EXPECT_NE(sparse::pit_kernels_refuse(g).find("f64 on CUDA"), std::string::npos);
  const sparse::Plan q = sparse::plan_matmul(g, 4096, {.density = 0.01});
  EXPECT_EQ(q.kernel, sparse::Kernel::dense) << q.reason();
  const Variable y = ops::pit_matmul(Variable(g), Variable(ones({4096, 8}, DType::f64, Device::cuda())), {.density = 0.01});
  EXPECT_EQ(y.shape(), Shape({4096, 8}));
}
