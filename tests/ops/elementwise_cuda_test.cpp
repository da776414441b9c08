// The elementwise CUDA kernels (skipped without a GPU): every op and dtype against the CPU
// kernels on the same inputs; broadcasting, ragged sizes, misaligned and non-contiguous views,
// add_scaled_, the current stream, zero size and mixed devices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/gpu.h"
#include "tests/ops/elementwise_refs.h"

#if PIT_WITH_CUDA
#include <cuda_runtime.h>
#endif

using namespace pit;
using namespace pit::test::elementwise;

// ---- CUDA: against the CPU kernels on the same inputs -----------------------------------------
//
// Tolerances (GPU vs CPU). Both sides read identical inputs, compute in f32 (f64 for f64) with
// the same formulas and round once, so they differ only where the device math functions (expf,
// tanhf, erff, powf, ...) differ from the host's by a few ulp or where nvcc contracts a*b + c
// into an fma:
//   f32:  rtol 1e-5,  atol 2e-6  (a few f32 ulp; atol for cancellation near zeros of a result)
//   f64:  rtol 1e-12, atol 1e-13
//   bf16: rtol 1e-2,  atol 1e-3  (one bf16 ulp, 2^-8 = 3.9e-3, when the f32 values straddle a
//                                 rounding boundary)
//   f16:  rtol 2e-3,  atol 1e-4  (one f16 ulp, 2^-10 = 9.8e-4, likewise)

namespace {

struct Tol {
  double rtol, atol;
};
Tol gpu_tol(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-12, 1e-13};
    case DType::bf16: return {1e-2, 1e-3};
    case DType::f16: return {2e-3, 1e-4};
    default: return {1e-5, 2e-6};
  }
}

const std::vector<DType> kGpuDtypes = {DType::f32, DType::bf16, DType::f16, DType::f64};

::testing::AssertionResult gpu_matches_cpu(const Tensor& gpu, const Tensor& cpu) {
  if (!gpu.is_cuda()) return ::testing::AssertionFailure() << "the result is on " << gpu.device();
  if (gpu.dtype() != cpu.dtype())
    return ::testing::AssertionFailure() << "dtype " << gpu.dtype() << ", want " << cpu.dtype();
  const Tol t = gpu_tol(gpu.dtype());
  return all_close(gpu, cpu, t.rtol, t.atol);
}

const Device kCpu = Device::cpu();

}  // namespace

TEST(ElementwiseCuda, UnaryMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(20);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes)
    for (UnaryOp op : kUnaryOps) {
      const double alpha = alpha_for(op);
      // 129 * 67 = 8643 elements: not a multiple of any vector width.
      const Tensor x = unary_input(op, {129, 67}, dt, gpu);
      EXPECT_TRUE(gpu_matches_cpu(kernels::unary(op, x, alpha), kernels::unary(op, x.to(kCpu), alpha)))
          << name(op) << " " << dt;
    }
}

TEST(ElementwiseCuda, NanPropagatesThroughReluMaximumAndMinimum) {
  PIT_REQUIRE_CUDA();
  expect_nan_propagates(Device::cuda(), {DType::f64, DType::f32, DType::bf16, DType::f16});
}

TEST(ElementwiseCuda, UnaryBackwardMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(21);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes)
    for (UnaryOp op : kUnaryOps) {
      const double alpha = alpha_for(op);
      const Tensor x = unary_input(op, {129, 67}, dt, gpu);
      const Tensor y = kernels::unary(op, x, alpha);
      const Tensor gy = make_normal({129, 67}, dt, gpu);
      EXPECT_TRUE(gpu_matches_cpu(kernels::unary_backward(op, gy, x, y, alpha),
                                  kernels::unary_backward(op, gy.to(kCpu), x.to(kCpu), y.to(kCpu), alpha)))
          << name(op) << " " << dt;
    }
}

