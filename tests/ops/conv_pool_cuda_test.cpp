// conv2d, max_pool2d, avg_pool2d on CUDA (cuDNN convolutions, pooling kernels) against the CPU on
// the same inputs.
//
// GPU tolerances, as max |got - want| <= tol * (1 + max |want|) per tensor (want: the CPU in f64
// on the very same, exactly widened, inputs): f32 1e-4 (cuDNN runs f32 with FMA math, no TF32;
// the slack covers Winograd/FFT algorithms and f32 accumulation over ~25k terms), f16 5e-3
// (output rounding 2^-11 plus f32 accumulation), bf16 2e-2 (rounding 2^-8). Max pooling is
// exact (values and indices); pooling sums have the f32 rounding of a few terms.
#include "tests/ops/conv_pool_refs.h"

using namespace pit;
using namespace pit::test::conv_pool;

namespace {

// ---- CUDA -------------------------------------------------------------------------------------

double gpu_tol(DType dtype) {
  switch (dtype) {
    case DType::f32: return 1e-4;
    case DType::f16: return 5e-3;
    case DType::bf16: return 2e-2;
    default: return 1e-10;  // f64
  }
}

const DType kGpuDtypes[] = {DType::f32, DType::bf16, DType::f16, DType::f64};

// Forward and every gradient on the GPU against the CPU in f64 on the same inputs.
void check_conv_gpu(const Shape& xs, const Shape& ws, bool bias, const kernels::Conv2dParams& p,
                    DType dtype) {
  SCOPED_TRACE(describe(xs, ws, p) + " " + dtype_name(dtype) + (bias ? " bias" : ""));
  const Device gpu = Device::cuda();
  const Tensor x = randn(xs, dtype, gpu), w = randn(ws, dtype, gpu);
  const Tensor b = bias ? randn({ws[0]}, dtype, gpu) : Tensor();
  const double tol = gpu_tol(dtype);
  const Tensor y = kernels::conv2d(x, w, b, p);
  ASSERT_TRUE(y.is_cuda());
  ASSERT_EQ(y.dtype(), dtype);
  expect_close(y, kernels::conv2d(f64(x), f64(w), bias ? f64(b) : Tensor(), p), tol, "forward");
  const Tensor dy = randn(y.shape(), dtype, gpu);
  const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, x, w, bias, p);
  const kernels::Conv2dGrads ref = kernels::conv2d_backward(f64(dy), f64(x), f64(w), bias, p);
  ASSERT_TRUE(got.dx.is_cuda() && got.dweight.is_cuda());
  expect_close(got.dx, ref.dx, tol, "dx");
  expect_close(got.dweight, ref.dweight, tol, "dweight");
  if (bias) expect_close(got.dbias, ref.dbias, tol, "dbias");
}

TEST_F(ConvPoolTest, CudaConv2dMatchesCpu) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes)
    for (const ConvCase& c : conv_cases()) check_conv_gpu(c.x, c.w, c.bias, c.p, dtype);
}

TEST_F(ConvPoolTest, CudaConv2dMisalignedAndStridedOperands) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  for (const DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    // Contiguous views one element into their storage, and a transposed (strided) input.
    const Tensor x = randn({2 * 8 * 9 * 10 + 1}, dtype, gpu).slice(0, 1, 2 * 8 * 9 * 10 + 1).view({2, 8, 9, 10});
    const Tensor w = randn({4 * 8 * 3 * 3 + 1}, dtype, gpu).slice(0, 1, 4 * 8 * 3 * 3 + 1).view({4, 8, 3, 3});
    const Tensor xt = randn({2, 8, 10, 9}, dtype, gpu).transpose(2, 3);
    const double tol = gpu_tol(dtype);
    for (const Tensor& in : {x, xt}) {
      expect_close(kernels::conv2d(in, w, Tensor(), p), kernels::conv2d(f64(in), f64(w), Tensor(), p),
                   tol, "forward");
      const Tensor dy = randn({2 * 4 * 9 * 10 + 1}, dtype, gpu).slice(0, 1, 2 * 4 * 9 * 10 + 1).view({2, 4, 9, 10});
      const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, in, w, false, p);
      const kernels::Conv2dGrads ref = kernels::conv2d_backward(f64(dy), f64(in), f64(w), false, p);
      expect_close(got.dx, ref.dx, tol, "dx");
      expect_close(got.dweight, ref.dweight, tol, "dweight");
    }
  }
}

