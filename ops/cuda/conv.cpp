// cuDNN convolutions (legacy convolution API of cuDNN 9); contract in ops/cuda/conv.h.
//
// Handles: one per (device, thread), created with that device current and bound to the call's
// stream with cudnnSetStream before every use; they live until the process ends.
//
// Math type (cudnnSetConvolutionMathType), per dtype:
// - f32: CUDNN_FMA_MATH. cuDNN's documentation: CUDNN_DEFAULT_MATH permits TF32 tensor-core
//   kernels on Ampere and later, CUDNN_FMA_MATH restricts the choice to FMA kernels. TF32 keeps a
//   10-bit mantissa (errors ~1e-3 relative), which would break the CPU/GPU agreement that pit's
//   f32 promises (cuBLAS GEMMs in pit also run without TF32). Only algorithms that cuDNN reports
//   with FMA math are taken (DEFAULT math ones only as a fallback, still run under FMA math).
// - f16, bf16: CUDNN_TENSOR_OP_MATH (tensor cores, f32 accumulation: the convolution descriptor's
//   compute type is f32, cuDNN's PSEUDO_HALF / PSEUDO_BFLOAT16 configurations), then the math type
//   that cuDNN reports with the chosen algorithm, as cuDNN requires algorithm and math type to
//   agree.
// - f64: CUDNN_DEFAULT_MATH, compute type f64.
//
// Algorithms: cudnnGet*Algorithm_v7 (heuristics: no trial runs, no extra memory), scanned in
// cuDNN's order of expected speed for the first one whose status is success, whose workspace
// query succeeds and needs at most kMaxWorkspace; deterministic algorithms are preferred (backward
// filter has atomics-based ones), so repeated runs give the same bits. The choice is cached per
// (device, dtype, pass, geometry) for the process.
//
// Workspaces are u8 tensors from pit's caching allocator on the current stream of the device,
// released (to the cache) when the call returns: the caching allocator hands a block only to later
// work on the same stream, so the cuDNN kernels that use it are always queued before any reuse.
#include "ops/cuda/conv.h"

#include <cudnn.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <compare>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "core/cuda/runtime.h"
#include "core/tensor.h"

namespace pit::cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t{1} << 30;  // 1 GiB

cudnnHandle_t handle_for(int device) {
  thread_local std::map<int, cudnnHandle_t> handles;
  auto it = handles.find(device);
  if (it != handles.end()) return it->second;
  cudnnHandle_t h = nullptr;
  PIT_CUDNN_CHECK(cudnnCreate(&h));  // the caller's DeviceGuard made `device` current
  handles.emplace(device, h);
  return h;
}

cudnnDataType_t data_type(DType d) {
  switch (d) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default:
      PIT_THROW("conv2d on CUDA: dtype ", dtype_name(d),
                " is not supported; supported dtypes: f32, f64, f16, bf16");
  }
}

cudnnMathType_t initial_math(DType d) {
  switch (d) {
    case DType::f32: return CUDNN_FMA_MATH;
    case DType::f16:
    case DType::bf16: return CUDNN_TENSOR_OP_MATH;
    default: return CUDNN_DEFAULT_MATH;
  }
}

int to_int(int64_t v, const char* what) {
  PIT_CHECK(v >= 0 && v <= INT_MAX, "conv2d on CUDA: ", what, " = ", v,
            " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

// ---- RAII descriptors ----

class TensorDesc {
 public:
  TensorDesc(DType dtype, int64_t n, int64_t c, int64_t h, int64_t w) {
    PIT_CHECK(n * c * h * w <= INT_MAX, "conv2d on CUDA: a tensor of shape [", n, ", ", c, ", ",
              h, ", ", w, "] has more than 2^31 - 1 elements, beyond cuDNN's legacy API; split "
              "the batch");
    PIT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_));
    PIT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d_, CUDNN_TENSOR_NCHW, data_type(dtype),
                                               to_int(n, "batch"), to_int(c, "channels"),
                                               to_int(h, "height"), to_int(w, "width")));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d_); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  cudnnTensorDescriptor_t get() const { return d_; }

 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

