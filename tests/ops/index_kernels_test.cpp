// gather / scatter_add / index_select / index_add / cat: CPU against hand-computed values and a
// loop reference, CUDA against the CPU; out-of-range indices on CUDA: recorded by the kernel,
// thrown at the next host read (core/device_error.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <thread>

#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"

using namespace pit;

namespace {

std::vector<int64_t> random_indices(int64_t count, int64_t n, uint64_t seed) {
  std::vector<int64_t> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<int64_t>(philox_uniform(seed, 0, static_cast<uint64_t>(i)) * n);
  return out;
}

// Unit roundoff of a dtype (half an ulp at 1, doubled for safety: one ulp).
double unit(DType dt) {
  return dt == DType::bf16 ? 0x1p-8 : dt == DType::f16 ? 0x1p-11 : dt == DType::f32 ? 0x1p-24 : 0x1p-53;
}

// A CUDA index_add of src (dtype dt) against the exact sums (f64 on the CPU), element by element:
// one rounding to dt (two units of the element's own value) and the accumulation in f32 or f64 (16
// units of the summed magnitude, sum |src|, of that element). A bound shared by every element
// would let the small ones pass large relative errors where one element sums many sources.
void expect_index_add_close(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src,
                            const Tensor& got) {
  const Tensor exact_src = src.to(Device::cpu(), DType::f64), cpu_index = index.to(Device::cpu());
  const std::vector<double> g = got.to(Device::cpu(), DType::f64).to_vector<double>();
  const std::vector<double> want = kernels::index_add(shape, dim, cpu_index, exact_src).to_vector<double>();
  const std::vector<double> mag =
      kernels::index_add(shape, dim, cpu_index, kernels::unary(UnaryOp::abs, exact_src)).to_vector<double>();
  const double acc = unit(src.dtype() == DType::f64 ? DType::f64 : DType::f32);
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_LE(std::abs(g[i] - want[i]), 2 * unit(src.dtype()) * std::abs(want[i]) + 16 * acc * mag[i])
        << "element " << i << ": " << g[i] << " against " << want[i] << " (sum of |src| " << mag[i] << ")";
}

}  // namespace

TEST(IndexKernels, GatherAndScatterAddByHand) {
  const Tensor x = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor idx = from_vector(std::vector<int64_t>{2, 0, -1, 1}, {2, 2});
  EXPECT_EQ(kernels::gather(x, 1, idx).to_vector<double>(), (std::vector<double>{3, 1, 6, 5}));
  const Tensor src = from_vector(std::vector<double>{10, 20, 30, 40}, {2, 2});
  EXPECT_EQ(kernels::scatter_add({2, 3}, 1, idx, src).to_vector<double>(),
            (std::vector<double>{20, 0, 10, 0, 40, 30}));
}

TEST(IndexKernels, IndexSelectAndIndexAddByHand) {
  const Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor idx = from_vector(std::vector<int64_t>{2, 2, 0});
  EXPECT_EQ(kernels::index_select(x, 0, idx).to_vector<float>(), (std::vector<float>{5, 6, 5, 6, 1, 2}));
  EXPECT_EQ(kernels::index_select(x, 1, from_vector(std::vector<int64_t>{1})).to_vector<float>(),
            (std::vector<float>{2, 4, 6}));
  const Tensor src = ones({3, 2});
  EXPECT_EQ(kernels::index_add({3, 2}, 0, idx, src).to_vector<float>(),
            (std::vector<float>{1, 1, 0, 0, 2, 2}));
}