TEST_F(ConvPoolTest, CudaConv2dCnnSized) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes) {
    check_conv_gpu({32, 32, 28, 28}, {32, 32, 3, 3}, true, conv_params(1, 1, 1, 1, 1, 1), dtype);
    check_conv_gpu({32, 32, 28, 28}, {64, 32, 3, 3}, true, conv_params(2, 2, 1, 1, 1, 1), dtype);
    check_conv_gpu({32, 3, 28, 28}, {32, 3, 5, 5}, false, conv_params(1, 1, 2, 2, 1, 1), dtype);
    check_conv_gpu({32, 32, 14, 14}, {16, 32, 1, 1}, true, conv_params(1, 1, 0, 0, 1, 1), dtype);
  }
}

TEST_F(ConvPoolTest, CudaConv2dDeterministic) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const Tensor x = randn({32, 32, 28, 28}, dtype, gpu), w = randn({32, 32, 3, 3}, dtype, gpu);
    const Tensor dy = randn({32, 32, 28, 28}, dtype, gpu);
    EXPECT_EQ(values(kernels::conv2d(x, w, Tensor(), p)), values(kernels::conv2d(x, w, Tensor(), p)));
    const kernels::Conv2dGrads a = kernels::conv2d_backward(dy, x, w, false, p);
    const kernels::Conv2dGrads b = kernels::conv2d_backward(dy, x, w, false, p);
    EXPECT_EQ(values(a.dx), values(b.dx)) << dtype_name(dtype);
    EXPECT_EQ(values(a.dweight), values(b.dweight)) << dtype_name(dtype);
  }
}

TEST_F(ConvPoolTest, CudaPoolingMatchesCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes)
    for (const Shape& shape : {Shape{2, 3, 7, 5}, Shape{32, 32, 28, 28}})
      for (const kernels::Pool2dParams& p : pool_cases()) {
        if (p.kernel_h > shape[2] + 2 * p.pad_h || p.kernel_w > shape[3] + 2 * p.pad_w) continue;
        SCOPED_TRACE(describe_pool(shape, p) + " " + dtype_name(dtype));
        for (const bool ties : {false, true}) {
          SCOPED_TRACE(ties ? "with ties" : "random");
          const Tensor x = ties ? with_ties(shape, dtype, gpu) : randn(shape, dtype, gpu);
          const Tensor xc = x.to(Device::cpu());  // same dtype: the CPU kernels run it natively
          const kernels::MaxPoolResult r = kernels::max_pool2d(x, p);
          const kernels::MaxPoolResult rc = kernels::max_pool2d(xc, p);
          ASSERT_TRUE(r.y.is_cuda() && r.indices.is_cuda());
          EXPECT_EQ(values(r.y), values(rc.y));
          EXPECT_EQ(r.indices.to_vector<int64_t>(), rc.indices.to_vector<int64_t>());
          const Tensor dy = randn(r.y.shape(), dtype, gpu);
          const double tol = gpu_tol(dtype);
          expect_close(kernels::max_pool2d_backward(dy, r.indices, shape),
                       kernels::max_pool2d_backward(f64(dy), rc.indices, shape), tol, "max backward");
          expect_close(kernels::avg_pool2d(x, p), kernels::avg_pool2d(f64(x), p), tol, "avg forward");
          expect_close(kernels::avg_pool2d_backward(dy, shape, p),
                       kernels::avg_pool2d_backward(f64(dy), shape, p), tol, "avg backward");
        }
      }
}

