// Micro-tile masks: tile norms against the host, the magnitude selection, SET / RigL's drop and
// grow (counts exact, the right tiles, deterministic), and the expansion to elements.
#include "trainer/sparse/mask.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/kernels.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"

namespace pit::sparse_train {
namespace {

using test::expect_error_contains;

Tensor random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = n(gen);
  return from_vector(v, {rows, cols});
}

std::vector<float> host(const Tensor& t) { return t.to(Device::cpu(), DType::f32).contiguous().to_vector<float>(); }

int64_t count_on(const Tensor& mask) {
  int64_t n = 0;
  for (const float v : host(mask)) n += v != 0.f;
  return n;
}

TEST(SparseMasks, TileNormsAreTheL2NormOfEachTile) {
  const int64_t rows = 10, cols = 7, tr = 4, tc = 3;  // ragged: edge tiles are cut
  const Tensor w = random_matrix(rows, cols, 1);
  const std::vector<float> v = host(w), got = host(tile_norms(w, tr, tc));
  ASSERT_EQ(got.size(), 3u * 3u);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      double s = 0;
      for (int64_t r = i * tr; r < std::min(rows, (i + 1) * tr); ++r)
        for (int64_t c = j * tc; c < std::min(cols, (j + 1) * tc); ++c) s += v[r * cols + c] * v[r * cols + c];
      EXPECT_NEAR(got[static_cast<size_t>(i * 3 + j)], std::sqrt(s), 1e-5) << i << "," << j;
    }
  expect_error_contains([&] { tile_norms(w, 0, 1); }, "at least 1 x 1");
}

// Scores for ranking: an edge tile's norm scaled to a whole tile's area, so that a tile cut by
// the border competes by its weights' size, not its count; whole tiles keep their norms.
TEST(SparseMasks, TileScoresScaleEdgeTilesToAWholeTilesArea) {
  const int64_t rows = 10, cols = 7, tr = 4, tc = 3;  // tiles of 4x3, 2x3 (last row), 4x1, 2x1
  const Tensor w = random_matrix(rows, cols, 2);
  const std::vector<float> norms = host(tile_norms(w, tr, tc)), scores = host(tile_scores(w, tr, tc));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      const double area = static_cast<double>((i < 2 ? 4 : 2) * (j < 2 ? 3 : 1));
      const size_t k = static_cast<size_t>(i * 3 + j);
      EXPECT_NEAR(scores[k], norms[k] * std::sqrt(12.0 / area), 1e-5) << i << "," << j;
    }
  // Weights all of one size: every tile scores alike, cut or whole.
  const std::vector<float> flat = host(tile_scores(full({rows, cols}, 0.5), tr, tc));
  for (const float v : flat) EXPECT_NEAR(v, 0.5 * std::sqrt(12.0), 1e-6);
  // A weight whose tiles are all whole: the scores are the norms.
  const Tensor whole = random_matrix(8, 6, 3);
  EXPECT_EQ(host(tile_scores(whole, tr, tc)), host(tile_norms(whole, tr, tc)));
}

TEST(SparseMasks, TopTilesKeepsTheLargestScores) {
  const Tensor scores = random_matrix(6, 5, 2).to(DType::f32);
  for (const int64_t keep : {0, 1, 7, 30}) {
    const Tensor m = top_tiles(scores, keep);
    EXPECT_EQ(count_on(m), keep);
    const std::vector<float> s = host(scores), on = host(m);
    float min_kept = INFINITY, max_dropped = -INFINITY;
    for (size_t i = 0; i < s.size(); ++i) {
      if (on[i] != 0.f) {
        min_kept = std::min(min_kept, s[i]);
      } else {
        max_dropped = std::max(max_dropped, s[i]);
      }
    }
    if (keep > 0 && keep < 30) {
      EXPECT_GE(min_kept, max_dropped) << "keep " << keep;
    }
  }
  // Ties go to the lower index.
  EXPECT_EQ(host(top_tiles(ones({2, 3}), 2)), (std::vector<float>{1, 1, 0, 0, 0, 0}));
  expect_error_contains([&] { top_tiles(scores, 31); }, "keep must be in [0, 30]");
}

