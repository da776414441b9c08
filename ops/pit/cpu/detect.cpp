// CPU detection: flags per micro-tile (parallel over block rows), a serial scan of the counts,
// then the lists (and values) written in parallel, each block row at its scanned offset.
#include "ops/pit/cpu/detect.h"

#include <algorithm>
#include <cstring>

#include "core/convert.h"
#include "core/thread_pool.h"

namespace pit::sparse::cpu {
namespace {

// Exclusive scan of counts into an i32 [n + 1] tensor.
Tensor scan_offsets(const std::vector<int64_t>& counts) {
  Tensor off = Tensor::empty({static_cast<int64_t>(counts.size()) + 1}, DType::i32);
  int32_t* o = off.data<int32_t>();
  int64_t run = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    o[i] = static_cast<int32_t>(run);
    run += counts[i];
  }
  o[counts.size()] = static_cast<int32_t>(run);
  return off;
}

// Grain for parallel loops over block rows: a few thousand elements per chunk at least.
int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work_per_item));
}

}  // namespace

TileLists detect_tiles(const Tensor& a, const Tensor& mask, int64_t tr, int64_t tc, bool values,
                       bool transposed) {
  const int64_t rows = a.size(0), cols = a.size(1);
  const int64_t nbr = (rows + tr - 1) / tr, nbc = (cols + tc - 1) / tc;
  const uint8_t* m = mask.defined() ? static_cast<const uint8_t*>(mask.data_ptr()) : nullptr;
  std::vector<uint8_t> flags(static_cast<size_t>(nbr * nbc), 0);
  std::vector<int64_t> counts(static_cast<size_t>(nbr), 0);
  TileLists out;
  dispatch(a.dtype(), "pit detection", [&]<typename T>() {
    const T* p = static_cast<const T*>(a.data_ptr());
    parallel_for(0, nbr, grain_for(tr * cols), [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) {
        uint8_t* f = flags.data() + i * nbc;
        for (int64_t r = i * tr; r < std::min(rows, i * tr + tr); ++r)
          for (int64_t c = 0; c < cols; ++c)
            if (m ? m[r * cols + c] != 0 : nonzero(p[r * cols + c])) f[c / tc] = 1;
        int64_t n = 0;
        for (int64_t c = 0; c < nbc; ++c) n += f[c];
        counts[static_cast<size_t>(i)] = n;
      }
    });
    const int64_t capacity = nbr * nbc;
    out.offsets = scan_offsets(counts);
    out.cols = Tensor::empty({capacity}, DType::i32);
    if (values) out.values = Tensor::empty({capacity, tr * tc}, a.dtype());
    std::vector<int32_t> pos(transposed ? static_cast<size_t>(capacity) : 0);
    const int32_t* off = out.offsets.data<int32_t>();
    int32_t* col = out.cols.data<int32_t>();
    T* val = values ? out.values.data<T>() : nullptr;
    parallel_for(0, nbr, grain_for(tr * cols), [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) {
        int64_t j = off[i];
        for (int64_t c = 0; c < nbc; ++c) {
          if (!flags[static_cast<size_t>(i * nbc + c)]) continue;
          col[j] = static_cast<int32_t>(c);
          if (transposed) pos[static_cast<size_t>(i * nbc + c)] = static_cast<int32_t>(j);
          if (val) {
            T* v = val + j * tr * tc;
            for (int64_t y = 0; y < tr; ++y)
              for (int64_t x = 0; x < tc; ++x) {
                const int64_t r = i * tr + y, cc = c * tc + x;
                const bool in = r < rows && cc < cols && (!m || m[r * cols + cc] != 0);
                v[y * tc + x] = in ? p[r * cols + cc] : convert<T>(0.0f);
              }
          }
          ++j;
        }
      }
    });
    if (!transposed) return;
    std::vector<int64_t> tcounts(static_cast<size_t>(nbc), 0);
    for (int64_t i = 0; i < nbr; ++i)
      for (int64_t c = 0; c < nbc; ++c) tcounts[static_cast<size_t>(c)] += flags[static_cast<size_t>(i * nbc + c)];
    out.t_offsets = scan_offsets(tcounts);
    out.t_rows = Tensor::empty({capacity}, DType::i32);
    out.t_pos = Tensor::empty({capacity}, DType::i32);
    const int32_t* toff = out.t_offsets.data<int32_t>();
    int32_t* trow = out.t_rows.data<int32_t>();
    int32_t* tpos = out.t_pos.data<int32_t>();
    parallel_for(0, nbc, grain_for(nbr), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t j = toff[c];
        for (int64_t i = 0; i < nbr; ++i) {
          if (!flags[static_cast<size_t>(i * nbc + c)]) continue;
          trow[j] = static_cast<int32_t>(i);
          tpos[j] = pos[static_cast<size_t>(i * nbc + c)];
          ++j;
        }
      }
    });
  });
  return out;
}