class FilterDesc {
 public:
  FilterDesc(DType dtype, int64_t k, int64_t c, int64_t h, int64_t w) {
    PIT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d_));
    PIT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d_, data_type(dtype), CUDNN_TENSOR_NCHW,
                                               to_int(k, "out_channels"), to_int(c, "in_channels"),
                                               to_int(h, "kernel height"), to_int(w, "kernel width")));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d_); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  cudnnFilterDescriptor_t get() const { return d_; }

 private:
  cudnnFilterDescriptor_t d_ = nullptr;
};

class ConvDesc {
 public:
  ConvDesc(const cpu::ConvGeometry& g, DType dtype) {
    PIT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d_));
    PIT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        d_, to_int(g.pad_h, "pad_h"), to_int(g.pad_w, "pad_w"), to_int(g.stride_h, "stride_h"),
        to_int(g.stride_w, "stride_w"), to_int(g.dilation_h, "dilation_h"),
        to_int(g.dilation_w, "dilation_w"), CUDNN_CROSS_CORRELATION,
        dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT));
    set_math(initial_math(dtype));
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d_); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  cudnnConvolutionDescriptor_t get() const { return d_; }
  void set_math(cudnnMathType_t m) const { PIT_CUDNN_CHECK(cudnnSetConvolutionMathType(d_, m)); }

 private:
  cudnnConvolutionDescriptor_t d_ = nullptr;
};

// Everything one convolution call needs.
struct Descriptors {
  Descriptors(const cpu::ConvGeometry& g, DType dtype)
      : x(dtype, g.n, g.c_in, g.h, g.w),
        y(dtype, g.n, g.c_out, g.h_out, g.w_out),
        w(dtype, g.c_out, g.c_in, g.kh, g.kw),
        conv(g, dtype) {}
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
};

// alpha = 1, beta = 0 in the type cuDNN expects: double for f64 data, float otherwise.
struct Scaling {
  explicit Scaling(DType dtype) : f64(dtype == DType::f64) {}
  const void* one() const { return f64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return f64 ? static_cast<const void*>(&d0) : &f0; }
  bool f64;
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
};

// ---- algorithm choice and cache ----

enum class Pass { forward, backward_data, backward_filter };

struct AlgoKey {
  int device;
  DType dtype;
  Pass pass;
  int64_t n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  auto operator<=>(const AlgoKey&) const = default;
};

struct AlgoChoice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

std::mutex g_cache_mutex;
std::map<AlgoKey, AlgoChoice>& algo_cache() {
  static std::map<AlgoKey, AlgoChoice> cache;
  return cache;
}

AlgoKey make_key(const cpu::ConvGeometry& g, DType dtype, Pass pass, int device) {
  return {device,    dtype,      pass,       g.n,        g.c_in,     g.h,          g.w,
          g.c_out,   g.kh,       g.kw,       g.stride_h, g.stride_w, g.pad_h,      g.pad_w,
          g.dilation_h, g.dilation_w};
}

