#pragma once
// Deferred device-side errors: how a CUDA kernel reports a bad input (an index out of range, a
// class target outside [0, C)) without the host synchronising to check it first.
//
// Each CUDA device has one error slot in mapped pinned host memory (allocated on first use,
// never freed). A kernel that meets a bad value records it there, first error wins, then goes on
// safely (skips the element, writes 0 or NaN). The host looks at the slot whenever it
// synchronises with the device anyway (the device-to-host copy behind Tensor::to(cpu), item(),
// to_vector(), and StreamRef::synchronize), and throws a pit::Error built from the record,
// clearing the slot. check_device_errors(Device) (core/device.h) looks without synchronising.
//
// Protocol (no atomic operation ever touches host memory, whose atomics some PCIe platforms
// split into a load and a store):
// - the host owns `epoch`: it adds 1 each time it takes a record;
// - a device word `claim` (device memory, one per device) holds the epoch whose record has been
//   claimed, plus one. A recording thread reads e = epoch and wins when
//   atomicCAS(claim, e, e + 1) == e; it writes the fields, fences, then sets `ready` to 1.
//   Everyone else drops their error: the first one recorded is the one reported;
// - the host, seeing ready == 1 (after its synchronisation, the writes of finished kernels are
//   visible), takes the fields, sets ready to 0, then epoch + 1, which frees the claim again.
// Errors recorded while a report is pending are dropped: after the exception, the next host
// read starts clean.
//
// This header is plain C++: device code includes it for the layouts (core/cuda/device_error.cuh
// records), the host side is core/device_error.cpp (format, take) and core/cuda/device_error.cu
// (the slots).
#include <cstdint>
#include <optional>
#include <string>

#include "core/device.h"

namespace pit {

// The error slot of one device, in mapped pinned host memory. Written by at most one device
// thread per epoch; read and cleared by the host.
struct DeviceErrorSlot {
  uint32_t epoch;     // host-written: records taken so far
  uint32_t ready;     // 1 once the fields below hold a complete record
  int32_t kind;       // a register_device_error_kind() id
  int32_t dim;        // the dim the value indexes (for the message)
  int64_t value;      // the offending value (an index, a class target)
  int64_t size;       // the size it must index
  int64_t position;   // where it was met (an element of the index, a row)
};

// What a kernel needs to record an error; passed to it by value (cuda::device_error_sink).
struct DeviceErrorSink {
  DeviceErrorSlot* slot = nullptr;  // device pointer of the device's slot
  uint32_t* claim = nullptr;        // the device's claim word, in device memory
  int32_t kind = 0;
  int32_t dim = 0;
};

// How to word the error of one kind of check. Message:
//   "<value> <v> is out of range for <op> along <axis | dim D> of size <n> (valid: [lo, n)<valid_extra>;
//    <position> <p>; detected on cuda:N by a kernel queued earlier ...); <fix>"
struct DeviceErrorKind {
  std::string op;              // "gather"
  std::string value = "index"; // what the bad value is: "index", "target"
  std::string axis;            // empty: "dim D"; else this text, e.g. "the class dim"
  std::string position = "element";  // what the position counts: "element of the index", "row"
  bool from_end = false;       // negative values count from the end: valid [-n, n), else [0, n)
  std::string valid_extra;     // appended to the valid range, e.g. " or ignore_index"
  std::string fix;             // what to do
};

// Registers a kind once (e.g. from a function-local static in the launcher) and returns its id
// (> 0), the `kind` a kernel records. Thread-safe; ids stay valid for the process.
int32_t register_device_error_kind(DeviceErrorKind kind);

namespace detail {
// The message of a record; kind ids that were never registered are named as such.
std::string format_device_error(const DeviceErrorSlot& record, Device device);
// If `slot` holds a complete record: takes it (clears the slot, frees the claim for the next
// epoch) and returns its message; else nullopt. Thread-safe against other takers and against
// kernels recording into the slot meanwhile.
std::optional<std::string> take_device_error(DeviceErrorSlot& slot, Device device);
}  // namespace detail

}  // namespace pit
