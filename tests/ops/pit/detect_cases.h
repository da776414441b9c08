#pragma once
// The detection test cases, run on the CPU (detect_test.cpp) and on CUDA (detect_cuda_test.cpp):
// ragged shapes, densities 0 .. 1, every micro-tile, dtypes, masks, transposed lists, routing.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "ops/pit/detect.h"
#include "tests/ops/pit/index_check.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

struct Shape2 {
  int64_t rows, cols;
};
inline const Shape2 kShapes[] = {{1, 1}, {7, 5}, {64, 64}, {100, 777}, {333, 128}, {257, 1000}};
inline const double kDensities[] = {0.0, 0.01, 0.1, 0.5, 1.0};

inline std::string name(const char* kind, Shape2 s, int64_t tile, double d, DType dt) {
  return std::string(kind) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " tile " +
         std::to_string(tile) + " density " + std::to_string(d) + " " + dtype_name(dt);
}

inline void run_klist_cases(Device dev, const std::vector<int64_t>& rs, const std::vector<DType>& dtypes) {
  uint64_t seed = 1;
  for (const Shape2 s : kShapes)
    for (const int64_t r : rs)
      for (const double d : kDensities)
        for (const DType dt : dtypes) {
          // Sparsity at the micro-tile, at a coarser and at a finer cover.
          for (const int64_t gen_r : {r, int64_t{1}}) {
            const Tensor a = sparse_tensor(s.rows, s.cols, gen_r, 1, d, ++seed, dt, dev);
            const bool transposed = (seed % 2) == 0;
            const sparse::KListIndex idx = sparse::detect_k_lists(a, r, {.values = true, .transposed = transposed});
            check_klist(idx, a, Tensor(), transposed, name("k-list", s, r, d, dt));
            if (::testing::Test::HasFatalFailure()) return;
          }
        }
}

inline void run_block_cases(Device dev, const std::vector<int64_t>& bs, const std::vector<DType>& dtypes) {
  uint64_t seed = 100;
  for (const Shape2 s : kShapes)
    for (const int64_t b : bs)
      for (const double d : kDensities)
        for (const DType dt : dtypes) {
          const Tensor a = sparse_tensor(s.rows, s.cols, b, b, d, ++seed, dt, dev);
          const sparse::BlockListIndex idx = sparse::detect_blocks(a, b, {.values = true, .transposed = true});
          check_blocks(idx, a, Tensor(), true, name("blocks", s, b, d, dt));
          if (::testing::Test::HasFatalFailure()) return;
        }
}

inline void run_mask_cases(Device dev, int64_t r, int64_t b) {
  const Tensor a = sparse_tensor(130, 300, 1, 1, 0.8, 7, DType::f32, dev);
  const Tensor mask = sparse_tensor(130, 300, 1, 1, 0.05, 8, DType::f32, dev).to(DType::boolean);
  const sparse::KListIndex k = sparse::detect_k_lists(a, r, {.values = true, .transposed = true, .mask = mask});
  check_klist(k, a, mask, true, "k-list with mask");
  const sparse::BlockListIndex bl = sparse::detect_blocks(a, b, {.values = true, .transposed = true, .mask = mask});
  check_blocks(bl, a, mask, true, "blocks with mask");
  // Pattern only: no values.
  const sparse::KListIndex p = sparse::detect_k_lists(a, r, {.values = false, .mask = mask});
  EXPECT_FALSE(p.values.defined());
  check_klist(p, a, mask, false, "k-list pattern only");
}

inline void run_row_cases(Device dev, const std::vector<DType>& dtypes) {
  uint64_t seed = 200;
  for (const Shape2 s : kShapes)
    for (const double d : kDensities)
      for (const DType dt : dtypes)
        for (const int64_t w : {int64_t{0}, int64_t{8}, int64_t{64}, int64_t{100}}) {
          const Tensor a = sparse_tensor(s.rows, s.cols, 1, w > 0 ? w : s.cols, d, ++seed, dt, dev);
          const sparse::RowSetIndex idx = sparse::detect_rows(a, w);
          check_rows(idx, host(a), s.rows, s.cols, false, name("rows", s, w, d, dt));
          if (::testing::Test::HasFatalFailure()) return;
        }
  // Row mask (padding) and element mask.
  const Tensor a = sparse_tensor(300, 96, 1, 1, 0.9, 5, DType::f32, dev);
  const Tensor rm = sparse_tensor(300, 1, 1, 1, 0.6, 6, DType::f32, dev).view({300});
  check_rows(sparse::detect_rows(a, 0, rm), host(rm), 300, 96, true, "row mask");
  check_rows(sparse::detect_rows(a, 32, rm), host(rm), 300, 96, true, "row mask, segments");
  const Tensor em = sparse_tensor(300, 96, 1, 1, 0.01, 9, DType::f32, dev).to(DType::u8);
  check_rows(sparse::detect_rows(a, 16, em), host(em), 300, 96, false, "element mask");
}

