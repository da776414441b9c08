#include "trainer/sparse/mask.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"

namespace pit::sparse_train {
namespace {

void check_tile(int64_t tr, int64_t tc) {
  PIT_CHECK(tr >= 1 && tc >= 1, "sparse masks: a micro-tile must be at least 1 x 1, got ", tr, " x ", tc);
}

void check_scores(const Tensor& scores, const char* what) {
  PIT_CHECK(scores.defined() && scores.dim() == 2, "sparse masks: ", what, " must be [tile_rows, tile_cols]");
}

// Indices of `candidates` ordered by score, largest first (ties: lower index first).
void order_by_score(std::vector<int64_t>& candidates, const std::vector<float>& score, bool largest) {
  std::stable_sort(candidates.begin(), candidates.end(), [&](int64_t a, int64_t b) {
    return largest ? score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)]
                   : score[static_cast<size_t>(a)] < score[static_cast<size_t>(b)];
  });
}

Tensor to_mask(const std::vector<uint8_t>& on, const Shape& shape, Device device) {
  return from_vector(on, shape).to(DType::boolean).to(device);
}

}  // namespace

std::vector<float> host_f32(const Tensor& t) { return t.to(Device::cpu(), DType::f32).contiguous().to_vector<float>(); }

void check_finite_scores(const std::vector<float>& scores, const char* what) {
  for (size_t i = 0; i < scores.size(); ++i)
    PIT_CHECK(std::isfinite(scores[i]), "sparse masks: ", what, " hold ", scores[i], " at unit ", i,
              ": the weights or their gradients diverged, and no mask can be chosen from them; lower the "
              "learning rate (or clip the gradients), or resume from an earlier checkpoint");
}

Tensor tile_norms(const Tensor& w, int64_t tr, int64_t tc) {
  check_tile(tr, tc);
  PIT_CHECK(w.defined() && w.dim() == 2, "tile_norms: the weight must be [rows, cols]");
  const int64_t rows = w.size(0), cols = w.size(1);
  const int64_t r = (rows + tr - 1) / tr, c = (cols + tc - 1) / tc;
  Tensor x = w.to(DType::f32).contiguous();
  if (r * tr != rows) x = kernels::cat({x, zeros({r * tr - rows, cols}, DType::f32, w.device())}, 0);
  if (c * tc != cols) x = kernels::cat({x, zeros({r * tr, c * tc - cols}, DType::f32, w.device())}, 1);
  const Tensor sq = kernels::binary(BinaryOp::mul, x, x).view({r, tr, c, tc});
  return kernels::unary(UnaryOp::sqrt, kernels::sum(sq, {1, 3}));
}

Tensor tile_scores(const Tensor& w, int64_t tr, int64_t tc) {
  const Tensor norms = tile_norms(w, tr, tc);
  const int64_t rows = w.size(0), cols = w.size(1), r = norms.size(0), c = norms.size(1);
  if (rows % tr == 0 && cols % tc == 0) return norms;
  std::vector<float> scale(static_cast<size_t>(r * c));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) {
      const int64_t area = (std::min(rows, (i + 1) * tr) - i * tr) * (std::min(cols, (j + 1) * tc) - j * tc);
      scale[static_cast<size_t>(i * c + j)] =
          static_cast<float>(std::sqrt(static_cast<double>(tr * tc) / static_cast<double>(area)));
    }
  return kernels::binary(BinaryOp::mul, norms, from_vector(scale, {r, c}).to(norms.device()));
}

Tensor top_tiles(const Tensor& scores, int64_t keep) {
  check_scores(scores, "the scores");
  const std::vector<float> s = host_f32(scores);
  check_finite_scores(s, "the scores");
  PIT_CHECK(keep >= 0 && keep <= static_cast<int64_t>(s.size()), "top_tiles: keep must be in [0, ", s.size(),
            "] (the tiles), got ", keep);
  std::vector<int64_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  order_by_score(idx, s, /*largest=*/true);
  std::vector<uint8_t> on(s.size(), 0);
  for (int64_t i = 0; i < keep; ++i) on[static_cast<size_t>(idx[static_cast<size_t>(i)])] = 1;
  return to_mask(on, scores.shape(), scores.device());
}

float sparse_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  return uniform_from_bits(philox4x32_10(i / 4, stream, seed).v[i % 4]);
}