TEST_F(ConvPoolTest, CudaOpsEndToEnd) {
  PIT_REQUIRE_CUDA();
  // conv -> max pool -> conv -> avg pool through autograd on the GPU, against the same graph on
  // the CPU in f64. f32 and f64 only: with bf16 the rounded conv outputs would tie or swap inside
  // pooling windows against the exact f64 ones, moving max-pool gradients (the single-op tests
  // cover bf16/f16 on identical inputs).
  for (const DType dtype : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Device gpu = Device::cuda();
    const std::vector<Tensor> init{randn({4, 3, 14, 13}, dtype, gpu), randn({8, 3, 3, 3}, dtype, gpu),
                                   randn({8}, dtype, gpu), randn({6, 8, 3, 2}, dtype, gpu)};
    auto run = [&](const std::vector<Tensor>& ts) {
      std::vector<Variable> v;
      for (const Tensor& t : ts) v.emplace_back(t, true);
      Variable h = ops::conv2d(v[0], v[1], v[2], 1, 1);
      h = ops::max_pool2d(h, 3, 2, 1);
      h = ops::conv2d(h, v[3], Variable(), 1, 1, 2);
      h = ops::avg_pool2d(h, 2);
      h.backward(ones(h.shape(), h.dtype(), h.device()));
      std::vector<Tensor> out{h.data()};
      for (const Variable& e : v) out.push_back(e.grad());
      return out;
    };
    std::vector<Tensor> cpu_in;
    for (const Tensor& t : init) cpu_in.push_back(f64(t));
    const std::vector<Tensor> got = run(init), want = run(cpu_in);
    // Two layers: twice the single-op tolerance.
    const double tol = 2 * gpu_tol(dtype);
    const char* names[] = {"output", "dx", "dw1", "db1", "dw2"};
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(got[i].is_cuda()) << names[i];
      expect_close(got[i], want[i], tol, names[i]);
    }
  }
}

// Zero-size inputs on the GPU, as the CPU's Conv2dEmptyDims: a batch of none (N = 0) gives empty
// outputs and dx, and dweight / dbias zero (sums over no images); no input channels (Cin = 0) a
// bias-filled output and dbias the sums of dy. The op must answer both before cuDNN, whose
// descriptors take no zero dim. Pooling an empty batch: empty outputs, indices and gradients.
TEST(ConvPoolCuda, EmptyBatchAndChannelsMatchCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  const kernels::Pool2dParams pp = pool_params(3, 3, 2, 2, 1, 1);
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto same = [&](const Tensor& got, const Tensor& want, const std::string& what) {
      ASSERT_TRUE(got.defined()) << what;
      EXPECT_TRUE(got.is_cuda()) << what;
      EXPECT_EQ(got.dtype(), dtype) << what;
      expect_close(got, want, gpu_tol(dtype), what);  // shape, and values where there are any
    };
    for (const auto& [xs, ws] : {std::pair<Shape, Shape>{{0, 2, 4, 4}, {3, 2, 3, 3}}, {{2, 0, 4, 4}, {3, 0, 3, 3}}}) {
      const std::string what = "conv2d of " + shape_str(xs) + " ";
      const Tensor x = randn(xs, dtype, gpu), w = randn(ws, dtype, gpu), b = randn({3}, dtype, gpu);
      const Tensor y = kernels::conv2d(x, w, b, p);
      same(y, kernels::conv2d(f64(x), f64(w), f64(b), p), what + "y");
      const Tensor dy = randn(y.shape(), dtype, gpu);
      const kernels::Conv2dGrads g = kernels::conv2d_backward(dy, x, w, true, p);
      const kernels::Conv2dGrads c = kernels::conv2d_backward(f64(dy), f64(x), f64(w), true, p);
      same(g.dx, c.dx, what + "dx");
      same(g.dweight, c.dweight, what + "dweight");
      same(g.dbias, c.dbias, what + "dbias");
    }
    const Shape xs{0, 3, 7, 5};
    const Tensor x = randn(xs, dtype, gpu);
    const kernels::MaxPoolResult r = kernels::max_pool2d(x, pp), rc = kernels::max_pool2d(f64(x), pp);
    same(r.y, rc.y, "max_pool2d y");
    EXPECT_TRUE(r.indices.is_cuda() && r.indices.dtype() == DType::i64 && r.indices.shape() == rc.indices.shape());
    same(kernels::max_pool2d_backward(r.y, r.indices, xs), kernels::max_pool2d_backward(rc.y, rc.indices, xs),
         "max_pool2d dx");
    same(kernels::avg_pool2d(x, pp), kernels::avg_pool2d(f64(x), pp), "avg_pool2d y");
    same(kernels::avg_pool2d_backward(r.y, xs, pp), kernels::avg_pool2d_backward(rc.y, xs, pp), "avg_pool2d dx");
  }
}


}  // namespace
