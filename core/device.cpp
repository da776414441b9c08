#include "core/device.h"

#include <charconv>
#include <mutex>
#include <unordered_map>

#include "core/cuda/backend.h"
#include "core/error.h"

namespace pit {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda" || text == "gpu") return cuda(0);
  for (std::string_view prefix : {"cuda:", "gpu:"}) {
    if (text.substr(0, prefix.size()) != prefix) continue;
    const std::string_view digits = text.substr(prefix.size());
    int index = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0)
      return cuda(index);
  }
  PIT_THROW("unknown device '", text, "'; expected 'cpu', 'cuda' or 'cuda:N' (N = 0, 1, ...)");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

int cuda_device_count() {
  static const int count = cuda::device_count();  // the set of GPUs does not change at run time
  return count;
}

void check_device(Device device) {
  if (device.is_cpu()) return;
  const int count = cuda_device_count();
  PIT_CHECK(count > 0, "device ", device, " was requested, but no CUDA device is available (",
            PIT_WITH_CUDA ? "no GPU or driver found" : "pit was built without CUDA",
            "); use device cpu");
  PIT_CHECK(device.index >= 0 && device.index < count, "device ", device,
            " is out of range: this machine has ", count, " CUDA device(s), cuda:0 to cuda:",
            count - 1);
  cuda::require_built_for(device.index);
}

int cuda_compute_capability(Device device) {
  PIT_CHECK(device.is_cuda(), "cuda_compute_capability: ", device, " is not a CUDA device");
  check_device(device);
  return cuda::compute_capability(device.index);
}

void use_device(Device device) {
  PIT_CHECK(device.is_cuda(), "use_device: ", device, " is not a CUDA device");
  check_device(device);
  cuda::set_device(device.index);
}

void StreamRef::synchronize() const {
  if (device.is_cuda()) cuda::stream_synchronize(*this);
}

Stream::Stream(Device device) : device_(device) {
  PIT_CHECK(device.is_cuda(), "a Stream needs a CUDA device, got ", device);
  check_device(device);
  handle_ = cuda::stream_create(device.index);
}

Stream::~Stream() {
  if (handle_) cuda::stream_destroy(handle_);
}

Stream::Stream(Stream&& other) noexcept : device_(other.device_), handle_(other.handle_) {
  other.handle_ = nullptr;
}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (handle_) cuda::stream_destroy(handle_);
    device_ = other.device_;
    handle_ = other.handle_;
    other.handle_ = nullptr;
  }
  return *this;
}

namespace {
// Current stream per CUDA device index, per thread. Absent means the legacy default stream.
thread_local std::unordered_map<int, void*> t_current_streams;
}  // namespace

StreamRef current_stream(Device device) {
  if (device.is_cpu()) return {device, nullptr};
  const auto it = t_current_streams.find(device.index);
  return {device, it == t_current_streams.end() ? nullptr : it->second};
}

StreamGuard::StreamGuard(StreamRef stream) : previous_(current_stream(stream.device)) {
  if (stream.device.is_cuda()) t_current_streams[stream.device.index] = stream.handle;
}

StreamGuard::~StreamGuard() {
  if (previous_.device.is_cuda()) t_current_streams[previous_.device.index] = previous_.handle;
}

}  // namespace pit