MaskUpdate drop_and_grow(const Tensor& mask, const Tensor& weight_scores, int64_t drop, Grow grow,
                         const Tensor& grow_scores, uint64_t seed, uint64_t stream) {
  check_scores(weight_scores, "the weight scores");
  PIT_CHECK(mask.defined() && mask.shape() == weight_scores.shape(), "drop_and_grow: the mask and the weight scores ",
            "must have the same [tile_rows, tile_cols] shape");
  if (grow == Grow::gradient)
    PIT_CHECK(grow_scores.defined() && grow_scores.shape() == mask.shape(),
              "drop_and_grow: RigL's growth needs the gradient's tile scores, shaped like the mask");
  PIT_CHECK(drop >= 0, "drop_and_grow: drop must be >= 0, got ", drop);
  const std::vector<float> on_f = host_f32(mask), ws = host_f32(weight_scores);
  check_finite_scores(ws, "the weight scores");
  std::vector<uint8_t> on(on_f.size());
  std::vector<int64_t> active, inactive;
  for (size_t i = 0; i < on_f.size(); ++i) {
    on[i] = on_f[i] != 0.f;
    (on[i] ? active : inactive).push_back(static_cast<int64_t>(i));
  }
  drop = std::min({drop, static_cast<int64_t>(active.size()), static_cast<int64_t>(inactive.size())});
  order_by_score(active, ws, /*largest=*/false);
  for (int64_t i = 0; i < drop; ++i) on[static_cast<size_t>(active[static_cast<size_t>(i)])] = 0;
  std::vector<int64_t> candidates;  // inactive after the drop
  for (size_t i = 0; i < on.size(); ++i)
    if (!on[i]) candidates.push_back(static_cast<int64_t>(i));
  if (grow == Grow::gradient) {
    const std::vector<float> gs = host_f32(grow_scores);
    check_finite_scores(gs, "the gradient scores");
    order_by_score(candidates, gs, /*largest=*/true);
  } else {  // a Philox-keyed partial Fisher-Yates shuffle: the same on every machine
    for (int64_t i = 0; i < drop; ++i) {
      const auto span = static_cast<uint64_t>(candidates.size()) - static_cast<uint64_t>(i);
      // 64 random bits (two lanes of a block): every candidate reachable, the modulo's bias below
      // 2^-32 for any span up to 2^32.
      const Philox4x32 r = philox4x32_10(static_cast<uint64_t>(i) / 2, stream, seed);
      const unsigned lane = 2 * static_cast<unsigned>(i % 2);
      const uint64_t bits = (static_cast<uint64_t>(r.v[lane]) << 32) | r.v[lane + 1];
      const auto j = i + static_cast<int64_t>(bits % span);
      std::swap(candidates[static_cast<size_t>(i)], candidates[static_cast<size_t>(j)]);
    }
  }
  std::vector<uint8_t> grown(on.size(), 0);
  for (int64_t i = 0; i < drop; ++i) {
    const auto c = static_cast<size_t>(candidates[static_cast<size_t>(i)]);
    on[c] = 1;
    grown[c] = 1;
  }
  return {to_mask(on, mask.shape(), mask.device()), to_mask(grown, mask.shape(), mask.device()), drop, drop};
}

Tensor expand_tiles(const Tensor& tile_mask, int64_t rows, int64_t cols, int64_t tr, int64_t tc) {
  check_tile(tr, tc);
  PIT_CHECK(tile_mask.defined() && tile_mask.dim() == 2 && tile_mask.size(0) == (rows + tr - 1) / tr &&
                tile_mask.size(1) == (cols + tc - 1) / tc,
            "expand_tiles: a mask of ", rows, " x ", cols, " in ", tr, " x ", tc, " tiles must be [",
            (rows + tr - 1) / tr, ", ", (cols + tc - 1) / tc, "]");
  const Device dev = tile_mask.device();
  std::vector<int64_t> rt(static_cast<size_t>(rows)), ct(static_cast<size_t>(cols));
  for (int64_t i = 0; i < rows; ++i) rt[static_cast<size_t>(i)] = i / tr;
  for (int64_t j = 0; j < cols; ++j) ct[static_cast<size_t>(j)] = j / tc;
  const Tensor m = tile_mask.to(DType::f32);
  const Tensor by_rows = kernels::index_select(m, 0, from_vector(rt, dev));
  return kernels::index_select(by_rows, 1, from_vector(ct, dev)).to(DType::boolean);
}

}  // namespace pit::sparse_train