RowSetIndex detect_rows(const Tensor& pattern, int64_t cols, int64_t w) {
  const int64_t rows = pattern.size(0), pcols = pattern.size(1);
  const int64_t nseg = w > 0 ? std::max<int64_t>(1, (cols + w - 1) / w) : 1;
  const int64_t width = w > 0 ? w : std::max<int64_t>(cols, 1);
  std::vector<uint8_t> flags(static_cast<size_t>(rows * nseg), 0);  // [segment][row]
  dispatch(pattern.dtype(), "pit row detection", [&]<typename T>() {
    const T* p = static_cast<const T*>(pattern.data_ptr());
    parallel_for(0, rows, grain_for(pcols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        if (pcols == 1 && cols != 1) {  // a row mask: listed in every segment
          const uint8_t f = nonzero(p[r]) ? 1 : 0;
          for (int64_t s = 0; s < nseg; ++s) flags[static_cast<size_t>(s * rows + r)] = f;
          continue;
        }
        for (int64_t c = 0; c < pcols; ++c)
          if (nonzero(p[r * pcols + c])) flags[static_cast<size_t>((c / width) * rows + r)] = 1;
      }
    });
  });
  std::vector<int64_t> counts(static_cast<size_t>(nseg), 0);
  for (int64_t s = 0; s < nseg; ++s)
    for (int64_t r = 0; r < rows; ++r) counts[static_cast<size_t>(s)] += flags[static_cast<size_t>(s * rows + r)];
  RowSetIndex idx;
  idx.offsets = scan_offsets(counts);
  idx.rows = Tensor::empty({rows * nseg}, DType::i32);
  idx.num_rows = rows;
  idx.num_segments = nseg;
  idx.segment_cols = w;
  const int32_t* off = idx.offsets.data<int32_t>();
  int32_t* out = idx.rows.data<int32_t>();
  parallel_for(0, nseg, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      int64_t j = off[s];
      for (int64_t r = 0; r < rows; ++r)
        if (flags[static_cast<size_t>(s * rows + r)]) out[j++] = static_cast<int32_t>(r);
    }
  });
  return idx;
}

RowSetIndex rows_from_routing(const Tensor& expert_of, int64_t num_experts, const Tensor& gates) {
  const int64_t t_count = expert_of.size(0), k = expert_of.size(1);
  const std::vector<int64_t> ids = expert_of.to(DType::i64).contiguous().to_vector<int64_t>();
  std::vector<float> g;
  if (gates.defined()) g = gates.to(DType::f32).contiguous().to_vector<float>();
  std::vector<int64_t> counts(static_cast<size_t>(num_experts), 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    PIT_CHECK(ids[i] < num_experts, "rows_from_routing: expert_of[", i / static_cast<size_t>(k), ", ",
              i % static_cast<size_t>(k), "] = ", ids[i], " is not below num_experts = ", num_experts,
              "; use a negative id to drop an assignment");
    if (ids[i] >= 0) ++counts[static_cast<size_t>(ids[i])];
  }
  RowSetIndex idx;
  idx.offsets = scan_offsets(counts);
  idx.rows = Tensor::empty({t_count * k}, DType::i32);
  if (gates.defined()) idx.weights = Tensor::empty({t_count * k}, DType::f32);
  idx.num_rows = t_count;
  idx.num_segments = num_experts;
  std::vector<int64_t> next(static_cast<size_t>(num_experts));
  const int32_t* off = idx.offsets.data<int32_t>();
  for (int64_t e = 0; e < num_experts; ++e) next[static_cast<size_t>(e)] = off[e];
  int32_t* rows = idx.rows.data<int32_t>();
  float* wts = gates.defined() ? idx.weights.data<float>() : nullptr;
  for (int64_t t = 0; t < t_count; ++t)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[static_cast<size_t>(t * k + j)];
      if (e < 0) continue;
      const int64_t at = next[static_cast<size_t>(e)]++;
      rows[at] = static_cast<int32_t>(t);
      if (wts) wts[at] = g[static_cast<size_t>(t * k + j)];
    }
  return idx;
}