TEST(IndexKernels, ErrorsNameTheProblem) {
  const Tensor x = zeros({2, 3});
  EXPECT_THROW(kernels::gather(x, 1, from_vector(std::vector<int64_t>{5, 0, 0}, {1, 3})), Error);  // shape
  // Out of range on the CPU: the op, the dim, the valid range and the index element named.
  pit::test::expect_error_contains_all([&] { (void)kernels::gather(x, 1, from_vector(std::vector<int64_t>{0, 3}, {2, 1})); },
                                       {"index 3 is out of range for gather along dim 1 of size 3", "valid: [-3, 3)",
                                        "at index element 1", "fix the index"});
  pit::test::expect_error_contains_all(
      [&] { (void)kernels::index_add({4, 2}, 0, from_vector(std::vector<int64_t>{-5}), ones({1, 2})); },
      {"index -5 is out of range for index_add along dim 0 of size 4"});
  EXPECT_THROW(kernels::index_select(x, 0, from_vector(std::vector<float>{0})), Error);  // dtype
  EXPECT_THROW(kernels::cat({zeros({2, 3}), zeros({3, 3})}, 1), Error);
  // index_add: the source must match the shape in every dim but `dim` (a [2, 10] source into
  // [4, 1000] rows would be read as 1000-wide rows, past its end).
  const Tensor two = from_vector(std::vector<int64_t>{0, 3});
  EXPECT_THROW(kernels::index_add({4, 1000}, 0, two, zeros({2, 10})), Error);
  EXPECT_THROW(kernels::index_add({4, 10}, 0, two, zeros({3, 10})), Error);  // one entry per slice
  std::vector<float> want(40, 0.f);
  std::fill(want.begin(), want.begin() + 10, 1.f);
  std::fill(want.begin() + 30, want.end(), 1.f);
  EXPECT_EQ(kernels::index_add({4, 10}, 0, two, ones({2, 10})).to_vector<float>(), want);
}

TEST(IndexKernels, TheFunctionalOpsNameTheirOwnMistakes) {
  // The sum would take src's dtype, converting self in silence (and handing self a gradient in
  // src's dtype, which the engine would then refuse naming no cause).
  const Variable self(zeros({2, 3}, DType::f64), true), src(zeros({2, 3}, DType::f32), true);
  const Tensor idx = from_vector(std::vector<int64_t>{0, 1, 2, 2, 1, 0}, {2, 3});
  pit::test::expect_error_contains([&] { (void)ops::scatter_add(self, 1, idx, src); },
                                   "scatter_add: self is f64 on cpu but src is f32 on cpu");
  // Float ids into embedding: named as embedding's (not index_select's, which it calls).
  const Variable table(zeros({5, 2}), true);
  pit::test::expect_error_contains([&] { (void)ops::embedding(zeros({3}), table); },
                                   "embedding: the ids must be an i64 or i32 tensor, got f32");
}

// f16/bf16 sums of many adds into one row: summed in f32 and rounded once (as on CUDA). Rounded
// after every add, bf16 stopped at 256 and f16 at 2048.
TEST(IndexKernels, HalfPrecisionScatterAddSumsInF32) {
  for (const DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    const int64_t n = dt == DType::bf16 ? 1000 : 3000;  // sums each type holds exactly
    const double sum = static_cast<double>(n);
    const Tensor got = kernels::index_add({2, 4}, 0, zeros({n}, DType::i64), ones({n, 4}, dt));
    EXPECT_EQ(got.to(DType::f64).to_vector<double>(), (std::vector<double>{sum, sum, sum, sum, 0, 0, 0, 0}));
    const Tensor s = kernels::scatter_add({1, 2}, 1, zeros({1, n}, DType::i64), full({1, n}, 0.5, dt));
    EXPECT_EQ(s.to(DType::f64).to_vector<double>(), (std::vector<double>{sum / 2, 0}));
  }
}

