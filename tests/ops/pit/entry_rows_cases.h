#pragma once
// sparse::gather_entry_rows (ops/pit/entry_rows.h) on fresh random rows: every listed entry's row
// equals its source row bit for bit, over routings with idle experts, one expert taking every token,
// dropped slots (-1) and tokens naming one expert twice; D ragged (1, 37: rows not 16-byte
// multiples) and aligned (64, 1024), the source one element off a 16-byte boundary too; no tokens;
// u8 sources among the dtypes (odd rows at odd addresses: byte copies).
// Run on the CPU (entry_rows_test.cpp) and CUDA (entry_rows_cuda_test.cpp).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ops/pit/detect.h"
#include "ops/pit/entry_rows.h"
#include "tests/ops/pit/moe_cases.h"
#include "tests/ops/pit/moe_grad_cases.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

struct EntryRowsCase {
  int64_t tokens, k, experts, d;
  Routing routing;
};

inline const EntryRowsCase kEntryRowsCases[] = {
    {37, 1, 4, 37, Routing::uniform},       {130, 2, 6, 64, Routing::skewed},
    {77, 2, 8, 1024, Routing::some_idle},   {90, 2, 5, 1, Routing::all_on_one},
    {101, 3, 4, 37, Routing::with_drops},   {0, 2, 4, 64, Routing::uniform},
    {300, 2, 16, 1024, Routing::with_drops},
};

// The listed entries' rows of out against src's rows named by the index, compared as f64 (exact
// for every dtype here); `what` names the case in a failure.
inline void expect_entry_rows(const Tensor& out, const Tensor& src, const sparse::RowSetIndex& idx,
                              const std::string& what) {
  const std::vector<int32_t> rows = idx.rows.to(Device::cpu()).to_vector<int32_t>();
  const std::vector<int32_t> off = idx.offsets.to(Device::cpu()).to_vector<int32_t>();
  const int64_t count = off.back(), d = src.size(1);
  ASSERT_EQ(out.size(0), static_cast<int64_t>(rows.size())) << what;
  ASSERT_EQ(out.size(1), d) << what;
  ASSERT_EQ(out.dtype(), src.dtype()) << what;
  const std::vector<double> got = out.to(Device::cpu()).to(DType::f64).to_vector<double>();
  const std::vector<double> want = src.to(Device::cpu()).to(DType::f64).to_vector<double>();
  for (int64_t e = 0; e < count; ++e)
    for (int64_t j = 0; j < d; ++j)
      ASSERT_EQ(got[e * d + j], want[rows[e] * d + j]) << what << ": entry " << e << " (row " << rows[e] << "), column " << j;
}

// Bytes 0-255 at random: u8 rows of odd length, copied a byte at a time.
inline Tensor random_bytes(const Shape& shape, uint64_t seed, Device dev) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int32_t> u(0, 255);
  std::vector<int32_t> v(static_cast<size_t>(shape_numel(shape)));
  for (auto& b : v) b = u(gen);
  return from_vector(v, shape).to(dev, DType::u8);
}

inline void run_entry_rows_cases(Device dev, const std::vector<DType>& dtypes) {
  uint64_t seed = 500;
  for (const EntryRowsCase& c : kEntryRowsCases) {
    const MoeGradCase g{c.tokens, c.k, c.experts, c.d, c.routing, c.k > 1 && c.routing != Routing::all_on_one,
                        UnaryOp::relu};
    const std::vector<int64_t> ids = moe_grad_routing(g, ++seed);
    const sparse::RowSetIndex idx = sparse::rows_from_routing(from_vector(ids, {c.tokens, c.k}).to(dev), c.experts);
    for (const DType dt : dtypes) {
      const Tensor src = dt == DType::u8 ? random_bytes({c.tokens, c.d}, ++seed, dev)
                                         : dense_random({c.tokens, c.d}, ++seed, dt, dev);
      const std::string what = std::string(dtype_name(dt)) + " T=" + std::to_string(c.tokens) + " k=" +
                               std::to_string(c.k) + " D=" + std::to_string(c.d) + " " + routing_name(c.routing);
      expect_entry_rows(sparse::gather_entry_rows(src, idx), src, idx, what);
      const Tensor shifted = off_boundary(src);
      expect_entry_rows(sparse::gather_entry_rows(shifted, idx), shifted, idx, what + " (off a 16-byte boundary)");
    }
  }
}

// An index with one row past the source's 4 rows (entry 2 of 3).
inline sparse::RowSetIndex index_past_the_rows(Device dev) {
  sparse::RowSetIndex idx;
  idx.rows = from_vector(std::vector<int32_t>{0, 3, 4}, dev);
  idx.offsets = from_vector(std::vector<int32_t>{0, 1, 3}, dev);
  idx.num_rows = 4;
  idx.num_segments = 2;
  return idx;
}

}  // namespace pit::test