inline void run_routing_cases(Device dev) {
  std::mt19937_64 gen(3);
  for (const int64_t t_count : {int64_t{1}, int64_t{37}, int64_t{1000}, int64_t{4099}})
    for (const int64_t k : {int64_t{1}, int64_t{2}})
      for (const int64_t experts : {int64_t{1}, int64_t{8}, int64_t{64}})
        for (const bool skewed : {false, true}) {
          std::vector<int64_t> ids(static_cast<size_t>(t_count * k));
          std::vector<double> gates(ids.size());
          for (int64_t t = 0; t < t_count; ++t)
            for (int64_t q = 0; q < k; ++q) {
              int64_t e = static_cast<int64_t>(gen() % static_cast<uint64_t>(experts));
              if (skewed) e = (gen() % 10 < 9) ? 0 : e;  // 90% to expert 0
              if (gen() % 17 == 0) e = -1;                 // dropped
              if (q == 1 && e == ids[static_cast<size_t>(t * k)] && e >= 0) e = (e + 1) % experts;
              ids[static_cast<size_t>(t * k + q)] = e;
              gates[static_cast<size_t>(t * k + q)] = static_cast<double>(gen() % 1000) / 1000.0;
            }
          const Tensor idt = from_vector(ids, {t_count, k}).to(dev, (t_count % 2) ? DType::i32 : DType::i64);
          const Tensor gt = from_vector(gates, {t_count, k}).to(dev, DType::f32);
          const std::string what = "routing T=" + std::to_string(t_count) + " k=" + std::to_string(k) +
                                   " E=" + std::to_string(experts) + (skewed ? " skewed" : "");
          check_routing(sparse::rows_from_routing(idt, experts, gt), ids, t_count, k, experts, gates, what);
          check_routing(sparse::rows_from_routing(idt, experts), ids, t_count, k, experts, {}, what + " no gates");
          if (::testing::Test::HasFatalFailure()) return;
        }
}

// Micro-tiles of `tile` with a non-zero in a [rows, cols] operand, counted by brute force from its
// values (a tile larger than the operand covers all of it).
inline int64_t brute_count(const std::vector<double>& v, int64_t rows, int64_t cols, sparse::MicroTile tile) {
  int64_t n = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += tile.rows)
    for (int64_t c0 = 0; c0 < cols; c0 += tile.cols) {
      bool any = false;
      for (int64_t r = r0; r < std::min(rows, r0 + tile.rows) && !any; ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + tile.cols) && !any; ++c)
          any = v[static_cast<size_t>(r * cols + c)] != 0.0;
      n += any;
    }
  return n;
}

// count_micro_tiles, on both devices against counts by brute force from the operand's values: the
// planner's candidates (and the detected indexes' counts), odd micro-tiles (several launches on the
// GPU) and one taller than the operand, over ragged shapes, all-zero
// and dense operands, element-sparse and structured patterns, dtypes with 2- and 4-byte elements,
// a column count that rules out 16-byte loads, and an operand narrower and shorter than the
// largest candidates (their tiles are clamped to it: 40 and 100 wide or tall).
inline void run_count_cases(Device dev) {
  const std::vector<sparse::MicroTile> planner = {{16, 1}, {32, 1}, {64, 1}, {128, 1}, {16, 16}, {32, 32}, {64, 64}};
  const std::vector<sparse::MicroTile> odd = {{3, 5}, {24, 1}, {1, 7}, {200, 1}, {1, 300}};
  const auto counts = [](const Tensor& a, const std::vector<sparse::MicroTile>& tiles) {
    const std::vector<int64_t> got = sparse::read_micro_tile_counts(a, tiles);
    const std::vector<double> v = a.to(Device::cpu(), DType::f64).contiguous().to_vector<double>();
    for (size_t i = 0; i < tiles.size(); ++i)
      EXPECT_EQ(got[i], brute_count(v, a.size(0), a.size(1), tiles[i])) << tiles[i].str() << " by brute force";
    return got;
  };
  struct Case {
    int64_t rows, cols, tr, tc;
    double density;
    DType dt;
  };
  uint64_t seed = 11;
  for (const Case& c : {Case{257, 1000, 16, 1, 0.3, DType::bf16}, Case{300, 515, 1, 1, 0.02, DType::f32},
                        Case{129, 777, 32, 32, 0.5, DType::f16}, Case{64, 256, 1, 1, 0.0, DType::bf16},
                        Case{190, 330, 1, 1, 1.0, DType::bf16}, Case{513, 1030, 1, 1, 0.001, DType::bf16},
                        Case{100, 40, 1, 1, 0.05, DType::bf16}}) {  // tiles clamped to a narrow, short operand
    const Tensor a = sparse_tensor(c.rows, c.cols, c.tr, c.tc, c.density, ++seed, c.dt, dev, c.density >= 1.0 ? 0.0 : 0.3);
    const std::string what = std::to_string(c.rows) + "x" + std::to_string(c.cols) + " density " +
                             std::to_string(c.density) + " " + dtype_name(c.dt);
    const std::vector<int64_t> got = counts(a, planner);
    // The planner's counts, exact (sample_bytes 0; on CUDA through the mapped-memory path),
    // twice: the device workspace is reset by each call.
    for (int rep = 0; rep < 2; ++rep) {
      const sparse::TileCounts pc = sparse::planner_counts(a, planner);
      EXPECT_EQ(pc.stride, 1) << what;
      EXPECT_EQ(pc.nonzero, got) << what << " planner_counts, call " << rep;
      for (size_t i = 0; i < planner.size(); ++i)
        EXPECT_EQ(pc.looked[i], ((c.rows + planner[i].rows - 1) / planner[i].rows) *
                                    ((c.cols + planner[i].cols - 1) / planner[i].cols))
            << what << " " << planner[i].str() << " micro-tiles looked at";
    }
    for (size_t i = 0; i < planner.size(); ++i) {
      const int64_t want = planner[i].cols == 1
                               ? sparse::read_count(sparse::detect_k_lists(a, planner[i].rows, {.values = false}))
                               : sparse::read_count(sparse::detect_blocks(a, planner[i].rows, {.values = false}));
      EXPECT_EQ(got[i], want) << what << " " << planner[i].str();
    }
    {
      SCOPED_TRACE(what + " odd micro-tiles, one taller than the operand");
      (void)counts(a, odd);
      (void)counts(a, {{4096, 1}});
    }
    if (::testing::Test::HasFailure()) return;
  }
}