// Picks from cuDNN's heuristic results (any of the three perf structs). workspace_of(algo, math)
// sets the math type on the descriptor and returns the workspace size, or nullopt when cuDNN
// refuses the pair.
template <typename Perf, typename WorkspaceOf>
AlgoChoice choose(const std::vector<Perf>& perfs, DType dtype, WorkspaceOf&& workspace_of,
                  const char* pass_name) {
  // Math type to run a candidate with, or nullopt to skip it; `strict` drops the f32 fallback.
  auto run_math = [&](const Perf& p, bool strict) -> std::optional<cudnnMathType_t> {
    if (dtype != DType::f32) return p.mathType;
    if (p.mathType == CUDNN_FMA_MATH) return CUDNN_FMA_MATH;
    if (!strict && p.mathType == CUDNN_DEFAULT_MATH) return CUDNN_FMA_MATH;
    return std::nullopt;  // a tensor-op (TF32) algorithm
  };
  std::optional<AlgoChoice> smallest;  // over every usable candidate, whatever its workspace
  for (int round = 0; round < 3; ++round) {
    const bool deterministic_only = round == 0, strict = round < 2;
    for (const Perf& p : perfs) {
      if (p.status != CUDNN_STATUS_SUCCESS) continue;
      if (deterministic_only && p.determinism != CUDNN_DETERMINISTIC) continue;
      const auto math = run_math(p, strict);
      if (!math) continue;
      const std::optional<size_t> ws = workspace_of(p.algo, *math);
      if (!ws) continue;
      const AlgoChoice c{static_cast<int>(p.algo), *math, *ws};
      if (*ws <= kMaxWorkspace) return c;
      if (!smallest || c.workspace < smallest->workspace) smallest = c;
    }
  }
  PIT_CHECK(smallest.has_value(), "conv2d on CUDA: cuDNN offers no usable ", pass_name,
            " algorithm for dtype ", dtype_name(dtype), " and this geometry");
  return *smallest;
}

AlgoChoice forward_algo(cudnnHandle_t h, const Descriptors& d, const cpu::ConvGeometry& g,
                        DType dtype, int device) {
  const AlgoKey key = make_key(g, dtype, Pass::forward, device);
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) return it->second;
  }
  int max_count = 0;
  PIT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
  int returned = 0;
  PIT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(),
                                                         d.y.get(), static_cast<int>(perfs.size()),
                                                         &returned, perfs.data()));
  perfs.resize(static_cast<size_t>(std::max(returned, 0)));
  const AlgoChoice c = choose(
      perfs, dtype,
      [&](cudnnConvolutionFwdAlgo_t algo, cudnnMathType_t math) -> std::optional<size_t> {
        d.conv.set_math(math);
        size_t bytes = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(),
                                                    d.y.get(), algo, &bytes) != CUDNN_STATUS_SUCCESS)
          return std::nullopt;
        return bytes;
      },
      "forward");
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  algo_cache()[key] = c;
  return c;
}

AlgoChoice backward_data_algo(cudnnHandle_t h, const Descriptors& d, const cpu::ConvGeometry& g,
                              DType dtype, int device) {
  const AlgoKey key = make_key(g, dtype, Pass::backward_data, device);
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) return it->second;
  }
  int max_count = 0;
  PIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
  int returned = 0;
  PIT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
      h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), static_cast<int>(perfs.size()), &returned,
      perfs.data()));
  perfs.resize(static_cast<size_t>(std::max(returned, 0)));
  const AlgoChoice c = choose(
      perfs, dtype,
      [&](cudnnConvolutionBwdDataAlgo_t algo, cudnnMathType_t math) -> std::optional<size_t> {
        d.conv.set_math(math);
        size_t bytes = 0;
        if (cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w.get(), d.y.get(), d.conv.get(),
                                                         d.x.get(), algo, &bytes) != CUDNN_STATUS_SUCCESS)
          return std::nullopt;
        return bytes;
      },
      "backward-data");
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  algo_cache()[key] = c;
  return c;
}