Tensor count_micro_tiles(const Tensor& pattern, const std::vector<MicroTile>& tiles) {
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  std::vector<int64_t> counts(tiles.size(), 0);
  dispatch(pattern.dtype(), "pit count_micro_tiles", [&]<typename T>() {
    const T* p = static_cast<const T*>(pattern.data_ptr());
    for (size_t t = 0; t < tiles.size(); ++t) {
      const int64_t tr = tiles[t].rows, tc = tiles[t].cols;
      const int64_t nbr = (rows + tr - 1) / tr, nbc = (cols + tc - 1) / tc;
      std::vector<int64_t> per_row(static_cast<size_t>(nbr), 0);
      parallel_for(0, nbr, grain_for(tr * cols), [&](int64_t b0, int64_t b1) {
        std::vector<uint8_t> f(static_cast<size_t>(nbc));
        for (int64_t i = b0; i < b1; ++i) {
          std::fill(f.begin(), f.end(), 0);
          for (int64_t r = i * tr; r < std::min(rows, i * tr + tr); ++r)
            for (int64_t c = 0; c < cols; ++c)
              if (nonzero(p[r * cols + c])) f[static_cast<size_t>(c / tc)] = 1;
          int64_t n = 0;
          for (const uint8_t v : f) n += v;
          per_row[static_cast<size_t>(i)] = n;
        }
      });
      for (const int64_t n : per_row) counts[t] += n;
    }
  });
  return from_vector(counts);
}

Tensor tiles_to_dense(const Tensor& offsets, const Tensor& cols, const Tensor& values, int64_t rows,
                      int64_t ncols, int64_t tr, int64_t tc) {
  Tensor out = zeros({rows, ncols}, values.dtype());
  const int64_t nbr = (rows + tr - 1) / tr;
  const int32_t* off = offsets.data<int32_t>();
  const int32_t* col = cols.data<int32_t>();
  dispatch(values.dtype(), "pit to_dense", [&]<typename T>() {
    const T* v = static_cast<const T*>(values.data_ptr());
    T* o = out.data<T>();
    parallel_for(0, nbr, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i)
        for (int64_t j = off[i]; j < off[i + 1]; ++j)
          for (int64_t y = 0; y < tr; ++y)
            for (int64_t x = 0; x < tc; ++x) {
              const int64_t r = i * tr + y, c = col[j] * tc + x;
              if (r < rows && c < ncols) o[r * ncols + c] = v[(j * tr + y) * tc + x];
            }
    });
  });
  return out;
}

Tensor tiles_cover(const Tensor& offsets, const Tensor& cols, int64_t rows, int64_t ncols,
                   int64_t tr, int64_t tc) {
  Tensor out = zeros({rows, ncols}, DType::u8);
  uint8_t* o = out.data<uint8_t>();
  const int32_t* off = offsets.data<int32_t>();
  const int32_t* col = cols.data<int32_t>();
  const int64_t nbr = (rows + tr - 1) / tr;
  for (int64_t i = 0; i < nbr; ++i)
    for (int64_t j = off[i]; j < off[i + 1]; ++j)
      for (int64_t y = 0; y < tr; ++y)
        for (int64_t x = 0; x < tc; ++x) {
          const int64_t r = i * tr + y, c = col[j] * tc + x;
          if (r < rows && c < ncols) o[r * ncols + c] = 1;
        }
  return out;
}

}  // namespace pit::sparse::cpu
