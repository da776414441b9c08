#pragma once
// Micro-tile masks of a weight [rows, cols] for dynamic sparse training (issue #6): a tile is
// tr x tc (edge tiles are cut by the weight's border); a tile mask is bool [tile_rows, tile_cols].
// Magnitude pruning keeps the tiles of largest norm; SET and RigL drop the active tiles of
// smallest norm and grow as many inactive ones, at random (SET) or where the dense gradient's
// tile norm is largest (RigL). Selections read the (small) score tensors back to the host once
// and return masks on the scores' device; ties go to the lower tile index, so every rank of a
// data-parallel run picks the same tiles from the same scores.
#include <cstdint>

#include "core/tensor.h"

namespace pit::sparse_train {

// The L2 norm of every tr x tc tile of w ([rows, cols], any dtype and device): f32
// [ceil(rows / tr), ceil(cols / tc)] on w's device.
Tensor tile_norms(const Tensor& w, int64_t tr, int64_t tc);

// The `keep` tiles of largest score (scores f32 [tile_rows, tile_cols]): a bool mask.
Tensor top_tiles(const Tensor& scores, int64_t keep);

enum class Grow { random, gradient };  // SET, RigL

struct MaskUpdate {
  Tensor mask;    // bool, the scores' device
  Tensor grown_mask;  // bool: the tiles grown (a tile dropped and grown again included)
  int64_t dropped = 0, grown = 0;
};

// Drops the `drop` active tiles of `mask` with the smallest weight_scores and grows as many tiles
// that are inactive after the drop (a tile just dropped may come back, as in RigL): those of
// largest grow_scores (Grow::gradient), or drawn uniformly with Philox(seed, offset) (Grow::random;
// grow_scores unused). The number of active tiles is unchanged. drop is clamped to the active
// tiles and to the inactive ones.
MaskUpdate drop_and_grow(const Tensor& mask, const Tensor& weight_scores, int64_t drop, Grow grow,
                         const Tensor& grow_scores, uint64_t seed = 0, uint64_t offset = 0);

// A tile mask expanded to the weight's elements: bool [rows, cols] on the mask's device.
Tensor expand_tiles(const Tensor& tile_mask, int64_t rows, int64_t cols, int64_t tr, int64_t tc);

}  // namespace pit::sparse_train