AlgoChoice backward_filter_algo(cudnnHandle_t h, const Descriptors& d, const cpu::ConvGeometry& g,
                                DType dtype, int device) {
  const AlgoKey key = make_key(g, dtype, Pass::backward_filter, device);
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) return it->second;
  }
  int max_count = 0;
  PIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
  int returned = 0;
  PIT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), static_cast<int>(perfs.size()), &returned,
      perfs.data()));
  perfs.resize(static_cast<size_t>(std::max(returned, 0)));
  if (dtype == DType::f32) {
    // f32 filter gradients: ALGO_1 first. On an H100 the heuristic's first f32 choice for a
    // 32x3x28x28 * 5x5 batch lost 1% of dweight against the f64 reference; ALGO_1 is a
    // deterministic f32 GEMM formulation.
    std::stable_partition(perfs.begin(), perfs.end(), [](const cudnnConvolutionBwdFilterAlgoPerf_t& p) {
      return p.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    });
  }
  const AlgoChoice c = choose(
      perfs, dtype,
      [&](cudnnConvolutionBwdFilterAlgo_t algo, cudnnMathType_t math) -> std::optional<size_t> {
        d.conv.set_math(math);
        size_t bytes = 0;
        if (cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x.get(), d.y.get(), d.conv.get(),
                                                           d.w.get(), algo, &bytes) != CUDNN_STATUS_SUCCESS)
          return std::nullopt;
        return bytes;
      },
      "backward-filter");
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  algo_cache()[key] = c;
  return c;
}

// A workspace of `bytes` on the device (kept alive by the returned tensor until the call ends).
Tensor workspace(size_t bytes, Device device) {
  if (bytes == 0) return Tensor();
  return Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, device);
}

// The handle of the stream's device, bound to the stream.
cudnnHandle_t bound_handle(StreamRef stream) {
  cudnnHandle_t h = handle_for(stream.device.index);
  PIT_CUDNN_CHECK(cudnnSetStream(h, native(stream)));
  return h;
}

}  // namespace

void conv2d(const cpu::ConvGeometry& g, DType dtype, const void* x, const void* weight,
            const void* bias, void* y, StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  cudnnHandle_t h = bound_handle(stream);
  const Descriptors d(g, dtype);
  const AlgoChoice c = forward_algo(h, d, g, dtype, stream.device.index);
  d.conv.set_math(c.math);
  const Tensor ws = workspace(c.workspace, stream.device);
  const Scaling s(dtype);
  PIT_CUDNN_CHECK(cudnnConvolutionForward(h, s.one(), d.x.get(), x, d.w.get(), weight, d.conv.get(),
                                          static_cast<cudnnConvolutionFwdAlgo_t>(c.algo),
                                          ws.defined() ? ws.data_ptr() : nullptr, c.workspace,
                                          s.zero(), d.y.get(), y));
  if (bias) add_channel_bias(g.n, g.c_out, g.h_out * g.w_out, dtype, y, bias, stream);
}

void conv2d_backward_data(const cpu::ConvGeometry& g, DType dtype, const void* dy,
                          const void* weight, void* dx, StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  cudnnHandle_t h = bound_handle(stream);
  const Descriptors d(g, dtype);
  const AlgoChoice c = backward_data_algo(h, d, g, dtype, stream.device.index);
  d.conv.set_math(c.math);
  const Tensor ws = workspace(c.workspace, stream.device);
  const Scaling s(dtype);
  PIT_CUDNN_CHECK(cudnnConvolutionBackwardData(
      h, s.one(), d.w.get(), weight, d.y.get(), dy, d.conv.get(),
      static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws.defined() ? ws.data_ptr() : nullptr,
      c.workspace, s.zero(), d.x.get(), dx));
}

void conv2d_backward_filter(const cpu::ConvGeometry& g, DType dtype, const void* x, const void* dy,
                            void* dweight, StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  cudnnHandle_t h = bound_handle(stream);
  const Descriptors d(g, dtype);
  const AlgoChoice c = backward_filter_algo(h, d, g, dtype, stream.device.index);
  d.conv.set_math(c.math);
  const Tensor ws = workspace(c.workspace, stream.device);
  const Scaling s(dtype);
  PIT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      h, s.one(), d.x.get(), x, d.y.get(), dy, d.conv.get(),
      static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
      ws.defined() ? ws.data_ptr() : nullptr, c.workspace, s.zero(), d.w.get(), dweight));
}

}  // namespace pit::cuda
