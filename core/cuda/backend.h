#pragma once
// The CUDA backend of core, as plain C++ (no CUDA headers): the rest of core calls these.
// Built from core/cuda/*.cpp|cu when PIT_WITH_CUDA; otherwise core/cuda/stub.cpp implements
// them by throwing an error that says pit was built without CUDA.
#include <cstddef>
#include <cstdint>

#include "core/device.h"
#include "core/device_error.h"
#include "core/dtype.h"
#include "core/memory.h"
#include "core/random.h"
#include "core/strided.h"

namespace pit::cuda {

int device_count();  // 0 without CUDA, driver or GPU; never throws
void set_device(int index);
// Throws, naming the GPU and the build's architectures, unless this build has code for `device`
// (core/cuda_arch.h); checked once per device.
void require_built_for(int device);
int compute_capability(int device);  // major * 10 + minor
void* stream_create(int device);
void stream_destroy(void* handle) noexcept;
void stream_synchronize(StreamRef stream);

// Synchronisations: stream_synchronize and memcpy_d2h then check the device's error slot
// (check_device_errors below), so a bad index recorded by a kernel surfaces there.

// Deferred device-side errors (core/cuda/device_error.cu; the protocol is in
// core/device_error.h). The sink that kernels of `kind` launched on `device` record into; the
// device's slot is allocated on first use (then this is a lookup). `dim` goes into the message.
DeviceErrorSink device_error_sink(int device, int32_t kind, int32_t dim);
// Throws the pit::Error recorded on `device`, if any, clearing the slot. Never synchronises:
// it sees what finished kernels recorded. No-op before the device's first sink, and without CUDA.
void check_device_errors(int device);

// Caching allocator (core/cuda/allocator.cpp).
void* allocate(size_t nbytes, int device, void* stream);
void deallocate(void* ptr) noexcept;  // makes no CUDA call: the block goes back to the cache
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
void empty_cache();

// Copies. memcpy_d2h returns once the data is on the host.
void memcpy_h2d(void* dst, const void* src, size_t nbytes, StreamRef stream);
void memcpy_d2h(void* dst, const void* src, size_t nbytes, StreamRef stream);
void memcpy_d2d(void* dst, int dst_device, const void* src, int src_device, size_t nbytes,
                StreamRef stream);
// Element-wise copy with dtype conversion between two strided arrays on the stream's device.
void copy_strided(const StridedDesc& dst, const StridedDesc& src, StreamRef stream);
// dst += alpha * src element-wise (floating dst), converting src to dst's dtype.
void add_strided(const StridedDesc& dst, const StridedDesc& src, double alpha, StreamRef stream);

// Fills. `value` is converted to the dtype as a C++ cast would (RNE for f16/bf16).
void fill(void* data, int64_t n, DType dtype, double value, StreamRef stream);
void arange(void* data, int64_t n, DType dtype, double start, double step, StreamRef stream);
void random(void* data, int64_t n, DType dtype, Distribution dist, uint64_t seed,
            uint64_t offset, StreamRef stream);

}  // namespace pit::cuda