TEST(IndexKernels, CatAlongEachDim) {
  const Tensor a = arange(6.0).view({2, 3}), b = arange(6.0, 12.0).view({2, 3});
  EXPECT_EQ(kernels::cat({a, b}, 0).to_vector<float>(),
            (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(kernels::cat({a, b.slice(1, 0, 1)}, 1).to_vector<float>(),
            (std::vector<float>{0, 1, 2, 6, 3, 4, 5, 9}));
}

TEST(IndexKernels, CudaMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(11);
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor x = randn({37, 129}, DType::f32).to(dt);
    const Tensor rows = from_vector(random_indices(1000, 37, 1));  // many repeats: contended adds
    const Tensor cols = from_vector(random_indices(37 * 50, 129, 2), {37, 50});
    const Device gpu = Device::cuda();
    // Gathers move values: bit-exact.
    EXPECT_EQ(kernels::index_select(x.to(gpu), 0, rows.to(gpu)).to(DType::f64).to_vector<double>(),
              kernels::index_select(x, 0, rows).to(DType::f64).to_vector<double>());
    EXPECT_EQ(kernels::gather(x.to(gpu), 1, cols.to(gpu)).to(DType::f64).to_vector<double>(),
              kernels::gather(x, 1, cols).to(DType::f64).to_vector<double>());
    // About 27 adds of N(0,1) an output here: each element against its exact sum.
    const Tensor src = randn({1000, 129}, DType::f32).to(dt);
    expect_index_add_close({37, 129}, 0, rows, src, kernels::index_add({37, 129}, 0, rows.to(gpu), src.to(gpu)));
    const Tensor gsrc = randn({37, 50}, DType::f32).to(dt);
    const auto sg = kernels::scatter_add({37, 129}, 1, cols.to(gpu), gsrc.to(gpu)).to(DType::f64).to_vector<double>();
    const auto sc = kernels::scatter_add({37, 129}, 1, cols, gsrc).to(DType::f64).to_vector<double>();
    // Each output here sums 0-3 values of about 1 (not 27): a few roundings of that output's own
    // magnitude, sum |src|.
    const double u = unit(dt);
    const auto mag = kernels::scatter_add({37, 129}, 1, cols, kernels::unary(UnaryOp::abs, gsrc.to(DType::f64)))
                         .to_vector<double>();
    for (size_t i = 0; i < sg.size(); ++i)
      ASSERT_LE(std::abs(sg[i] - sc[i]), 4 * u * mag[i]) << "element " << i << ": " << sg[i] << " against " << sc[i];
  }
}

// index_select of rows in whole 16-byte chunks (a warp a row: ops/cuda/index.cu
// gather_rows_kernel) and of rows that are not (the element kernel): bit-exact against the CPU,
// along dim 0 and along the middle dim of a 3-D tensor, rows of 1 to over 128 chunks (past one
// pass of a warp's unrolled loop), a misaligned view (element kernel), and an empty index.
TEST(IndexKernels, IndexSelectWholeRowsMatchCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(12);
  const Device gpu = Device::cuda();
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64})
    for (const int64_t inner : {8, 64, 136, 1032, 129}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " rows of " + std::to_string(inner));
      const Tensor x = randn({41, inner}, DType::f32).to(dt);
      const Tensor rows = from_vector(random_indices(300, 41, 3));
      EXPECT_EQ(kernels::index_select(x.to(gpu), 0, rows.to(gpu)).to(DType::f64).to_vector<double>(),
                kernels::index_select(x, 0, rows).to(DType::f64).to_vector<double>());
      const Tensor x3 = randn({3, 41, inner}, DType::f32).to(dt);
      EXPECT_EQ(kernels::index_select(x3.to(gpu), 1, rows.to(gpu)).to(DType::f64).to_vector<double>(),
                kernels::index_select(x3, 1, rows).to(DType::f64).to_vector<double>());
      // Starting one element in: not 16-byte aligned (x.contiguous() keeps a contiguous view).
      const Tensor flat = randn({41 * inner + 1}, DType::f32).to(dt);
      const Tensor shifted = flat.to(gpu).slice(0, 1, 41 * inner + 1).view({41, inner});
      EXPECT_EQ(kernels::index_select(shifted, 0, rows.to(gpu)).to(DType::f64).to_vector<double>(),
                kernels::index_select(flat.slice(0, 1, 41 * inner + 1).view({41, inner}), 0, rows)
                    .to(DType::f64).to_vector<double>());
      EXPECT_EQ(kernels::index_select(x.to(gpu), 0, from_vector(std::vector<int64_t>{}).to(gpu)).numel(), 0);
    }
}

