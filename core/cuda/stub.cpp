// The CUDA backend of a build without CUDA: no devices, and a clear error for anything else.
#include "core/cuda/backend.h"

namespace pit::cuda {
namespace {
[[noreturn]] void no_cuda() {
  PIT_THROW("pit was built without CUDA (PIT_CUDA=OFF or no nvcc at configure time); rebuild "
            "with -DPIT_CUDA=ON to use CUDA devices");
}
}  // namespace

int device_count() { return 0; }
void set_device(int) { no_cuda(); }
void require_built_for(int) { no_cuda(); }
int compute_capability(int) { no_cuda(); }
void* stream_create(int) { no_cuda(); }
void stream_destroy(void*) noexcept {}
void stream_synchronize(StreamRef) { no_cuda(); }
void* allocate(size_t, int, void*) { no_cuda(); }
void deallocate(void*) noexcept {}
MemoryStats memory_stats(int) { no_cuda(); }
void reset_peak_memory(int) { no_cuda(); }
void empty_cache() {}
DeviceErrorSink device_error_sink(int, int32_t, int32_t) { no_cuda(); }
void check_device_errors(int) {}  // nothing can have been recorded
void memcpy_h2d(void*, const void*, size_t, StreamRef) { no_cuda(); }
void memcpy_d2h(void*, const void*, size_t, StreamRef) { no_cuda(); }
void memcpy_d2d(void*, int, const void*, int, size_t, StreamRef) { no_cuda(); }
void copy_strided(const StridedDesc&, const StridedDesc&, StreamRef) { no_cuda(); }
void add_strided(const StridedDesc&, const StridedDesc&, double, StreamRef) { no_cuda(); }
void fill(void*, int64_t, DType, double, StreamRef) { no_cuda(); }
void arange(void*, int64_t, DType, double, double, StreamRef) { no_cuda(); }
void random(void*, int64_t, DType, Distribution, uint64_t, uint64_t, StreamRef) { no_cuda(); }

}  // namespace pit::cuda
