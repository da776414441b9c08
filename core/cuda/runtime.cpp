// Devices, streams and plain copies through the CUDA runtime.
#include "core/cuda/runtime.h"

#include <atomic>

#include "core/cuda/backend.h"
#include "core/cuda_arch.h"

#ifndef PIT_CUDA_ARCHS
#define PIT_CUDA_ARCHS ""  // set by core/CMakeLists.txt: CMAKE_CUDA_ARCHITECTURES
#endif

namespace pit::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no GPU: clear the error, report none
    return 0;
  }
  return count;
}

void set_device(int index) { PIT_CUDA_CHECK(cudaSetDevice(index)); }

void require_built_for(int device) {
  constexpr int kCached = 64;  // the first 64 devices are cached (a device's answer never changes)
  static std::atomic<bool> ok[kCached] = {};
  const bool cached = device >= 0 && device < kCached;
  if (cached && ok[device].load(std::memory_order_relaxed)) return;
  cudaDeviceProp prop{};
  PIT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  PIT_CHECK(cuda_archs_cover(PIT_CUDA_ARCHS, prop.major, prop.minor), "device cuda:", device, ": ",
            cuda_arch_mismatch(prop.name, prop.major, prop.minor, PIT_CUDA_ARCHS));
  if (cached) ok[device].store(true, std::memory_order_relaxed);
}

int compute_capability(int device) {
  int major = 0, minor = 0;
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor;
}

int sm_count(int device) {
  constexpr int kCached = 64;  // the first 64 devices are cached
  static std::atomic<int> cache[kCached] = {};
  const bool cached = device >= 0 && device < kCached;
  int n = cached ? cache[device].load(std::memory_order_relaxed) : 0;
  if (n == 0) {
    PIT_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    if (cached) cache[device].store(n, std::memory_order_relaxed);
  }
  return n;
}

void* stream_create(int device) {
  DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  PIT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(void* handle) noexcept {
  // Never throws; if the context is already broken there is nothing useful to report here.
  (void)cudaStreamDestroy(static_cast<cudaStream_t>(handle));
}

void stream_synchronize(StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  PIT_CUDA_CHECK(cudaStreamSynchronize(native(stream)));
  check_device_errors(stream.device.index);  // what the finished kernels recorded
}

void memcpy_h2d(void* dst, const void* src, size_t nbytes, StreamRef stream) {
  if (nbytes == 0) return;
  DeviceGuard guard(stream.device.index);
  PIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, native(stream)));
}

void memcpy_d2h(void* dst, const void* src, size_t nbytes, StreamRef stream) {
  if (nbytes == 0) return;
  DeviceGuard guard(stream.device.index);
  PIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, native(stream)));
  PIT_CUDA_CHECK(cudaStreamSynchronize(native(stream)));  // the host reads it next
  check_device_errors(stream.device.index);  // a bad index behind this data throws here
}

void memcpy_d2d(void* dst, int dst_device, const void* src, int src_device, size_t nbytes,
                StreamRef stream) {
  if (nbytes == 0) return;
  DeviceGuard guard(stream.device.index);
  if (dst_device == src_device)
    PIT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, native(stream)));
  else
    PIT_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, native(stream)));
}

}  // namespace pit::cuda