// index_add on CUDA sorts the index and sums each output's sources in order: the same bits on
// every run (the embedding's backward; exact resume depends on it), and the CPU's values.
TEST(IndexKernelsCuda, IndexAddIsDeterministicAndMatchesCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  manual_seed(12);
  struct Case {
    Shape shape;
    int64_t dim, m;
  };
  // Ragged columns (300: not a multiple of the 128-column chunk), an outer dim, no index at all,
  // and more outer slices than a grid's second dimension takes (65535).
  for (const Case& c : {Case{{37, 300}, 0, 2000}, Case{{5, 37, 70}, 1, 513}, Case{{37, 9}, 0, 0},
                        Case{{70000, 5, 8}, 1, 6}}) {
    SCOPED_TRACE(shape_str(c.shape) + " dim " + std::to_string(c.dim) + " m " + std::to_string(c.m));
    // Skewed: every other entry is row 3 (a frequent token), the rest random, some negative.
    std::vector<int64_t> idx = random_indices(c.m, c.shape[c.dim], 3);
    for (int64_t i = 0; i < c.m; ++i) {
      if (i % 2 == 0) idx[i] = 3;
      else if (i % 7 == 1) idx[i] -= c.shape[c.dim];
    }
    Shape src_shape = c.shape;
    src_shape[c.dim] = c.m;
    for (DType dt : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(dtype_name(dt));
      const Tensor src = randn(src_shape, DType::f32).to(dt);
      const Tensor index = from_vector(idx, {c.m});
      const Tensor a = kernels::index_add(c.shape, c.dim, index.to(gpu), src.to(gpu)).to(DType::f64);
      const Tensor b = kernels::index_add(c.shape, c.dim, index.to(gpu), src.to(gpu)).to(DType::f64);
      EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>()) << "two runs differ";
      // About 1000 adds of N(0,1) meet in row 3, a few in the others: each against its own sum.
      expect_index_add_close(c.shape, c.dim, index, src, a);
    }
  }
}

// ---- out-of-range indices on CUDA ----------------------------------------------------------------

namespace {

constexpr int64_t kN = 777;  // the size of the indexed dim

// A host read of t: where a deferred device error is thrown.
std::vector<double> host(const Tensor& t) { return t.to(Device::cpu(), DType::f64).to_vector<double>(); }

// One index op on the GPU with a bad index `bad` at a known position of its index.
struct BadCase {
  std::string op;                                  // the name the error must carry
  int64_t position;                                // the flat position of the bad index
  std::function<Tensor(int64_t bad)> run;          // queues the op on cuda:0
  std::function<Tensor(int64_t bad)> want;         // its safe result (CPU), bad entry dropped
};

std::vector<BadCase> bad_cases() {
  const Device gpu = Device::cuda();
  manual_seed(5);
  const Tensor x = randn({kN, 4});                     // CPU
  const Tensor src = randn({3, 4});
  // gather / scatter_add index (3, 4) along dim 0, the bad one at [1, 2] (flat 6).
  const auto idx2 = [](int64_t bad) {
    return from_vector(std::vector<int64_t>{0, 5, 776, 3, 1, 2, bad, -1, 7, 8, 9, 10}, {3, 4});
  };
  const auto idx2_ok = idx2(0);  // the bad entry replaced by 0 ...
  // ... and its source element zeroed: what a scatter that skips the entry produces.
  Tensor src_skip = src.clone();
  src_skip.data<float>()[6] = 0.0f;
  // index_select / index_add index (3), the bad one at 1.
  const auto idx1 = [](int64_t bad) { return from_vector(std::vector<int64_t>{4, bad, -2}); };
  Tensor src_skip1 = src.clone();
  for (int c = 0; c < 4; ++c) src_skip1.data<float>()[4 + c] = 0.0f;

  std::vector<BadCase> cases;
  cases.push_back({"gather", 6,
                   [=](int64_t bad) { return kernels::gather(x.to(gpu), 0, idx2(bad).to(gpu)); },
                   [=](int64_t) {
                     Tensor w = kernels::gather(x, 0, idx2_ok);
                     w.data<float>()[6] = 0.0f;  // the bad element reads as 0
                     return w;
                   }});
  cases.push_back({"index_select", 1,
                   [=](int64_t bad) { return kernels::index_select(x.to(gpu), 0, idx1(bad).to(gpu)); },
                   [=](int64_t) {
                     Tensor w = kernels::index_select(x, 0, idx1(0));
                     for (int c = 0; c < 4; ++c) w.data<float>()[4 + c] = 0.0f;
                     return w;
                   }});
  cases.push_back({"scatter_add", 6,
                   [=](int64_t bad) {
                     return kernels::scatter_add({kN, 4}, 0, idx2(bad).to(gpu), src.to(gpu));
                   },
                   [=](int64_t) { return kernels::scatter_add({kN, 4}, 0, idx2_ok, src_skip); }});
  cases.push_back({"index_add", 1,
                   [=](int64_t bad) {
                     return kernels::index_add({kN, 4}, 0, idx1(bad).to(gpu), src.to(gpu));
                   },
                   [=](int64_t) { return kernels::index_add({kN, 4}, 0, idx1(0), src_skip1); }});
  // embedding looks its ids up with index_select along dim 0 of the weight (i32 ids here).
  cases.push_back({"index_select", 1,
                   [=](int64_t bad) {
                     const Tensor ids = from_vector(std::vector<int32_t>{4, static_cast<int32_t>(bad), -2}, {1, 3});
                     return ops::embedding(ids.to(gpu), Variable(x.to(gpu))).data();
                   },
                   [=](int64_t) {
                     Tensor w = kernels::index_select(x, 0, idx1(0));
                     for (int c = 0; c < 4; ++c) w.data<float>()[4 + c] = 0.0f;
                     return w.view({1, 3, 4});
                   }});
  return cases;
}

}  // namespace

