#pragma once
// CPU side of ops/pit/column_set.h (the reference and the CPU path). Inputs validated by
// ops/pit/column_set.cpp.
#include "core/tensor.h"
#include "ops/pit/column_set.h"

namespace pit::sparse::cpu {

ColumnSet column_set(const KListIndex& a);
Tensor set_columns_t(const KListIndex& a, const ColumnSet& cs);
Tensor rows_to_columns(const Tensor& rows, const ColumnSet& cs, const Tensor& mask);

}  // namespace pit::sparse::cpu
