// Deferred device-side errors, the host half that needs no GPU: the kind registry, the
// message, taking a record out of a slot, and check_device_errors (core/device.h).
#include "core/device_error.h"

#include <atomic>
#include <deque>
#include <mutex>

#include "core/cuda/backend.h"
#include "core/error.h"

namespace pit {
namespace {

struct Registry {
  std::mutex mutex;
  std::deque<DeviceErrorKind> kinds;  // id i + 1 is kinds[i]; a deque keeps references stable
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: kernels may report during exit
  return *r;
}

}  // namespace

int32_t register_device_error_kind(DeviceErrorKind kind) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.kinds.push_back(std::move(kind));
  return static_cast<int32_t>(r.kinds.size());
}

namespace detail {

std::string format_device_error(const DeviceErrorSlot& rec, Device device) {
  DeviceErrorKind kind;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (rec.kind > 0 && static_cast<size_t>(rec.kind) <= r.kinds.size())
      kind = r.kinds[static_cast<size_t>(rec.kind) - 1];
    else
      kind.op = str_cat("an op with unknown device error kind ", rec.kind);
  }
  const std::string axis = kind.axis.empty() ? str_cat("dim ", rec.dim) : kind.axis;
  const int64_t lo = kind.from_end ? -rec.size : 0;
  return str_cat(kind.value, ' ', rec.value, " is out of range for ", kind.op, " along ", axis,
                 " of size ", rec.size, " (valid: [", lo, ", ", rec.size, ")", kind.valid_extra,
                 "; at ", kind.position, ' ', rec.position, "; detected on ", device,
                 " by a kernel queued earlier: ", kind.value,
                 " values are checked on the device without a synchronisation, so the error "
                 "surfaces at the next host read)",
                 kind.fix.empty() ? std::string() : "; " + kind.fix);
}

std::optional<std::string> take_device_error(DeviceErrorSlot& slot, Device device) {
  std::atomic_ref<uint32_t> ready(slot.ready);
  if (ready.load(std::memory_order_acquire) == 0) return std::nullopt;  // the common case
  // Exactly one host thread takes a record. The device writes nothing while ready is 1 or
  // while the epoch is not yet advanced (its claim for this epoch is taken), so the fields
  // stay put until the epoch store below.
  uint32_t expected = 1;
  if (!ready.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return std::nullopt;
  std::atomic_ref<uint32_t> epoch(slot.epoch);
  DeviceErrorSlot record{};
  record.epoch = epoch.load(std::memory_order_relaxed);
  record.kind = slot.kind;
  record.dim = slot.dim;
  record.value = slot.value;
  record.size = slot.size;
  record.position = slot.position;
  epoch.store(record.epoch + 1, std::memory_order_release);  // frees the claim: recording resumes
  return format_device_error(record, device);
}

}  // namespace detail

void check_device_errors(Device device) {
  if (device.is_cuda()) cuda::check_device_errors(device.index);
}

}  // namespace pit
