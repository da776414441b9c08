#pragma once
// CUDA gather_entry_rows (ops/pit/cuda/entry_rows.cu): the contract of ops/pit/entry_rows.h on
// `stream`; inputs validated by ops/pit/entry_rows.cpp (src contiguous, out its dtype and device).
#include "core/device.h"
#include "ops/pit/entry_rows.h"

namespace pit::sparse::cuda {

void gather_entry_rows(const Tensor& src, const RowSetIndex& idx, Tensor& out, StreamRef stream);

}  // namespace pit::sparse::cuda
