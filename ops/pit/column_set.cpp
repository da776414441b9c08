// Column sets of K-list operands (ops/pit/column_set.h): checks, then the CPU loops
// (ops/pit/cpu/column_set.cpp) or the CUDA kernels (ops/pit/cuda/column_set.cu).
#include "ops/pit/column_set.h"

#include "ops/pit/cpu/column_set.h"
#if PIT_WITH_CUDA
#include "ops/pit/cuda/column_set.h"
#endif

namespace pit::sparse {
namespace {

void check_klist(const KListIndex& a, const char* op) {
  PIT_CHECK(a.offsets.defined() && a.k.defined(), op, ": the K-list index is empty (detect it first)");
}

void check_set(const ColumnSet& cs, const Tensor& like, const char* op) {
  PIT_CHECK(cs.pos.defined() && cs.set.rows.defined() && cs.set.offsets.defined(), op,
            ": the column set is empty (make it with column_set)");
  PIT_CHECK(cs.pos.device() == like.device(), op, ": the column set is on ", cs.pos.device().str(), " but the operand on ",
            like.device().str());
}

}  // namespace

ColumnSet column_set(const KListIndex& a) {
  check_klist(a, "column_set");
  if (!a.offsets.is_cuda()) return cpu::column_set(a);
#if PIT_WITH_CUDA
  return cuda::column_set(a, current_stream(a.offsets.device()));
#else
  PIT_THROW("column_set: built without CUDA");
#endif
}

Tensor set_columns_t(const KListIndex& a, const ColumnSet& cs) {
  const char* op = "set_columns_t";
  check_klist(a, op);
  PIT_CHECK(a.values.defined(), op, ": the K-list index has no values (detect with values)");
  check_set(cs, a.values, op);
  PIT_CHECK(cs.pos.numel() == a.cols, op, ": the column set is for ", cs.pos.numel(), " columns, the index has ",
            a.cols);
  if (!a.values.is_cuda()) return cpu::set_columns_t(a, cs);
#if PIT_WITH_CUDA
  return cuda::set_columns_t(a, cs, current_stream(a.values.device()));
#else
  PIT_THROW(op, ": built without CUDA");
#endif
}

Tensor rows_to_columns(const Tensor& rows_in, const ColumnSet& cs, const Tensor& mask_in) {
  const char* op = "rows_to_columns";
  PIT_CHECK(rows_in.defined() && rows_in.dim() == 2, op, ": rows must be a 2-D [K, L] tensor");
  check_set(cs, rows_in, op);
  PIT_CHECK(rows_in.size(0) == cs.pos.numel(), op, ": rows has ", rows_in.size(0), " rows; the column set is for ",
            cs.pos.numel(), " columns");
  PIT_CHECK(!mask_in.defined() || (mask_in.shape() == rows_in.shape() && mask_in.dtype() == rows_in.dtype() &&
                                   mask_in.device() == rows_in.device()),
            op, ": the mask must be laid out like rows (", shape_str(rows_in.shape()), ", ", dtype_name(rows_in.dtype()),
            ")");
  const Tensor rows = rows_in.contiguous();
  const Tensor mask = mask_in.defined() ? mask_in.contiguous() : Tensor();
  if (!rows.is_cuda()) return cpu::rows_to_columns(rows, cs, mask);
#if PIT_WITH_CUDA
  return cuda::rows_to_columns(rows, cs, mask, current_stream(rows.device()));
#else
  PIT_THROW(op, ": built without CUDA");
#endif
}

}  // namespace pit::sparse
