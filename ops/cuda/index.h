#pragma once
// CUDA gather / scatter-add along one dim (see ops/cpu/index.h for the layout).
//
// Index checks: an index outside [-n, n) is recorded in the device's error slot
// (core/device_error.h) under the name of `op` and `dim`, and the host throws it at its next
// read (to(cpu), item(), to_vector(), a stream synchronisation); the kernel meanwhile writes 0
// for that element (gather) or skips it (scatter_add). Nothing synchronises.
#include <cstdint>

#include "core/device_error.h"
#include "core/tensor.h"

namespace pit::cuda {

// The public op a launch serves, for the error message.
enum class IndexOp { gather, index_select, scatter_add, index_add };

void gather(const Tensor& x, const Tensor& index, const int64_t index_strides[3], Tensor& out,
            int64_t outer, int64_t n, int64_t m, int64_t inner, IndexOp op, int64_t dim,
            StreamRef stream);
// scatter_add accumulates with atomics in f32 (f64 for f64): the order of additions, and so the
// last bits of f32 sums, may vary between runs. index_add (op == IndexOp::index_add, a 1-D index
// of m entries) is deterministic: it sorts the index and adds each output's sources in ascending
// position (index_add_sorted). f16/bf16 outputs accumulate in an f32 buffer, then round.
void scatter_add(Tensor& out, const Tensor& index, const int64_t index_strides[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner, IndexOp op, int64_t dim,
                 StreamRef stream);

// The deterministic index_add (ops/cuda/index_add.cu): acc (f32; f64 for f64 sources) [outer, n,
// inner] += src [outer, m, inner] rows gathered by index (i64, m entries, stride index_stride).
void index_add_sorted(Tensor& acc, const Tensor& index, int64_t index_stride, const Tensor& src,
                      int64_t outer, int64_t n, int64_t m, int64_t inner, DeviceErrorSink err,
                      StreamRef stream);

}  // namespace pit::cuda
