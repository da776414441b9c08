// gather / scatter_add / index_select / index_add / cat: CPU against hand-computed values and a
// loop reference, CUDA against the CPU.
#include <gtest/gtest.h>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

std::vector<int64_t> random_indices(int64_t count, int64_t n, uint64_t seed) {
  std::vector<int64_t> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<int64_t>(philox_uniform(seed, 0, static_cast<uint64_t>(i)) * n);
  return out;
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
  EXPECT_THROW(kernels::gather(x, 1, from_vector(std::vector<int64_t>{3, 0}, {2, 1})), Error);  // range
  EXPECT_THROW(kernels::index_select(x, 0, from_vector(std::vector<float>{0})), Error);  // dtype
  EXPECT_THROW(kernels::cat({zeros({2, 3}), zeros({3, 3})}, 1), Error);
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
    // Scatter-adds sum in a different order on the GPU (atomics): compare with a tolerance of
    // a few roundings of the accumulated magnitude (about 27 adds of N(0,1) per output here).
    const Tensor src = randn({1000, 129}, DType::f32).to(dt);
    const auto got = kernels::index_add({37, 129}, 0, rows.to(gpu), src.to(gpu)).to(DType::f64).to_vector<double>();
    const auto want = kernels::index_add({37, 129}, 0, rows, src).to(DType::f64).to_vector<double>();
    const double tol = dt == DType::bf16 ? 0.25 : dt == DType::f16 ? 0.03 : 1e-4;
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "element " << i;
    const Tensor gsrc = randn({37, 50}, DType::f32).to(dt);
    const auto sg = kernels::scatter_add({37, 129}, 1, cols.to(gpu), gsrc.to(gpu)).to(DType::f64).to_vector<double>();
    const auto sc = kernels::scatter_add({37, 129}, 1, cols, gsrc).to(DType::f64).to_vector<double>();
    for (size_t i = 0; i < sg.size(); ++i) ASSERT_NEAR(sg[i], sc[i], tol) << "element " << i;
  }
}
