#pragma once
// Host-side launch helpers shared by the PIT GEMM launchers (ops/pit/cuda/*.cu): dtype dispatch to
// the kernels' element types, the epilogue in device form, shared-memory opt-in, persistent grids
// (also of clusters), checks.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "core/cuda/runtime.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "ops/pit/cuda/swrite.cuh"
#include "ops/pit/gemm.h"

namespace pit::sparse::cuda {

using pit::cuda::native;

// f32, f16 and bf16 (f64 is rejected by the dispatcher on CUDA); fn is compiled for these only.
template <typename Fn>
void dispatch_gemm(DType dt, const char* op, Fn&& fn) {
  dispatch<DType::f32, DType::f16, DType::bf16>(dt, op, std::forward<Fn>(fn));
}

inline dev::Act act_of(const Epilogue& ep) {
  if (!ep.activation) return dev::Act::none;
  switch (ep.act) {
    case UnaryOp::relu: return dev::Act::relu;
    case UnaryOp::gelu_tanh: return dev::Act::gelu_tanh;
    case UnaryOp::gelu_erf: return dev::Act::gelu_erf;
    case UnaryOp::silu: return dev::Act::silu;
    default: PIT_THROW("PIT GEMM: fused activation ", unary_name(ep.act), " is not supported");
  }
}

// The device epilogue of a call writing C whose output elements each belong to one tile (no
// atomics needed for accumulate) or not (atomic).
inline dev::EpiArgs epi_of(const Epilogue& ep, bool shared_outputs, const Tensor& c) {
  dev::EpiArgs e;
  e.mode = ep.write == Write::store ? dev::WriteMode::store
                                    : (shared_outputs ? dev::WriteMode::atomic : dev::WriteMode::accumulate);
  e.act = act_of(ep);
  e.bias = ep.bias.defined() ? ep.bias.data_ptr() : nullptr;
  if (ep.pre.defined()) {  // same layout as C (checked by the caller): a row's twin is a fixed distance away
    const auto at = [](const Tensor& t) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.data_ptr())); };
    const int64_t bytes = at(ep.pre) - at(c);
    PIT_CHECK(bytes % static_cast<int64_t>(c.itemsize()) == 0,
              "PIT GEMM: Epilogue::pre must be aligned to its elements like C");
    e.pre = true;
    e.pre_delta = bytes / static_cast<int64_t>(c.itemsize());
  }
  e.scale_after = ep.scale_after_activation;  // with or without pre (checked: with an activation)
  return e;
}

// Raises a kernel's dynamic shared-memory limit (above 48 KB needs it) and returns how many of its
// blocks fit on one SM (for persistent grids). The limit is a per-function attribute, so it is
// only ever raised: a call needing less must not lower it under a later call needing more. The
// attribute call and the occupancy query cost host time: made once per kernel, device and size
// (the attribute is set for the current device: a second GPU of the process needs its own).
template <class Kernel>
int allow_smem(Kernel* k, size_t bytes, int threads) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, size_t> allowed;  // the attribute as set, per (kernel, device)
  static std::map<std::tuple<const void*, int, size_t>, int> known;  // blocks per SM, per (kernel, device, bytes)
  int device = 0;
  PIT_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mu);
  const void* fn = reinterpret_cast<const void*>(k);
  size_t& limit = allowed[std::make_pair(fn, device)];
  if (bytes > limit) {  // the first call at this size: the device's limit is read only here
    int optin = 0;
    PIT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    PIT_CHECK(bytes <= static_cast<size_t>(optin), "PIT: a kernel needs ", bytes,
              " bytes of shared memory per block, this GPU allows ", optin,
              " (a PIT GEMM's index staged in shared memory is too large: fewer segments, or Engine::automatic)");
    PIT_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    limit = bytes;
  }
  const auto key = std::make_tuple(fn, device, bytes);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  int blocks = 0;
  PIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, k, threads, bytes));
  PIT_CHECK(blocks >= 1, "PIT: a kernel needs ", bytes, " bytes of shared memory, more than an SM has");
  known[key] = blocks;
  return blocks;
}

// Multiprocessors of the current device.
inline int sm_count() {
  int dev = 0;
  PIT_CUDA_CHECK(cudaGetDevice(&dev));
  return pit::cuda::sm_count(dev);
}

// A kernel switch's setting from the environment (read once, by the caller's static): `name` "0"
// turns it off, "1" on; unset or anything else leaves `fallback`.
inline bool env_switch(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || (v[0] != '0' && v[0] != '1') || v[1] != '\0') return fallback;
  return v[0] == '1';
}

// The cap set_persistent_grid_cap (ops/pit/cuda/gemm.h) puts on the persistent engines' grids.
inline std::atomic<int>& persistent_grid_cap() {
  static std::atomic<int> cap{0};
  return cap;
}

// The grid of a persistent engine: as many blocks as fit on the SMs (per_sm each), no more than
// its `tiles`, and no more than the test cap when one is set.
inline int64_t persistent_grid(int64_t tiles, int per_sm) {
  int64_t grid = std::max<int64_t>(1, std::min<int64_t>(tiles, int64_t{sm_count()} * per_sm));
  if (const int cap = persistent_grid_cap().load(); cap > 0) grid = std::min<int64_t>(grid, cap);
  return grid;
}

// How many clusters of `cluster` blocks (threads and `bytes` of dynamic shared memory each) of a
// kernel can run at once on the current device (cudaOccupancyMaxActiveClusters; 0: not one, and
// the caller launches without clusters), once per kernel, device, size and cluster. Call after
// allow_smem has raised the kernel's shared-memory limit.
template <class Kernel>
int max_active_clusters(Kernel* k, size_t bytes, int threads, int cluster) {
  static std::mutex mu;
  static std::map<std::tuple<const void*, int, size_t, int>, int> known;
  int device = 0;
  PIT_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(reinterpret_cast<const void*>(k), device, bytes, cluster);
  if (const auto it = known.find(key); it != known.end()) return it->second;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = static_cast<unsigned>(cluster);
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(cluster));  // (a multiple of the cluster: the grid is not used)
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = bytes;
  config.attrs = &attr;
  config.numAttrs = 1;
  int clusters = 0;
  PIT_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, k, &config));
  known[key] = clusters;
  return clusters;
}

// The grid, in blocks, of a persistent engine launched in clusters of `cluster` blocks: as many
// clusters as run at once (`clusters`, max_active_clusters), no more than its `items` (the
// clusters' work units), and under the test cap rounded down to whole clusters (one at least: a cap
// of 1 or 3 gives one cluster of two).
inline int64_t persistent_cluster_grid(int64_t items, int clusters, int cluster) {
  int64_t n = std::max<int64_t>(1, std::min<int64_t>(items, clusters));
  if (const int cap = persistent_grid_cap().load(); cap > 0) n = std::min<int64_t>(n, std::max(1, cap / cluster));
  return n * cluster;
}

inline void check_launch(const char* op) {
  const cudaError_t e = cudaGetLastError();
  PIT_CHECK(e == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(e));
}

inline const int32_t* i32p(const Tensor& t) { return t.defined() ? t.data<int32_t>() : nullptr; }

}  // namespace pit::sparse::cuda
