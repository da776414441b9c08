#pragma once
// CPU kernels of core: strided copy with conversion, fill, arange, random draws.
#include <cstdint>

#include "core/strided.h"

namespace pit::cpu {

void copy_strided(const StridedDesc& dst, const StridedDesc& src);
// dst += alpha * src element-wise (floating dst).
void add_strided(const StridedDesc& dst, const StridedDesc& src, double alpha);
void fill(void* data, int64_t n, DType dtype, double value);
void arange(void* data, int64_t n, DType dtype, double start, double step);
void random_uniform(void* data, int64_t n, DType dtype, uint64_t seed, uint64_t offset);
void random_normal(void* data, int64_t n, DType dtype, uint64_t seed, uint64_t offset);

}  // namespace pit::cpu