TEST(ElementwiseCuda, BinaryMatchesCpuWithBroadcasting) {
  PIT_REQUIRE_CUDA();
  manual_seed(22);
  const Device gpu = Device::cuda();
  std::vector<BroadcastCase> cases = kBroadcastCases;
  cases.push_back({{129, 67}, {129, 67}, {129, 67}});
  cases.push_back({{1000003}, {}, {1000003}});  // a broadcast scalar on the dense path
  cases.push_back({{}, {1000003}, {1000003}});
  for (DType dt : kGpuDtypes)
    for (BinaryOp op : kBinaryOps)
      for (const BroadcastCase& c : cases) {
        const Tensor a = make_input(c.a, [op](double v) { return binary_domain_a(op, v); }, dt, gpu);
        const Tensor b = make_input(c.b, [op](double v) { return binary_domain_b(op, v); }, dt, gpu);
        const Tensor z = kernels::binary(op, a, b);
        ASSERT_EQ(z.shape(), c.out);
        EXPECT_TRUE(gpu_matches_cpu(z, kernels::binary(op, a.to(kCpu), b.to(kCpu))))
            << name(op) << " " << dt << " " << shape_str(c.a) << " x " << shape_str(c.b);
      }
  // Rows that cannot take vector accesses: a bias starting at element 1 (misaligned), and rows
  // 33 elements apart (row starts misaligned).
  for (DType dt : kGpuDtypes) {
    const Tensor m = make_normal({64, 32}, dt, gpu), bias = make_normal({33}, dt, gpu).slice(0, 1, 33);
    const Tensor rows33 = make_normal({64, 33}, dt, gpu).slice(1, 0, 32);
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::add, m, bias),
                                kernels::binary(BinaryOp::add, m.to(kCpu), bias.to(kCpu)))) << dt;
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::mul, rows33, bias),
                                kernels::binary(BinaryOp::mul, rows33.to(kCpu), bias.to(kCpu)))) << dt;
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::sub, bias, rows33),
                                kernels::binary(BinaryOp::sub, bias.to(kCpu), rows33.to(kCpu)))) << dt;
  }
}

TEST(ElementwiseCuda, RaggedSizesAndMisalignedViews) {
  PIT_REQUIRE_CUDA();
  manual_seed(23);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes)
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
      const Tensor pos = make_input({n + 1}, [](double v) { return 0.1 + std::fabs(v); }, dt, gpu);
      const Tensor nrm = make_normal({n + 1}, dt, gpu);
      // Starting at element 1: the data pointer is 2, 4 or 8 bytes past a 16-byte boundary.
      for (int64_t start : {0, 1}) {
        const Tensor x = pos.slice(0, start, start + n), g = nrm.slice(0, start, start + n);
        const Tensor xa = pos.slice(0, 0, n);  // aligned partner for mixed alignment
        const std::string where = std::string(dtype_name(dt)) + " n=" + std::to_string(n) +
                                  " start=" + std::to_string(start);
        for (UnaryOp op : {UnaryOp::sigmoid, UnaryOp::gelu_tanh, UnaryOp::pow_scalar}) {
          const double alpha = alpha_for(op);
          const Tensor y = kernels::unary(op, x, alpha);
          EXPECT_TRUE(gpu_matches_cpu(y, kernels::unary(op, x.to(kCpu), alpha))) << name(op) << " " << where;
          EXPECT_TRUE(gpu_matches_cpu(kernels::unary_backward(op, g, x, y, alpha),
                                      kernels::unary_backward(op, g.to(kCpu), x.to(kCpu), y.to(kCpu), alpha)))
              << name(op) << " backward " << where;
        }
        // x and xa are positive (pow's base and div's divisor); g is normal.
        for (BinaryOp op : {BinaryOp::div, BinaryOp::pow, BinaryOp::maximum}) {
          const Tensor& first = op == BinaryOp::pow ? xa : g;
          EXPECT_TRUE(gpu_matches_cpu(kernels::binary(op, first, x),
                                      kernels::binary(op, first.to(kCpu), x.to(kCpu))))
              << name(op) << " " << where;
          EXPECT_TRUE(gpu_matches_cpu(kernels::binary(op, x, xa), kernels::binary(op, x.to(kCpu), xa.to(kCpu))))
              << name(op) << " (x first, aligned b) " << where;
        }
      }
    }
}

