#pragma once
// A matrix's rows gathered once into the order of a row-set index's entries, so that the GEMMs
// after it read a compact A (whole boxes by TMA) instead of gathering rows themselves: MoE's x and
// dy (ops/pit/moe.cpp, PIT_MOE_COMPACT_ROWS).
#include "core/tensor.h"
#include "ops/pit/index.h"

namespace pit::sparse {

// out[e, :] = src[idx.rows[e], :] for every listed entry e < idx.offsets[idx.num_segments]; out is
// [idx.rows.numel(), D], src's dtype and device, and its rows past the count hold whatever was in
// memory (the consumers never read them). src [R, D]: f32, bf16, f16 or f64; idx on src's device
// with rows in [0, R) (a row out of range throws on the CPU; on CUDA the kernel records it for the
// next synchronisation, core/device_error.h, and writes nothing for that entry). On CUDA on the
// current stream, without host synchronisation (the count is read on the device).
Tensor gather_entry_rows(const Tensor& src, const RowSetIndex& idx);

}  // namespace pit::sparse
