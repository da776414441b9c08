// The per-device error slots (core/device_error.h): one mapped pinned DeviceErrorSlot and one
// device claim word per GPU, created on the first sink asked for that GPU.
#include <cuda_runtime.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/cuda/backend.h"
#include "core/cuda/runtime.h"

namespace pit::cuda {
namespace {

// The claim word: one per device, since each device's context loads this module on its own;
// zero at load, so no memset (and no synchronisation) is needed before the first kernel uses it.
__device__ uint32_t g_claim;

struct PerDevice {
  std::once_flag once;
  std::atomic<DeviceErrorSlot*> host{nullptr};  // set once the slot exists
  DeviceErrorSlot* device_ptr = nullptr;
  uint32_t* claim = nullptr;
};

class Slots {
 public:
  Slots() : devices_(static_cast<size_t>(device_count())) {
    for (auto& d : devices_) d = std::make_unique<PerDevice>();
  }

  PerDevice* find(int device) {
    return device >= 0 && static_cast<size_t>(device) < devices_.size() ? devices_[device].get()
                                                                         : nullptr;
  }

  PerDevice& get(int device) {
    PerDevice* d = find(device);
    PIT_CHECK(d, "device error slot: cuda:", device, " is out of range (", devices_.size(),
              " CUDA device(s))");
    std::call_once(d->once, [&] { create(*d, device); });
    return *d;
  }

 private:
  static void create(PerDevice& d, int device) {
    DeviceGuard guard(device);
    void* host = nullptr;
    // Portable: any context may map it; mapped: kernels write it directly (zero-copy).
    PIT_CUDA_CHECK(cudaHostAlloc(&host, sizeof(DeviceErrorSlot),
                                 cudaHostAllocMapped | cudaHostAllocPortable));
    std::memset(host, 0, sizeof(DeviceErrorSlot));
    void* dev = nullptr;
    PIT_CUDA_CHECK(cudaHostGetDevicePointer(&dev, host, 0));
    void* claim = nullptr;
    PIT_CUDA_CHECK(cudaGetSymbolAddress(&claim, g_claim));
    d.device_ptr = static_cast<DeviceErrorSlot*>(dev);
    d.claim = static_cast<uint32_t*>(claim);
    d.host.store(static_cast<DeviceErrorSlot*>(host), std::memory_order_release);
  }

  std::vector<std::unique_ptr<PerDevice>> devices_;
};

Slots& slots() {
  // Never destroyed (and the pinned slots never freed): kernels queued before exit may still
  // write them, and the driver releases them with the process.
  static Slots* s = new Slots();
  return *s;
}

}  // namespace

DeviceErrorSink device_error_sink(int device, int32_t kind, int32_t dim) {
  const PerDevice& d = slots().get(device);
  return {d.device_ptr, d.claim, kind, dim};
}

void check_device_errors(int device) {
  PerDevice* d = slots().find(device);
  if (!d) return;
  DeviceErrorSlot* slot = d->host.load(std::memory_order_acquire);
  if (!slot) return;  // no sink was ever handed out: nothing can have been recorded
  if (auto message = detail::take_device_error(*slot, Device::cuda(device))) throw Error(*message);
}

}  // namespace pit::cuda
