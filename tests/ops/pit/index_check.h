#pragma once
// Checks a detected index against lists built here by brute force from the operand's values
// (shared by the CPU and CUDA detection tests). Indices may live on any device.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ops/pit/detect.h"

namespace pit::test {

inline std::vector<int32_t> ints(const Tensor& t) { return t.to(Device::cpu()).to_vector<int32_t>(); }

// a: the operand's values (row-major [rows, cols], f64), mask: empty or the same size.
inline void check_tiles(const std::vector<double>& a, const std::vector<double>& mask, int64_t rows,
                        int64_t cols, int64_t tr, int64_t tc, const Tensor& offsets_t,
                        const Tensor& cols_t, const Tensor& values_t, const Tensor& t_offsets_t,
                        const Tensor& t_rows_t, const Tensor& t_pos_t, bool transposed, const std::string& what) {
  const int64_t nbr = (rows + tr - 1) / tr, nbc = (cols + tc - 1) / tc;
  std::vector<uint8_t> flag(static_cast<size_t>(nbr * nbc), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t e = static_cast<size_t>(r * cols + c);
      if (mask.empty() ? a[e] != 0.0 : mask[e] != 0.0) flag[static_cast<size_t>((r / tr) * nbc + c / tc)] = 1;
    }
  const std::vector<int32_t> off = ints(offsets_t), col = ints(cols_t);
  ASSERT_EQ(static_cast<int64_t>(off.size()), nbr + 1) << what;
  ASSERT_GE(static_cast<int64_t>(col.size()), nbr * nbc) << what << ": capacity";
  ASSERT_EQ(off[0], 0) << what;
  std::vector<int32_t> pos(static_cast<size_t>(nbr * nbc), -1);
  std::vector<double> vals;
  if (values_t.defined()) vals = values_t.to(Device::cpu(), DType::f64).contiguous().to_vector<double>();
  int64_t j = 0;
  for (int64_t i = 0; i < nbr; ++i) {
    ASSERT_EQ(off[static_cast<size_t>(i)], j) << what << ": offsets[" << i << "]";
    for (int64_t c = 0; c < nbc; ++c) {
      if (!flag[static_cast<size_t>(i * nbc + c)]) continue;
      ASSERT_EQ(col[static_cast<size_t>(j)], c) << what << ": block row " << i << ", entry " << j;
      pos[static_cast<size_t>(i * nbc + c)] = static_cast<int32_t>(j);
      if (!vals.empty())
        for (int64_t y = 0; y < tr; ++y)
          for (int64_t x = 0; x < tc; ++x) {
            const int64_t r = i * tr + y, cc = c * tc + x;
            double want = 0.0;
            if (r < rows && cc < cols) {
              const size_t e = static_cast<size_t>(r * cols + cc);
              want = (mask.empty() || mask[e] != 0.0) ? a[e] : 0.0;
            }
            const double got = vals[static_cast<size_t>((j * tr + y) * tc + x)];
            ASSERT_EQ(got, want) << what << ": value of entry " << j << " at (" << y << ", " << x << ")";
          }
      ++j;
    }
  }
  ASSERT_EQ(off[static_cast<size_t>(nbr)], j) << what << ": total count";
  // The transposed lists exactly when they were asked for (a detector that ignores the request
  // must not pass by having nothing to check).
  ASSERT_EQ(t_offsets_t.defined(), transposed) << what << ": transposed lists";
  if (!transposed) return;
  const std::vector<int32_t> toff = ints(t_offsets_t), trow = ints(t_rows_t), tpos = ints(t_pos_t);
  ASSERT_EQ(static_cast<int64_t>(toff.size()), nbc + 1) << what;
  int64_t t = 0;
  for (int64_t c = 0; c < nbc; ++c) {
    ASSERT_EQ(toff[static_cast<size_t>(c)], t) << what << ": t_offsets[" << c << "]";
    for (int64_t i = 0; i < nbr; ++i) {
      if (!flag[static_cast<size_t>(i * nbc + c)]) continue;
      ASSERT_EQ(trow[static_cast<size_t>(t)], i) << what << ": transposed entry " << t;
      ASSERT_EQ(tpos[static_cast<size_t>(t)], pos[static_cast<size_t>(i * nbc + c)]) << what << ": t_pos " << t;
      ++t;
    }
  }
  ASSERT_EQ(toff[static_cast<size_t>(nbc)], t) << what;
}

inline std::vector<double> host(const Tensor& t) {
  return t.to(Device::cpu(), DType::f64).contiguous().to_vector<double>();
}

// transposed: whether the detection was asked for the transposed lists.
inline void check_klist(const sparse::KListIndex& idx, const Tensor& a, const Tensor& mask, bool transposed,
                        const std::string& what) {
  check_tiles(host(a), mask.defined() ? host(mask) : std::vector<double>{}, idx.rows, idx.cols,
              idx.block_rows, 1, idx.offsets, idx.k, idx.values, idx.t_offsets, idx.t_blocks,
              idx.t_pos, transposed, what);
}

inline void check_blocks(const sparse::BlockListIndex& idx, const Tensor& a, const Tensor& mask, bool transposed,
                         const std::string& what) {
  const Tensor v = idx.values.defined() ? idx.values.reshape({idx.values.size(0), -1}) : Tensor();
  check_tiles(host(a), mask.defined() ? host(mask) : std::vector<double>{}, idx.rows, idx.cols,
              idx.block, idx.block, idx.offsets, idx.col, v, idx.t_offsets, idx.t_rows, idx.t_pos, transposed,
              what);
}

// Row sets: segment s lists, ascending, the rows whose columns [s*w, s*w + w) hold a non-zero
// of `pattern` (w = cols when segment_cols is 0); a row mask is [rows].
inline void check_rows(const sparse::RowSetIndex& idx, const std::vector<double>& pattern, int64_t rows,
                       int64_t cols, bool row_mask, const std::string& what) {
  const int64_t w = idx.segment_cols > 0 ? idx.segment_cols : std::max<int64_t>(cols, 1);
  const int64_t nseg = idx.segment_cols > 0 ? std::max<int64_t>(1, (cols + w - 1) / w) : 1;
  ASSERT_EQ(idx.num_segments, nseg) << what;
  ASSERT_EQ(idx.num_rows, rows) << what;
  const std::vector<int32_t> off = ints(idx.offsets), got = ints(idx.rows);
  ASSERT_EQ(static_cast<int64_t>(off.size()), nseg + 1) << what;
  int64_t j = 0;
  for (int64_t s = 0; s < nseg; ++s) {
    ASSERT_EQ(off[static_cast<size_t>(s)], j) << what << ": offsets[" << s << "]";
    for (int64_t r = 0; r < rows; ++r) {
      bool nz = false;
      if (row_mask) {
        nz = pattern[static_cast<size_t>(r)] != 0.0;
      } else {
        for (int64_t c = s * w; c < std::min(cols, s * w + w); ++c)
          nz = nz || pattern[static_cast<size_t>(r * cols + c)] != 0.0;
      }
      if (!nz) continue;
      ASSERT_EQ(got[static_cast<size_t>(j)], r) << what << ": segment " << s << ", entry " << j;
      ++j;
    }
  }
  ASSERT_EQ(off[static_cast<size_t>(nseg)], j) << what;
}

// Routing: segment e lists (t, j) with expert_of[t, j] == e, ascending; weights = gates.
inline void check_routing(const sparse::RowSetIndex& idx, const std::vector<int64_t>& ids, int64_t t_count,
                          int64_t k, int64_t experts, const std::vector<double>& gates,
                          const std::string& what) {
  const std::vector<int32_t> off = ints(idx.offsets), rows = ints(idx.rows);
  std::vector<double> w;
  if (!gates.empty()) w = host(idx.weights);
  ASSERT_EQ(static_cast<int64_t>(off.size()), experts + 1) << what;
  int64_t j = 0;
  for (int64_t e = 0; e < experts; ++e) {
    ASSERT_EQ(off[static_cast<size_t>(e)], j) << what << ": offsets[" << e << "]";
    for (int64_t t = 0; t < t_count; ++t)
      for (int64_t q = 0; q < k; ++q) {
        if (ids[static_cast<size_t>(t * k + q)] != e) continue;
        ASSERT_EQ(rows[static_cast<size_t>(j)], t) << what << ": expert " << e << " entry " << j;
        if (!gates.empty()) {
          ASSERT_FLOAT_EQ(w[static_cast<size_t>(j)], gates[static_cast<size_t>(t * k + q)]) << what;
        }
        ++j;
      }
  }
  ASSERT_EQ(off[static_cast<size_t>(experts)], j) << what;
}

}  // namespace pit::test