TEST(SparseMasks, RigLDropsTheSmallestAndGrowsWhereTheGradientIsLargest) {
  const Tensor ws = random_matrix(8, 8, 3).to(DType::f32), gs = random_matrix(8, 8, 4).to(DType::f32);
  const Tensor mask = top_tiles(random_matrix(8, 8, 5), 20);
  const MaskUpdate u = drop_and_grow(mask, kernels::unary(UnaryOp::abs, ws), 6, Grow::gradient, gs);
  EXPECT_EQ(u.dropped, 6);
  EXPECT_EQ(u.grown, 6);
  EXPECT_EQ(count_on(u.mask), 20);
  // Recompute the rule on the host.
  const std::vector<float> before = host(mask), w = host(kernels::unary(UnaryOp::abs, ws)), g = host(gs), after = host(u.mask);
  std::vector<int> active;
  for (int i = 0; i < 64; ++i)
    if (before[i] != 0.f) active.push_back(i);
  std::stable_sort(active.begin(), active.end(), [&](int a, int b) { return w[a] < w[b]; });
  std::vector<float> want = before;
  for (int i = 0; i < 6; ++i) want[active[i]] = 0.f;
  std::vector<int> inactive;
  for (int i = 0; i < 64; ++i)
    if (want[i] == 0.f) inactive.push_back(i);
  std::stable_sort(inactive.begin(), inactive.end(), [&](int a, int b) { return g[a] > g[b]; });
  std::vector<float> grown(64, 0.f);
  for (int i = 0; i < 6; ++i) want[inactive[i]] = grown[inactive[i]] = 1.f;
  EXPECT_EQ(after, want);
  EXPECT_EQ(host(u.grown_mask), grown);
}

TEST(SparseMasks, SetGrowsAtRandomButDeterministically) {
  const Tensor ws = kernels::unary(UnaryOp::abs, random_matrix(10, 10, 6));
  const Tensor mask = top_tiles(random_matrix(10, 10, 7), 30);
  const MaskUpdate a = drop_and_grow(mask, ws, 9, Grow::random, Tensor(), 42, 0);
  const MaskUpdate b = drop_and_grow(mask, ws, 9, Grow::random, Tensor(), 42, 0);
  const MaskUpdate c = drop_and_grow(mask, ws, 9, Grow::random, Tensor(), 43, 0);
  EXPECT_EQ(count_on(a.mask), 30);
  EXPECT_EQ(host(a.mask), host(b.mask));  // same seed, same tiles
  EXPECT_NE(host(a.mask), host(c.mask));
  // Every tile kept from before the update was one of the 21 largest-weight active ones.
  const std::vector<float> before = host(mask), w = host(ws), after = host(a.mask);
  std::vector<int> active;
  for (int i = 0; i < 100; ++i)
    if (before[i] != 0.f) active.push_back(i);
  std::stable_sort(active.begin(), active.end(), [&](int x, int y) { return w[x] < w[y]; });
  for (int i = 9; i < 30; ++i) EXPECT_NE(after[active[i]], 0.f) << "kept tile " << active[i] << " was dropped";
  // More to drop than there are inactive tiles: clamped.
  EXPECT_EQ(drop_and_grow(top_tiles(ws, 98), ws, 5, Grow::random, Tensor(), 1).dropped, 2);
  expect_error_contains([&] { drop_and_grow(mask, ws, 1, Grow::gradient, Tensor()); }, "gradient's tile scores");
}

TEST(SparseMasks, ExpandTilesCoversEachTilesElements) {
  const Tensor tiles = top_tiles(random_matrix(3, 3, 8), 4);
  const std::vector<float> t = host(tiles), e = host(expand_tiles(tiles, 10, 7, 4, 3));
  ASSERT_EQ(e.size(), 70u);
  for (int r = 0; r < 10; ++r)
    for (int c = 0; c < 7; ++c) EXPECT_EQ(e[r * 7 + c], t[(r / 4) * 3 + c / 3]) << r << "," << c;
  expect_error_contains([&] { expand_tiles(tiles, 13, 7, 4, 3); }, "must be [4, 3]");
}

TEST(SparseMasksCuda, MatchTheCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor w = random_matrix(100, 70, 9);
  const Tensor on_gpu = tile_norms(w.to(Device::cuda(), DType::bf16), 32, 1);
  const Tensor on_cpu = tile_norms(w.to(DType::bf16).to(DType::f32), 32, 1);
  const std::vector<float> g = host(on_gpu), c = host(on_cpu);
  ASSERT_EQ(g.size(), c.size());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], c[i], 1e-4 * (1 + c[i])) << i;
  const Tensor m = top_tiles(on_gpu, 50);
  EXPECT_TRUE(m.device().is_cuda());
  EXPECT_EQ(host(m), host(top_tiles(on_cpu, 50)));
  EXPECT_EQ(host(expand_tiles(m, 100, 70, 32, 1)), host(expand_tiles(m.to(Device::cpu()), 100, 70, 32, 1)));
}

}  // namespace
}  // namespace pit::sparse_train