TEST(ElementwiseCuda, NonContiguousInputsMatchCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(24);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes) {
    const std::vector<Tensor> views = views_5x7(dt, gpu);
    for (const Tensor& v : views) {
      const Tensor vc = v.to(kCpu);
      for (UnaryOp op : {UnaryOp::exp, UnaryOp::gelu_erf, UnaryOp::mul_scalar})
        EXPECT_TRUE(gpu_matches_cpu(kernels::unary(op, v, alpha_for(op)), kernels::unary(op, vc, alpha_for(op))))
            << name(op) << " " << dt << " strides " << shape_str(v.strides());
      for (const Tensor& w : views)
        EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::sub, v, w),
                                    kernels::binary(BinaryOp::sub, vc, w.to(kCpu))))
            << dt << " strides " << shape_str(v.strides()) << " and " << shape_str(w.strides());
      const Tensor y = kernels::unary(UnaryOp::tanh, v);
      EXPECT_TRUE(gpu_matches_cpu(kernels::unary_backward(UnaryOp::tanh, v, v, y),
                                  kernels::unary_backward(UnaryOp::tanh, vc, vc, y.to(kCpu))))
          << dt << " strides " << shape_str(v.strides());
    }
    const Tensor a = make_normal({4, 6, 8}, dt, gpu).slice(2, 0, 5);
    const Tensor b = make_normal({6, 5, 4}, dt, gpu).permute({2, 0, 1});
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::mul, a, b),
                                kernels::binary(BinaryOp::mul, a.to(kCpu), b.to(kCpu)))) << dt;
    const Tensor big = make_normal({300, 401}, dt, gpu).t(), row = make_normal({300}, dt, gpu);
    EXPECT_TRUE(gpu_matches_cpu(kernels::binary(BinaryOp::add, big, row),
                                kernels::binary(BinaryOp::add, big.to(kCpu), row.to(kCpu)))) << dt;
    const Tensor c5 = make_normal({2, 3, 2, 3, 2}, dt, gpu);
    const Tensor c = nine_dim_view(c5), c_cpu = nine_dim_view(c5.to(kCpu));
    EXPECT_TRUE(gpu_matches_cpu(kernels::unary(UnaryOp::neg, c).view({2, 3, 2, 3, 2}),
                                kernels::unary(UnaryOp::neg, c_cpu).view({2, 3, 2, 3, 2}))) << dt;
  }
}

