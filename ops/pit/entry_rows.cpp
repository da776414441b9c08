// sparse::gather_entry_rows (ops/pit/entry_rows.h): validation (each message names the problem and
// the fix), the CPU copy, the CUDA kernel (ops/pit/cuda/entry_rows.cu).
#include "ops/pit/entry_rows.h"

#include <cstring>

#if PIT_WITH_CUDA
#include "ops/pit/cuda/entry_rows.h"
#endif

namespace pit::sparse {

Tensor gather_entry_rows(const Tensor& src_in, const RowSetIndex& idx) {
  constexpr const char* op = "gather_entry_rows";
  PIT_CHECK(src_in.defined() && src_in.dim() == 2, op, ": src must be a matrix [rows, D], got ",
            shape_of(src_in));
  const Device dev = src_in.device();
  check_row_set(idx, dev, op, "pass a row-set index built on src's device (e.g. rows_from_routing)");
  const Tensor src = src_in.contiguous();
  Tensor out = Tensor::empty({idx.rows.numel(), src.size(1)}, src.dtype(), dev);
  if (dev.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::gather_entry_rows(src, idx, out, current_stream(dev));
    return out;
#else
    PIT_THROW(op, ": built without CUDA");
#endif
  }
  const int32_t* rows = idx.rows.data<int32_t>();
  const int64_t count = idx.offsets.data<int32_t>()[idx.num_segments], n = src.size(0);
  PIT_CHECK(count >= 0 && count <= idx.rows.numel(), op, ": the index lists ", count, " entries but holds ",
            idx.rows.numel(), "; rebuild it");
  const size_t row_bytes = static_cast<size_t>(src.size(1)) * dtype_size(src.dtype());
  const auto* from = static_cast<const char*>(src.data_ptr());
  auto* to = static_cast<char*>(out.data_ptr());
  for (int64_t e = 0; e < count; ++e) {
    PIT_CHECK(rows[e] >= 0 && rows[e] < n, op, ": entry ", e, " names row ", rows[e], " of a source with ", n,
              " rows; build the index over this tensor's rows");
    if (row_bytes > 0) std::memcpy(to + e * row_bytes, from + rows[e] * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace pit::sparse
