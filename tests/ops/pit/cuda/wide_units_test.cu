// The wide engine's work units in clusters of two (ops/pit/cuda/gather_core.cuh cluster_units,
// cluster_unit), on the host: over routings of every kind, the two blocks' tiles of every unit
// cover each (row tile, column tile) of each segment exactly once; a shared unit's two tiles are
// the row tiles 2i and 2i + 1 at one column tile (so one B serves both); a split unit's are one
// row tile, the segment's last, at two column tiles; an empty tile (count <= 0) has its column
// tile in range and its row tile one past the segment's last (the producer loads the one before).
// Needs no GPU: the same functions the kernel calls, compiled for the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ops/pit/cuda/gather_core.cuh"

namespace dev = pit::sparse::cuda::dev;

namespace {

constexpr int BM = 128;  // the wide engine's row tile (wide_core.cuh)

// The units' prefix as segment_prefix builds it on the device: prefix[s] is segment s's first unit.
std::vector<int32_t> unit_prefix(const std::vector<int32_t>& offsets, int n_tiles) {
  std::vector<int32_t> prefix(offsets.size(), 0);
  for (size_t s = 0; s + 1 < offsets.size(); ++s)
    prefix[s + 1] = prefix[s] + dev::cluster_units<BM>(offsets[s + 1] - offsets[s], n_tiles);
  return prefix;
}

// Walks every unit of `counts` (entries a segment) at `n_tiles` column tiles; failures name the case.
void expect_walk_covers(const std::vector<int>& counts, int n_tiles) {
  std::string what = "n_tiles ";  // (appended piece by piece: g++ 12 warns falsely on a + chain here)
  what += std::to_string(n_tiles);
  what += ", counts";
  for (const int c : counts) {
    what += ' ';
    what += std::to_string(c);
  }
  const int segments = static_cast<int>(counts.size());
  std::vector<int32_t> offsets{0};
  for (const int c : counts) offsets.push_back(offsets.back() + c);
  const std::vector<int32_t> prefix = unit_prefix(offsets, n_tiles);
  std::set<std::pair<int, int>> seen;  // (first entry of the row tile, column tile)
  for (int u = 0; u < prefix.back(); ++u) {
    const dev::TileAt a = dev::cluster_unit<BM>(prefix.data(), offsets.data(), segments, n_tiles, u, 0);
    const dev::TileAt b = dev::cluster_unit<BM>(prefix.data(), offsets.data(), segments, n_tiles, u, 1);
    ASSERT_EQ(a.s, b.s) << what << ": unit " << u << " spans two segments";
    ASSERT_EQ(a.shared, b.shared) << what << ": unit " << u;
    ASSERT_GT(a.count, 0) << what << ": unit " << u << " has rank 0's tile empty";
    if (a.shared) {
      EXPECT_EQ(a.nt, b.nt) << what << ": shared unit " << u << " at two column tiles";
      EXPECT_EQ(b.e0, a.e0 + BM) << what << ": shared unit " << u << " is not row tiles 2i and 2i + 1";
      EXPECT_GT(b.count, 0) << what << ": shared unit " << u << " with an empty tile";
      EXPECT_EQ((a.e0 - offsets[a.s]) / BM % 2, 0) << what << ": shared unit " << u;
    } else {
      EXPECT_GE(a.e0 + BM, offsets[a.s + 1]) << what << ": split unit " << u << " is not on the segment's last row tile";
      if (b.count > 0) {
        EXPECT_EQ(b.e0, a.e0) << what << ": split unit " << u << " on two row tiles";
        EXPECT_EQ(b.nt, a.nt + 1) << what << ": split unit " << u;
      }
    }
    for (const dev::TileAt& t : {a, b}) {
      ASSERT_GE(t.nt, 0) << what << ": unit " << u;
      ASSERT_LT(t.nt, n_tiles) << what << ": unit " << u << " loads a column tile past the last";
      if (t.count <= 0) {
        // Empty: one row tile past the segment's last, whose rows the producer loads instead.
        EXPECT_EQ(t.e0 - BM, a.e0) << what << ": unit " << u << "'s empty tile";
        continue;
      }
      EXPECT_LE(t.count, BM) << what;
      EXPECT_EQ(t.count, std::min(BM, offsets[t.s + 1] - t.e0)) << what;
      EXPECT_GE(t.e0, offsets[t.s]) << what << ": unit " << u << " starts before its segment";
      EXPECT_EQ((t.e0 - offsets[t.s]) % BM, 0) << what << ": unit " << u << " off the row tiles";
      EXPECT_TRUE(seen.insert({t.e0, t.nt}).second)
          << what << ": the tile at entry " << t.e0 << ", column tile " << t.nt << " is walked twice";
    }
  }
  size_t tiles = 0;
  for (const int c : counts) tiles += static_cast<size_t>((c + BM - 1) / BM) * static_cast<size_t>(n_tiles);
  EXPECT_EQ(seen.size(), tiles) << what << ": tiles left out of the walk";
  // The launch's bound on the units (gather_wide.cu: ceil(count_s / 256) pairs a segment at every
  // column tile) holds.
  int64_t bound = 0;
  for (const int c : counts) bound += static_cast<int64_t>((c + 2 * BM - 1) / (2 * BM)) * n_tiles;
  EXPECT_LE(prefix.back(), bound) << what;
}

TEST(WideUnits, EveryTileOnceAtEveryRemainder) {
  // Row tiles of 0 to 5 a segment with every remainder that matters, 1 to 5 column tiles.
  const std::vector<int> counts = {0, 1, 127, 128, 129, 255, 256, 257, 383, 384, 385, 512, 640, 641};
  for (int n_tiles = 1; n_tiles <= 5; ++n_tiles) {
    expect_walk_covers(counts, n_tiles);
    expect_walk_covers({0, 0, 0}, n_tiles);      // no entries at all
    expect_walk_covers({0, 0, 300, 0}, n_tiles);  // one segment takes every entry
  }
}

TEST(WideUnits, EveryTileOnceOverRandomRoutings) {
  std::mt19937 rng(2026);
  for (int trial = 0; trial < 500; ++trial) {
    const int segments = 1 + static_cast<int>(rng() % 40), n_tiles = 1 + static_cast<int>(rng() % 17);
    std::vector<int> counts(static_cast<size_t>(segments));
    for (int& c : counts) c = static_cast<int>(rng() % (trial % 2 ? 1200 : 300));
    if (trial % 5 == 0) counts[rng() % counts.size()] = 3000;  // one expert far over its share
    expect_walk_covers(counts, n_tiles);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