TEST(IndexKernelsCuda, OutOfRangeIndexThrowsAtTheNextHostRead) {
  PIT_REQUIRE_CUDA();
  const std::vector<BadCase> cases = bad_cases();
  for (size_t c = 0; c < cases.size(); ++c) {
    const BadCase& bc = cases[c];
    for (const int64_t bad : {int64_t{1000}, int64_t{-800}, kN, -kN - 1}) {
      SCOPED_TRACE("case " + std::to_string(c) + " (" + bc.op + "), index " + std::to_string(bad));
      Tensor out;
      ASSERT_NO_THROW(out = bc.run(bad));  // queued: nothing checks, nothing waits
      pit::test::expect_error_contains_all(
          [&] { host(out); },
          {"index " + std::to_string(bad) + " is out of range for " + bc.op + " along dim 0 of size 777",
           "valid: [-777, 777)", "at index element " + std::to_string(bc.position),
           "detected on cuda:0", "fix the ind"});
      // The slot is clear again: the same data reads without an error, and shows the safe
      // behaviour (0 for a bad gather element, a skipped scatter entry).
      std::vector<double> got;
      ASSERT_NO_THROW(got = host(out));
      EXPECT_EQ(got, host(bc.want(bad)));
      EXPECT_NO_THROW(check_device_errors(Device::cuda()));
    }
  }
}

TEST(IndexKernelsCuda, OtherDimsAndStreamSynchronize) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor x = randn({3, 5}, DType::f32, gpu);
  // Along dim 1 of size 5, surfacing at a synchronisation of the stream the op ran on.
  Stream stream(gpu);
  {
    StreamGuard guard(stream);
    const Tensor idx = from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 5}, {3, 2}).to(gpu);
    (void)kernels::gather(x, 1, idx);
  }
  pit::test::expect_error_contains_all(
      [&] { stream.synchronize(); },
      {"index 5 is out of range for gather along dim 1 of size 5", "at index element 5"});
  EXPECT_NO_THROW(stream.synchronize());
}

