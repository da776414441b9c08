#pragma once
// Devices ("cpu", "cuda:N") and CUDA streams as values and RAII owners.
#include <compare>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace pit {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // "cpu", "cuda", "cuda:N". Only the syntax is checked here; a CUDA index is checked against
  // the machine when the device is first used (check_device).
  static Device parse(std::string_view text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;
  auto operator<=>(const Device&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

// Number of usable CUDA devices: 0 when pit was built without CUDA, or there is no driver or GPU.
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }
// Throws a pit::Error naming the device when it cannot be used on this machine and build.
void check_device(Device device);
// The compute capability of a CUDA device as major * 10 + minor (90 for an H100 or H200); checks
// the device first (check_device).
int cuda_compute_capability(Device device);
// Makes a CUDA device this thread's current one (cudaSetDevice), where CUDA work that names no
// device runs and its context lives: a process that uses one GPU of several (a rank of a
// multi-GPU run) calls it first, so that it opens no context on GPU 0. Checks it (check_device).
void use_device(Device device);

// Throws the pit::Error that a kernel on `device` recorded (an out-of-range index, a bad class
// target: core/device_error.h), clearing it; does nothing when there is none, for the CPU, and
// without CUDA. It does not synchronise: it sees what finished kernels recorded. Every
// synchronisation in core (StreamRef::synchronize, the device-to-host copies behind to(cpu),
// item(), to_vector()) already checks; call this where a sync happened outside pit's API.
void check_device_errors(Device device);

// A non-owning reference to a CUDA stream on one device (or the CPU, where it means nothing).
// A null handle is the device's legacy default stream. Launchers take a StreamRef by value.
struct StreamRef {
  Device device;
  void* handle = nullptr;  // cudaStream_t
  void synchronize() const;  // waits for all work queued on the stream; no-op for the CPU
};

// An owned CUDA stream, created non-blocking on its device; move-only; destroyed with it.
class Stream {
 public:
  explicit Stream(Device device);
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  StreamRef ref() const { return {device_, handle_}; }
  operator StreamRef() const { return ref(); }
  void synchronize() const { ref().synchronize(); }

 private:
  Device device_;
  void* handle_ = nullptr;
};

// The stream that tensor-level operations on `device` use in this thread: the legacy default
// stream unless a StreamGuard says otherwise. Kernels themselves always take a StreamRef.
StreamRef current_stream(Device device);

// Makes `stream` the current stream of its device for this thread until the guard dies.
class StreamGuard {
 public:
  explicit StreamGuard(StreamRef stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  StreamRef previous_;
};

}  // namespace pit