// The planner's sampled counts (CUDA): on operands larger than sample_bytes only part of the
// operand is looked at (stride > 1), the looked-at micro-tiles make about 1 / stride of all, an
// all-zero operand gives no non-zero tile and a dense one only non-zero tiles, and on a uniformly
// random pattern each cover's sampled density is close to the exact one.
inline void run_sampled_count_cases(Device dev) {
  const std::vector<sparse::MicroTile> planner = {{16, 1}, {32, 1}, {64, 1}, {128, 1}, {16, 16}, {32, 32}, {64, 64}};
  uint64_t seed = 77;
  for (const double density : {0.0, 0.02, 0.3, 1.0}) {
    const int64_t rows = 2048, cols = 3000;  // 12 MB in f16: stride 3 for 4 MiB
    const Tensor a = sparse_tensor(rows, cols, 1, 1, density, ++seed, DType::f16, dev, density >= 1.0 ? 0.0 : 0.3);
    const std::string what = "2048x3000 density " + std::to_string(density);
    const sparse::TileCounts exact = sparse::planner_counts(a, planner, {}, 0);
    const sparse::TileCounts sampled = sparse::planner_counts(a, planner, {}, int64_t{4} << 20);
    ASSERT_GT(sampled.stride, 1) << what;
    for (size_t i = 0; i < planner.size(); ++i) {
      const std::string tile = what + " " + planner[i].str();
      const double all = static_cast<double>(exact.looked[i]), part = static_cast<double>(sampled.looked[i]);
      EXPECT_NEAR(part * sampled.stride / all, 1.0, 0.1) << tile << ": looked at " << part << " of " << all;
      EXPECT_LE(sampled.nonzero[i], sampled.looked[i]) << tile;
      if (density == 0.0) {
        EXPECT_EQ(sampled.nonzero[i], 0) << tile;
      }
      if (density == 1.0) {
        EXPECT_EQ(sampled.nonzero[i], sampled.looked[i]) << tile;
      }
      const double want = exact.nonzero[i] / all, est = sampled.nonzero[i] / part;
      EXPECT_NEAR(est, want, 0.02 + 0.05 * want) << tile << ": sampled density against the exact one";
    }
  }
}

inline void run_to_dense_cases(Device dev) {
  for (const DType dt : {DType::f32, DType::bf16}) {
    const Tensor a = sparse_tensor(100, 777, 32, 1, 0.3, 12, dt, dev);
    const Tensor k = sparse::to_dense(sparse::detect_k_lists(a, 32));
    EXPECT_EQ(host(k), host(a)) << "k-list to_dense " << dtype_name(dt);
    const Tensor b = sparse::to_dense(sparse::detect_blocks(a, 16));
    EXPECT_EQ(host(b), host(a)) << "blocks to_dense " << dtype_name(dt);
  }
}

}  // namespace pit::test
