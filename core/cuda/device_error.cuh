#pragma once
// Device side of the deferred device-side errors (protocol: core/device_error.h). A kernel takes
// a DeviceErrorSink argument (cuda::device_error_sink) and, where a value it has loaded anyway
// is out of range, calls record_device_error and then carries on safely. The check costs the
// kernel a compare; the recording runs only for bad values. It is inlined: an out-of-line call
// makes the caller keep its live values across the call ABI, which took the block-per-row
// cross_entropy forward from 29 to 48 registers (half the resident warps); inlined, the cold
// branch adds no register to any kernel that uses it (ptxas -v, sm_90a).
#include <cstdint>

#include "core/device_error.h"

namespace pit::cuda {

// Records (value, size, position) unless an error is already recorded; first error wins. Of the
// threads of a warp that arrive together, only the lowest lane tries (they would lose anyway),
// which keeps a tensor full of bad values from flooding the bus with reads of the host slot.
__device__ __forceinline__ void record_device_error(DeviceErrorSink sink, int64_t value,
                                                    int64_t size, int64_t position) {
  unsigned lane;
  asm volatile("mov.u32 %0, %%laneid;" : "=r"(lane));
  if (lane != static_cast<unsigned>(__ffs(__activemask()) - 1)) return;
  DeviceErrorSlot* slot = sink.slot;
  const uint32_t epoch = *reinterpret_cast<volatile uint32_t*>(&slot->epoch);
  if (*reinterpret_cast<volatile uint32_t*>(sink.claim) != epoch) return;  // taken: skip the atomic
  if (atomicCAS(sink.claim, epoch, epoch + 1) != epoch) return;
  volatile DeviceErrorSlot* s = slot;
  s->kind = sink.kind;
  s->dim = sink.dim;
  s->value = value;
  s->size = size;
  s->position = position;
  __threadfence_system();  // the host sees the fields before `ready`
  s->ready = 1;
}

}  // namespace pit::cuda
