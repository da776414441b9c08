#pragma once
// CUDA side of ops/pit/column_set.h, on `stream`, without host synchronisation. Inputs validated
// by ops/pit/column_set.cpp.
#include "core/device.h"
#include "core/tensor.h"
#include "ops/pit/column_set.h"

namespace pit::sparse::cuda {

ColumnSet column_set(const KListIndex& a, StreamRef stream);
Tensor set_columns_t(const KListIndex& a, const ColumnSet& cs, StreamRef stream);
Tensor rows_to_columns(const Tensor& rows, const ColumnSet& cs, const Tensor& mask, StreamRef stream);

}  // namespace pit::sparse::cuda