TEST(ElementwiseCuda, AddScaledMatchesCpuAndUpdatesOnlyTheView) {
  PIT_REQUIRE_CUDA();
  manual_seed(25);
  const Device gpu = Device::cuda();
  for (DType dt : kGpuDtypes) {
    // A strided view: the other columns must keep their bits.
    Tensor dst = make_normal({6, 10}, dt, gpu);
    Tensor dst_cpu = dst.to(kCpu).clone();
    const std::vector<double> before = values(dst);
    const Tensor b = make_normal({6, 3}, dt, gpu);
    Tensor view = dst.slice(1, 2, 8, 2);
    Tensor view_cpu = dst_cpu.slice(1, 2, 8, 2);
    EXPECT_EQ(&kernels::add_scaled_(view, b, -0.5), &view);
    kernels::add_scaled_(view_cpu, b.to(kCpu), -0.5);
    EXPECT_TRUE(gpu_matches_cpu(dst, dst_cpu)) << dt;
    const std::vector<double> after = values(dst);
    for (size_t k = 0; k < after.size(); ++k) {
      const int64_t j = static_cast<int64_t>(k % 10);
      if (!(j >= 2 && j < 8 && j % 2 == 0)) {
        EXPECT_EQ(after[k], before[k]) << dt << ": element " << k << " outside the view changed";
      }
    }
    // Dense (vector path), ragged, and misaligned destinations; a broadcast row.
    for (int64_t n : {int64_t{7}, int64_t{1000003}})
      for (int64_t start : {0, 1}) {
        Tensor base = make_normal({n + 1}, dt, gpu);
        Tensor base_cpu = base.to(kCpu).clone();
        const Tensor src = make_normal({n}, dt, gpu);
        Tensor a = base.slice(0, start, start + n), a_cpu = base_cpu.slice(0, start, start + n);
        kernels::add_scaled_(a, src, 0.25);
        kernels::add_scaled_(a_cpu, src.to(kCpu), 0.25);
        EXPECT_TRUE(gpu_matches_cpu(base, base_cpu)) << dt << " n=" << n << " start=" << start;
      }
    Tensor m = make_normal({33, 17}, dt, gpu);
    Tensor m_cpu = m.to(kCpu).clone();
    const Tensor row = make_normal({17}, dt, gpu);
    kernels::add_scaled_(m, row, 2.0);
    kernels::add_scaled_(m_cpu, row.to(kCpu), 2.0);
    EXPECT_TRUE(gpu_matches_cpu(m, m_cpu)) << dt << " broadcast row";
  }
}

// Under a StreamGuard the kernels go to the guard's stream: captured from it into a CUDA graph,
// the two ops leave their kernels in the graph (a kernel sent to the default stream would run
// outside it, and the graph would hold fewer), and the graph computes the values.
TEST(ElementwiseCuda, RunsOnTheCurrentStream) {
  PIT_REQUIRE_CUDA();
#if PIT_WITH_CUDA
  manual_seed(26);
  const Device gpu = Device::cuda();
  const Tensor x = make_normal({4099}, DType::f32, gpu);
  const Tensor x_cpu = x.to(kCpu);
  Stream stream(gpu);
  const auto run = [&](Tensor& y, Tensor& z) {
    StreamGuard guard(stream);
    y = kernels::unary(UnaryOp::exp, x);
    z = kernels::binary(BinaryOp::mul, y, x);
  };
  Tensor y, z;
  run(y, z);  // first on the stream as it is: the outputs' blocks are then in the stream's cache
  stream.synchronize();
  EXPECT_TRUE(gpu_matches_cpu(y, kernels::unary(UnaryOp::exp, x_cpu)));
  y = Tensor();
  z = Tensor();
  const auto s = static_cast<cudaStream_t>(stream.ref().handle);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
  run(y, z);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  size_t nodes = 0;
  ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &nodes), cudaSuccess);
  EXPECT_GE(nodes, 2u) << "the graph captured from the guard's stream holds " << nodes << " node(s) for two ops";
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  stream.synchronize();
  EXPECT_TRUE(gpu_matches_cpu(y, kernels::unary(UnaryOp::exp, x_cpu)));
  EXPECT_TRUE(gpu_matches_cpu(z, kernels::binary(BinaryOp::mul, kernels::unary(UnaryOp::exp, x_cpu), x_cpu)));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
#endif
}

TEST(ElementwiseCuda, ZeroSizeAndMixedDevices) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor e = zeros({0, 3}, DType::f32, gpu);
  EXPECT_EQ(kernels::unary(UnaryOp::exp, e).shape(), (Shape{0, 3}));
  EXPECT_EQ(kernels::binary(BinaryOp::add, e, ones({3}, DType::f32, gpu)).shape(), (Shape{0, 3}));
  const std::string msg = error_of([&] {
    kernels::binary(BinaryOp::add, ones({3}, DType::f32, gpu), ones({3}, DType::f32));
  });
  EXPECT_NE(msg.find("cpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
}