TEST(IndexKernelsCuda, TwoBadOpsReportTheFirst) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor x = randn({kN, 2}, DType::f32, gpu);
  const Tensor a = kernels::index_select(x, 0, from_vector(std::vector<int64_t>{1000}).to(gpu));
  const Tensor b = kernels::index_add({kN, 2}, 0, from_vector(std::vector<int64_t>{-900}).to(gpu),
                                      ones({1, 2}, DType::f32, gpu));
  const std::string message = pit::test::error_message([&] { host(b); }, std::source_location::current());
  EXPECT_NE(message.find("index 1000 is out of range for index_select"), std::string::npos) << message;
  EXPECT_EQ(message.find("index_add"), std::string::npos) << message;
  // The second was dropped while the first was pending: nothing stale afterwards.
  EXPECT_NO_THROW(host(a));
  EXPECT_NO_THROW(host(b));
  // A following valid op runs and reads clean.
  const Tensor rows = from_vector(std::vector<int64_t>{0, 776, -777});
  EXPECT_EQ(host(kernels::index_select(x, 0, rows.to(gpu))),
            host(kernels::index_select(x.to(Device::cpu()), 0, rows)));
}

TEST(IndexKernelsCuda, ValidIndicesNeverTrigger) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor x = randn({kN, 3});
  // The edges of [-n, n), negative ones counting from the end.
  const Tensor idx1 = from_vector(std::vector<int64_t>{0, kN - 1, -1, -kN, 5});
  const Tensor idx2 = from_vector(std::vector<int64_t>{0, kN - 1, -1, -kN, 5, 6}, {2, 3});
  const Tensor src1 = randn({5, 3}), src2 = randn({2, 3});
  EXPECT_EQ(host(kernels::index_select(x.to(gpu), 0, idx1.to(gpu))), host(kernels::index_select(x, 0, idx1)));
  EXPECT_EQ(host(kernels::gather(x.to(gpu), 0, idx2.to(gpu))), host(kernels::gather(x, 0, idx2)));
  pit::test::expect_close(kernels::index_add({kN, 3}, 0, idx1.to(gpu), src1.to(gpu)),
               kernels::index_add({kN, 3}, 0, idx1, src1), 1e-6, 1e-6, "index_add");
  pit::test::expect_close(kernels::scatter_add({kN, 3}, 0, idx2.to(gpu), src2.to(gpu)),
               kernels::scatter_add({kN, 3}, 0, idx2, src2), 1e-6, 1e-6, "scatter_add");
  current_stream(gpu).synchronize();
  EXPECT_NO_THROW(check_device_errors(gpu));
}

TEST(IndexKernelsCuda, CheckDeviceErrorsSeesAFinishedKernelWithoutASync) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor x = randn({kN, 2}, DType::f32, gpu);
  const Tensor out = kernels::index_select(x, 0, from_vector(std::vector<int64_t>{-778}).to(gpu));
  // check_device_errors never waits: poll it until the kernel has finished and recorded.
  std::string message;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (message.empty() && std::chrono::steady_clock::now() < deadline) {
    try {
      check_device_errors(gpu);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } catch (const Error& e) {
      message = e.what();
    }
  }
  EXPECT_NE(message.find("index -778 is out of range for index_select along dim 0 of size 777"),
            std::string::npos)
      << "message: " << message;
  EXPECT_NO_THROW(host(out));
}

TEST(IndexKernelsCuda, CpuIndexForAGpuOpIsCheckedAtTheCall) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor x = randn({kN, 2}, DType::f32, gpu);
  pit::test::expect_error_contains_all(
      [&] { (void)kernels::index_select(x, 0, from_vector(std::vector<int32_t>{3, 777})); },
      {"index 777 is out of range for index_select along dim 0 of size 777", "at index element 1"});
  pit::test::expect_error_contains(
      [&] { (void)kernels::gather(x, 1, from_vector(std::vector<int64_t>(kN, -3), {kN, 1})); },
      "index -3 is out of range for gather along dim 1 of size 2");
  EXPECT_NO_THROW(current_stream(gpu).synchronize());  // nothing was queued with a bad index
}
