// kernels::relu_backward_from_output: on the CPU against its definition (grad_y where y > 0, the
// bias gradient its column sums, computed here in f64), and on CUDA (skipped without a GPU)
// against the CPU on the same inputs: f32 / bf16 / f16, ragged widths (whole 16-byte packs take
// the fused kernel, others the ReLU backward then a sum), one row, many rows (many chunks of the
// fused kernel's grid), y all zero and y all positive, 3-D inputs, no bias gradient asked for.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ops/kernels.h"
#include "tests/gpu.h"
#include "tests/ops/elementwise_refs.h"

using namespace pit;
using namespace pit::test::elementwise;

namespace {

struct Case {
  Shape shape;
  int y_kind;  // 0: about half positive, 1: all zero, 2: all positive
};
const Case kCases[] = {{{1, 8}, 0},      {{7, 40}, 0},      {{33, 45}, 0},  {{1000, 264}, 0}, {{5000, 1024}, 0},
                       {{64, 512}, 1},   {{64, 512}, 2},    {{3, 17, 96}, 0}, {{2, 4, 3}, 0}};

Tensor y_of(const Case& c, DType dt, Device dev) {
  return make_input(c.shape, [&](double v) { return c.y_kind == 1 ? 0.0 : c.y_kind == 2 ? 0.5 + v * v : v > 0 ? v : 0.0; },
                    dt, dev);
}

std::string name(const Case& c, DType dt) {
  return shape_str(c.shape) + " y kind " + std::to_string(c.y_kind) + " " + dtype_name(dt);
}

}  // namespace

TEST(ReluGrad, CpuIsItsDefinition) {
  for (const Case& c : kCases) {
    const Tensor y = y_of(c, DType::f64, Device::cpu()), g = make_normal(c.shape);
    Tensor db;
    const Tensor gx = kernels::relu_backward_from_output(g, y, &db);
    const std::vector<double> yv = values(y), gv = values(g);
    const int64_t n = c.shape.back();
    std::vector<double> want(gv.size()), want_b(static_cast<size_t>(n), 0.0);
    for (size_t i = 0; i < gv.size(); ++i) {
      want[i] = yv[i] > 0 ? gv[i] : 0.0;
      want_b[i % static_cast<size_t>(n)] += want[i];
    }
    EXPECT_TRUE(all_close(values(gx), want, 0.0, 0.0)) << name(c, DType::f64);
    ASSERT_EQ(db.shape(), Shape({n})) << name(c, DType::f64);
    EXPECT_TRUE(all_close(values(db), want_b, 1e-12, 1e-12)) << name(c, DType::f64);
  }
}

TEST(ReluGrad, CudaMatchesCpu) {
  PIT_REQUIRE_CUDA();
  for (const DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Case& c : kCases) {
      const Tensor y = y_of(c, dt, Device::cpu()), g = make_normal(c.shape, dt);
      Tensor db_cpu, db_gpu;
      const Tensor gx_cpu = kernels::relu_backward_from_output(g, y, &db_cpu);
      const Tensor gx_gpu = kernels::relu_backward_from_output(g.to(Device::cuda()), y.to(Device::cuda()), &db_gpu);
      ASSERT_TRUE(gx_gpu.is_cuda() && db_gpu.is_cuda()) << name(c, dt);
      // grad_x is grad_y's values or zero: exact.
      EXPECT_TRUE(all_close(gx_gpu, gx_cpu, 0.0, 0.0)) << name(c, dt);
      // The sums in f32 in another order, then rounded to the dtype: one rounding of the dtype
      // plus f32 error growing with the rows (5000 rows of N(0, 1): sums of about 50).
      const double rtol = dt == DType::f32 ? 1e-4 : dt == DType::bf16 ? 1e-2 : 2e-3;
      EXPECT_TRUE(all_close(db_gpu, db_cpu, rtol, dt == DType::f32 ? 1e-3 : 2e-2)) << name(c, dt) << " bias";
      // Without the bias gradient: the same grad_x.
      const Tensor gx_only = kernels::relu_backward_from_output(g.to(Device::cuda()), y.to(Device::cuda()));
      EXPECT_TRUE(all_close(gx_only, gx_cpu, 0.0, 0.0)) << name(c, dt) << " without bias";
      // The same inputs again: the same bias gradient bit for bit (the grid is fixed per shape).
      Tensor again;
      (void)kernels::relu_backward_from_output(g.to(Device::cuda()), y.to(Device::cuda()), &again);
      EXPECT_TRUE(all_close(again, db_gpu, 0.0, 0.0)) << name(c, dt) << " run to run";
      if (::testing::Test::HasFailure()) return;
    }
}

// A last dim of 0: no elements, an empty bias gradient (reshape({-1, 0}) has no answer).
TEST(ReluGrad, EmptyLastDim) {
  Tensor db;
  const Tensor gx = kernels::relu_backward_from_output(zeros({3, 0}), zeros({3, 0}), &db);
  EXPECT_EQ(gx.shape(), Shape({3, 0}));
  EXPECT_EQ(db.shape(), Shape({0}));
}

// Empty inputs on the GPU, as the CPU's EmptyLastDim: no rows ([0, 8], [2, 0, 64]: the fused
// kernel declines them, and the bias gradient is the sum over no rows, zeros of [n] as on the
// CPU), no columns ([3, 0], [0]: an empty bias gradient); with and without the bias gradient.
TEST(ReluGradCuda, EmptyInputsMatchCpu) {
  PIT_REQUIRE_CUDA();
  for (const DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Shape& shape : {Shape{0, 8}, Shape{2, 0, 64}, Shape{3, 0}, Shape{0}}) {
      const std::string what = shape_str(shape) + " " + dtype_name(dt);
      const Tensor y = zeros(shape, dt), g = zeros(shape, dt);
      const Tensor yg = y.to(Device::cuda()), gg = g.to(Device::cuda());
      Tensor db_cpu, db_gpu;
      const Tensor gx_cpu = kernels::relu_backward_from_output(g, y, &db_cpu);
      const Tensor gx_gpu = kernels::relu_backward_from_output(gg, yg, &db_gpu);
      ASSERT_TRUE(gx_gpu.defined() && db_gpu.defined()) << what;
      EXPECT_TRUE(gx_gpu.is_cuda() && db_gpu.is_cuda()) << what;
      EXPECT_EQ(gx_gpu.dtype(), dt) << what;
      EXPECT_EQ(db_gpu.dtype(), dt) << what;
      EXPECT_TRUE(all_close(gx_gpu, gx_cpu, 0.0, 0.0)) << what;
      EXPECT_TRUE(all_close(db_gpu, db_cpu, 0.0, 0.0)) << what << " bias";  // exactly zero
      const Tensor gx_only = kernels::relu_backward_from_output(gg, yg);
      EXPECT_TRUE(gx_only.is_cuda()) << what << " without bias";
      EXPECT_TRUE(all_close(gx_only, gx_cpu, 0.0, 0.0)) << what << " without bias";
    }
}

TEST(ReluGrad, ErrorsNameTheProblem) {
  const Tensor y = zeros({4, 8}), g = zeros({4, 9});
  try {
    (void)kernels::relu_backward_from_output(g, y);
    FAIL() << "no error for mismatched shapes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must have one shape"), std::string::npos) << e.what();
  }
  try {
    (void)kernels::relu_backward_from_output(zeros({4, 8}, DType::f64), y);
    FAIL() << "no error for mismatched dtypes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("share dtype"), std::string::npos) << e.what();
  }
}
