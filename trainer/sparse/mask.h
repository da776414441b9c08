#pragma once
// Micro-tile masks of a weight [rows, cols] for dynamic sparse training (issue #6): a tile is
// tr x tc (edge tiles are cut by the weight's border); a tile mask is bool [tile_rows, tile_cols].
// Magnitude pruning keeps the tiles of largest norm; SET and RigL drop the active tiles of
// smallest norm and grow as many inactive ones, at random (SET) or where the dense gradient's
// tile norm is largest (RigL). Selections read the (small) score tensors back to the host once
// and return masks on the scores' device; ties go to the lower tile index, so every rank of a
// data-parallel run picks the same tiles from the same scores.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace pit::sparse_train {

// The L2 norm of every tr x tc tile of w ([rows, cols], any dtype and device): f32
// [ceil(rows / tr), ceil(cols / tc)] on w's device.
Tensor tile_norms(const Tensor& w, int64_t tr, int64_t tc);

// Scores of tiles that compete for a place (a mask update ranks them): tile_norms of w, an edge
// tile's scaled by sqrt(tr tc / its area) to what a whole tile of the same weights' RMS would
// have (a tile cut by the border holds fewer weights, so its bare norm is smaller: it would be
// pruned first, and grown last, whatever its weights). Whole tiles' scores are their norms.
Tensor tile_scores(const Tensor& w, int64_t tr, int64_t tc);

// A small tensor (scores, a mask) on the host as f32, in row-major order.
std::vector<float> host_f32(const Tensor& t);
// Throws unless every score is finite: a NaN or inf norm (weights or gradients that diverged)
// would order the units arbitrarily. what: the scores' name in the message.
void check_finite_scores(const std::vector<float>& scores, const char* what);

// The `keep` tiles of largest score (scores f32 [tile_rows, tile_cols]): a bool mask.
Tensor top_tiles(const Tensor& scores, int64_t keep);

enum class Grow { random, gradient };  // SET, RigL

struct MaskUpdate {
  Tensor mask;    // bool, the scores' device
  Tensor grown_mask;  // bool: the tiles grown (a tile dropped and grown again included)
  int64_t dropped = 0, grown = 0;
};

// The sparsifier's random draws: Philox keyed by the run's seed on counters of their own, the
// high word of the counter naming the stream (what is drawn, at which update step, for which
// layer). The model's initialisation and dropout count with a high word of 0, so no mask draw
// repeats a draw of the weights it masks (1x1 units kept would otherwise be exactly the largest
// initial weights), and no two layers or updates share draws.
enum class SparseDraw : uint64_t { initial_mask = 1, growth = 2 };
inline constexpr size_t kMaxSparseLayers = size_t{1} << 16;  // the layer field's 16 bits
inline uint64_t sparse_stream(SparseDraw what, uint64_t step, uint64_t layer) {
  return (static_cast<uint64_t>(what) << 56) | ((step & 0xFFFFFFFFFFull) << 16) | (layer & 0xFFFFull);
}
// Element i of a uniform draw in [0, 1) (24 bits) of stream `stream`.
float sparse_uniform(uint64_t seed, uint64_t stream, uint64_t i);

// Drops the `drop` active tiles of `mask` with the smallest weight_scores and grows as many tiles
// that are inactive after the drop (a tile just dropped may come back, as in RigL): those of
// largest grow_scores (Grow::gradient), or drawn uniformly (Grow::random; grow_scores unused) by a
// shuffle on 64-bit draws of Philox(seed) in stream `stream` (every candidate reachable, however
// many). The number of active tiles is unchanged. drop is clamped to the active tiles and to the
// inactive ones.
MaskUpdate drop_and_grow(const Tensor& mask, const Tensor& weight_scores, int64_t drop, Grow grow,
                         const Tensor& grow_scores, uint64_t seed = 0, uint64_t stream = 0);

// A tile mask expanded to the weight's elements: bool [rows, cols] on the mask's device.
Tensor expand_tiles(const Tensor& tile_mask, int64_t rows, int64_t cols, int64_t tr, int64_t tc);

}  // namespace pit::sparse_train
