// CPU column sets (ops/pit/column_set.h): plain loops, the reference for the CUDA kernels.
#include "ops/pit/cpu/column_set.h"

#include <vector>

#include "core/thread_pool.h"
#include "ops/pit/cpu/detect.h"

namespace pit::sparse::cpu {

ColumnSet column_set(const KListIndex& a) {
  const int64_t nb = a.offsets.numel() - 1, cols = a.cols;
  const int32_t* off = a.offsets.data<int32_t>();
  const int32_t* k = a.k.data<int32_t>();
  std::vector<uint8_t> flag(static_cast<size_t>(cols), 0);
  for (int64_t j = 0; j < off[nb]; ++j) flag[static_cast<size_t>(k[j])] = 1;
  ColumnSet cs;
  cs.set.rows = Tensor::empty({cols}, DType::i32, Device::cpu());
  cs.set.offsets = Tensor::empty({2}, DType::i32, Device::cpu());
  cs.set.num_rows = cols;
  cs.set.num_segments = 1;
  cs.pos = Tensor::empty({cols}, DType::i32, Device::cpu());
  int32_t* rows = cs.set.rows.data<int32_t>();
  int32_t* pos = cs.pos.data<int32_t>();
  int32_t count = 0;
  for (int64_t c = 0; c < cols; ++c) {
    pos[c] = flag[static_cast<size_t>(c)] ? count : -1;
    if (flag[static_cast<size_t>(c)]) rows[count++] = static_cast<int32_t>(c);
  }
  for (int64_t c = count; c < cols; ++c) rows[c] = 0;
  cs.set.offsets.data<int32_t>()[0] = 0;
  cs.set.offsets.data<int32_t>()[1] = count;
  return cs;
}

Tensor set_columns_t(const KListIndex& a, const ColumnSet& cs) {
  const int64_t nb = a.offsets.numel() - 1, m = a.rows, r = a.block_rows;
  Tensor out = zeros({a.cols, m}, a.values.dtype());
  const int32_t* off = a.offsets.data<int32_t>();
  const int32_t* k = a.k.data<int32_t>();
  const int32_t* pos = cs.pos.data<int32_t>();
  dispatch_floating(a.values.dtype(), "set_columns_t", [&]<typename T>() {
    const T* v = static_cast<const T*>(a.values.data_ptr());
    T* o = out.data<T>();
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t j = off[b]; j < off[b + 1]; ++j) {
        PIT_CHECK(pos[k[j]] >= 0, "set_columns_t: column ", k[j], " has a listed micro-tile but is not in the "
                  "column set; make the set from this index (column_set(a))");
        for (int64_t i = 0; i < r && b * r + i < m; ++i) o[pos[k[j]] * m + b * r + i] = v[j * r + i];
      }
  });
  return out;
}

Tensor rows_to_columns(const Tensor& rows, const ColumnSet& cs, const Tensor& mask) {
  const int64_t cols = rows.size(0), l_total = rows.size(1);
  Tensor out = zeros({l_total, cols}, rows.dtype());
  const int32_t* pos = cs.pos.data<int32_t>();
  dispatch_floating(rows.dtype(), "rows_to_columns", [&]<typename T>() {
    const T* in = static_cast<const T*>(rows.data_ptr());
    const T* mk = mask.defined() ? static_cast<const T*>(mask.data_ptr()) : nullptr;
    T* o = out.data<T>();
    parallel_for(0, l_total, 64, [&](int64_t l0, int64_t l1) {
      for (int64_t l = l0; l < l1; ++l)
        for (int64_t c = 0; c < cols; ++c) {
          if (pos[c] < 0) continue;
          const int64_t at = pos[c] * l_total + l;
          if (mk == nullptr || nonzero(mk[at])) o[l * cols + c] = in[at];
        }
    });
  });
  return out;
}

}  // namespace pit::sparse::cpu
