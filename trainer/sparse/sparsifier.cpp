#include "trainer/sparse/sparsifier.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/random.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/sparse_linear.h"
#include "trainer/sparse/mask.h"

namespace pit::sparse_train {
namespace {

// '*' matches any run of characters (slashes included); everything else matches itself.
bool glob_match(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

int64_t units_to_keep(double density, int64_t units) {
  return std::clamp<int64_t>(std::llround(density * static_cast<double>(units)), 0, units);
}

int64_t units_changed(const Tensor& before, const Tensor& after) {
  const std::vector<float> a = host_f32(before), b = host_f32(after);
  int64_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += (a[i] != 0.f) != (b[i] != 0.f);
  return n;
}

// The scores a layer's units compete with (tile_scores of its weight: edge units scaled to a
// whole unit's area).
Tensor unit_scores(const nn::SparseLinear& layer) {
  return tile_scores(layer.dense_weight(), layer.unit().rows, layer.unit().cols);
}

// Runs fn, naming the layer and the step in any error it throws (a mask chosen from diverged
// scores, say).
template <class Fn>
auto for_layer(const std::string& path, int64_t step, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    PIT_THROW("sparsifier: layer '", path, "' at step ", step, ": ", user_message(e));
  }
}

}  // namespace

const char* method_name(Method m) {
  switch (m) {
    case Method::magnitude: return "magnitude";
    case Method::set: return "set";
    default: return "rigl";
  }
}

Method parse_method(std::string_view name) {
  for (const Method m : {Method::magnitude, Method::set, Method::rigl})
    if (name == method_name(m)) return m;
  PIT_THROW("unknown sparsifier method '", name, "'; allowed: magnitude, set, rigl");
}

namespace {

const SparsifierOptions& checked(const SparsifierOptions& o) {
  PIT_CHECK(o.sparsity >= 0.0 && o.sparsity < 1.0, "sparse.sparsity must be in [0, 1), got ", o.sparsity);
  // pit-train turns its update_end 0 into 3/4 of run.steps; a library user's 0 would be no update
  // at all: a static random mask, trained without a word.
  PIT_CHECK(o.method == Method::magnitude || o.update_end > 0, "sparse.update_end (SparsifierOptions::update_end) is ",
            o.update_end, ", so ", method_name(o.method), " would never update the mask; set it to the step the updates "
            "end at (RigL's default: 3/4 of the training steps)");
  return o;
}

}  // namespace

Sparsifier::Sparsifier(nn::Module& model, const SparsifierOptions& o, Communicator* comm)
    : o_(checked(o)),
      comm_(comm),
      cubic_({.initial = o.method == Method::magnitude ? o.initial_sparsity : 0.0,
              .final = o.method == Method::magnitude ? o.sparsity : 0.0,
              .start = o.start,
              .end = o.method == Method::magnitude ? o.end : o.start,
              .every = o.every}),
      drop_({.initial = o.drop_fraction, .end = o.update_end, .every = o.update_every}) {
  nn::kernel_tile(o.unit);  // names the units the kernels take
  std::vector<std::string> all, already;  // every Linear; those matched but sparse already
  std::vector<bool> used(o.layers.size(), false);  // each pattern: did it match a Linear
  for (const auto& [path, m] : model.modules()) {
    auto* linear = dynamic_cast<nn::Linear*>(m);
    if (!linear) continue;
    all.push_back(path);
    bool matched = false;
    for (size_t p = 0; p < o.layers.size(); ++p) {
      if (!glob_match(o.layers[p], path)) continue;
      used[p] = true;
      if (matched) continue;
      matched = true;
      if (linear->sparse()) already.push_back(path);
      else layers_.emplace_back(path, linear);
    }
  }
  const auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& n : v) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("(none)") : s;
  };
  for (size_t p = 0; p < o.layers.size(); ++p)  // a typo in one pattern must not pass for a smaller model
    PIT_CHECK(used[p] || layers_.empty(), "sparse.layers pattern '", o.layers[p],
              "' matches no Linear layer of the model (a typo?); its Linear layers are: ", join(all));
  PIT_CHECK(!layers_.empty() || already.empty(), "sparse.layers matches only layers that are sparse already (",
            join(already), "): another Sparsifier holds them; a model takes one Sparsifier");
  PIT_CHECK(!layers_.empty(), "sparse.layers matches no Linear layer of the model; its Linear layers are: ", join(all));
  if (o.dense_first_last) {
    PIT_CHECK(layers_.size() > 2, "sparse.dense_first_last leaves no sparse layer: only ", layers_.size(),
              " layer(s) match sparse.layers");
    layers_.erase(layers_.end() - 1);
    layers_.erase(layers_.begin());
  }
  PIT_CHECK(layers_.size() <= kMaxSparseLayers, "sparse.layers matches ", layers_.size(),
            " Linear layers; the sparsifier's random streams name at most ", kMaxSparseLayers,
            ": match fewer layers (a narrower pattern)");
  for (auto& [path, linear] : layers_) {
    shapes_.push_back({path, {linear->out_features(), linear->in_features()}, false});
    linear->sparsify(o.unit);
  }
  if (o.method == Method::magnitude) return;  // dense until the schedule's first update
  // SET / RigL start from a random mask at the budget's density (the dense init where kept).
  const std::vector<double> d = densities(o.sparsity);
  for (size_t i = 0; i < layers_.size(); ++i) {
    nn::SparseLinear& s = *layers_[i].second->sparse();
    const Shape shape = s.tile_mask().shape();
    std::vector<float> score(static_cast<size_t>(shape_numel(shape)));
    const uint64_t stream = sparse_stream(SparseDraw::initial_mask, 0, i);
    for (size_t j = 0; j < score.size(); ++j) score[j] = sparse_uniform(o.seed, stream, j);
    s.set_tile_mask(top_tiles(from_vector(score, shape), units_to_keep(d[i], s.total_units())).to(s.values().device()));
  }
}

std::vector<double> Sparsifier::densities(double sparsity) const {
  return layer_densities(shapes_, sparsity, o_.budget);
}

bool Sparsifier::is_update_step(int64_t step) const {
  return o_.method == Method::magnitude ? cubic_.is_update_step(step) : drop_.is_update_step(step);
}

void Sparsifier::before_step(int64_t step) {
  const bool want = o_.method == Method::rigl && is_update_step(step);
  for (auto& [path, linear] : layers_) linear->sparse()->request_dense_grad(want);
}

MaskChanges Sparsifier::after_step(int64_t step, optim::Optimizer& optimizer, bool gradients_finite) {
  if (!is_update_step(step)) return {};
  if (o_.method == Method::rigl && !gradients_finite) return {.skipped = true};
  return o_.method == Method::magnitude ? prune_by_magnitude(step, optimizer) : drop_and_grow_all(step, optimizer);
}

MaskChanges Sparsifier::prune_by_magnitude(int64_t step, optim::Optimizer& optimizer) {
  const double s = cubic_.sparsity_at(step);
  std::vector<Tensor> norms;
  for (auto& [path, linear] : layers_) norms.push_back(unit_scores(*linear->sparse()));
  std::vector<Tensor> masks(layers_.size());
  std::vector<std::string> emptied;
  if (o_.global) {
    // One threshold: the units of largest norm over every layer, (1 - s) of all weights' units.
    std::vector<std::pair<float, int64_t>> all;  // score, global unit number
    std::vector<int64_t> first(layers_.size() + 1, 0);
    std::vector<std::vector<float>> h(layers_.size());
    for (size_t i = 0; i < layers_.size(); ++i) {
      h[i] = host_f32(norms[i]);
      for_layer(layers_[i].first, step, [&] { check_finite_scores(h[i], "the unit norms"); });
      first[i + 1] = first[i] + static_cast<int64_t>(h[i].size());
      for (size_t j = 0; j < h[i].size(); ++j) all.emplace_back(h[i][j], first[i] + static_cast<int64_t>(j));
    }
    const int64_t keep = units_to_keep(1.0 - s, first.back());
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<uint8_t> on(static_cast<size_t>(first.back()), 0);
    for (int64_t k = 0; k < keep; ++k) on[static_cast<size_t>(all[static_cast<size_t>(k)].second)] = 1;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::vector<uint8_t> mine(on.begin() + first[i], on.begin() + first[i + 1]);
      masks[i] = from_vector(mine, norms[i].shape()).to(DType::boolean).to(norms[i].device());
      // A layer left with no unit passes on its bias alone: said, not hidden (MaskChanges::emptied).
      if (!mine.empty() && std::find(mine.begin(), mine.end(), uint8_t{1}) == mine.end())
        emptied.push_back(layers_[i].first);
    }
  } else {
    const std::vector<double> d = densities(s);
    for (size_t i = 0; i < layers_.size(); ++i) {
      const int64_t units = layers_[i].second->sparse()->total_units();
      const int64_t keep = units_to_keep(d[i], units);
      masks[i] = for_layer(layers_[i].first, step, [&] { return top_tiles(norms[i], keep); });
      if (keep == 0 && units > 0) emptied.push_back(layers_[i].first);  // a budget that rounds to no unit
    }
  }
  MaskChanges out{.updated = true, .emptied = std::move(emptied)};
  for (size_t i = 0; i < layers_.size(); ++i) {
    nn::SparseLinear& layer = *layers_[i].second->sparse();
    const int64_t changed = units_changed(layer.tile_mask(), masks[i]);
    if (changed == 0) continue;
    out.changed += changed;
    optimizer.relayout_state(layer.values(), layer.set_tile_mask(masks[i]));
  }
  return out;
}

MaskChanges Sparsifier::drop_and_grow_all(int64_t step, optim::Optimizer& optimizer) {
  const double fraction = drop_.at(step);
  // RigL's growth scores: the norms of each layer's dense gradient, every layer's before any mask
  // changes. That gradient covers the pruned positions, which a loss scaler's overflow check does
  // not see: one that overflowed (f16 under a large scale) skips the update as an overflow of the
  // kept gradients does (after_step), the same on every rank (the gradient is all-reduced).
  std::vector<Tensor> grow_scores(layers_.size());
  if (o_.method == Method::rigl) {
    bool finite = true;
    for (size_t i = 0; i < layers_.size(); ++i) {
      nn::SparseLinear& layer = *layers_[i].second->sparse();
      Tensor g = layer.dense_weight_grad();
      PIT_CHECK(g.defined(), "RigL: layer '", layers_[i].first, "' has no dense gradient at update step ", step,
                "; call before_step(step) before the step's forward");
      if (comm_ && comm_->size() > 1) {  // the global batch's gradient: the same growth on every rank
        g = g.to(DType::f32).contiguous().clone();
        comm_->all_reduce(g, ReduceOp::mean);
      }
      grow_scores[i] = tile_scores(g, layer.unit().rows, layer.unit().cols);
      const std::vector<float> h = host_f32(grow_scores[i]);
      finite = finite && std::all_of(h.begin(), h.end(), [](float v) { return std::isfinite(v); });
    }
    if (!finite) {
      for (auto& [path, linear] : layers_) linear->sparse()->request_dense_grad(false);
      return {.skipped = true};
    }
  }
  MaskChanges out{.updated = true};
  for (size_t i = 0; i < layers_.size(); ++i) {
    nn::SparseLinear& layer = *layers_[i].second->sparse();
    const int64_t drop = std::llround(fraction * static_cast<double>(layer.kept_units()));
    const MaskUpdate u = for_layer(layers_[i].first, step, [&] {
      return drop_and_grow(layer.tile_mask(), unit_scores(layer), drop,
                           o_.method == Method::rigl ? Grow::gradient : Grow::random, grow_scores[i], o_.seed,
                           sparse_stream(SparseDraw::growth, static_cast<uint64_t>(step), i));
    });
    layer.request_dense_grad(false);
    out.changed += u.dropped + u.grown;
    if (u.dropped == 0) continue;
    optimizer.relayout_state(layer.values(), layer.set_tile_mask(u.mask, u.grown_mask));
  }
  return out;
}

std::vector<LayerSparsity> Sparsifier::layers() const {
  std::vector<LayerSparsity> out;
  for (const auto& [path, linear] : layers_) {
    const nn::SparseLinear& s = *linear->sparse();
    // A layout on the dense path runs the dense GEMMs (r x 1 units on CUDA, blocks above the
    // cut-off): it computes every weight, whatever its density.
    const double computed = s.layout().dense_path() ? 1.0 : s.layout().density();
    out.push_back({path, s.out_features(), s.in_features(), s.density(), computed, s.kept_units(), s.total_units()});
  }
  return out;
}

namespace {

// The mean of a per-layer fraction of weights (density, computed), weighted by the layers' sizes.
double weighted(const std::vector<LayerSparsity>& layers, double LayerSparsity::*field) {
  double sum = 0, all = 0;
  for (const LayerSparsity& l : layers) {
    const double n = static_cast<double>(l.out * l.in);
    sum += l.*field * n;
    all += n;
  }
  return all == 0 ? 1.0 : sum / all;
}

}  // namespace

double Sparsifier::sparsity() const { return 1.0 - weighted(layers(), &LayerSparsity::density); }

double Sparsifier::flops_saved() const { return 1.0 - weighted(layers(), &LayerSparsity::computed); }

std::string Sparsifier::describe() const {
  char buf[256];
  const std::string layers = std::to_string(layers_.size()) + " layer" + (layers_.size() == 1 ? "" : "s");
  if (o_.method == Method::magnitude) {
    std::snprintf(buf, sizeof buf, "magnitude %s -> %.0f%%, %s (%s), cubic %.2f -> %.2f over steps %lld..%lld every %lld",
                  o_.unit.str().c_str(), 100.0 * o_.sparsity, layers.c_str(),
                  o_.global ? "global threshold" : budget_name(o_.budget), o_.initial_sparsity, o_.sparsity,
                  static_cast<long long>(o_.start), static_cast<long long>(o_.end), static_cast<long long>(o_.every));
  } else {
    std::snprintf(buf, sizeof buf, "%s %s at %.0f%%, %s (%s), drop %.2f (cosine) every %lld steps until %lld",
                  method_name(o_.method), o_.unit.str().c_str(), 100.0 * o_.sparsity, layers.c_str(),
                  budget_name(o_.budget), o_.drop_fraction, static_cast<long long>(o_.update_every),
                  static_cast<long long>(o_.update_end));
  }
  return buf;
}

std::string Sparsifier::shortfall(int64_t steps) const {
  if (steps < 1) return "";
  if (o_.method != Method::magnitude) {
    // Update steps are the multiples of update_every in [1, min(update_end, steps)).
    if (o_.update_every < std::min(o_.update_end, steps)) return "";
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "sparse.update_every (%lld) is not below sparse.update_end (%lld) and run.steps (%lld): %s never "
                  "updates the mask in this run, which trains its random starting mask; lower sparse.update_every",
                  static_cast<long long>(o_.update_every), static_cast<long long>(o_.update_end),
                  static_cast<long long>(steps), method_name(o_.method));
    return buf;
  }
  if (o_.end < steps) return "";
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "sparse.end_step (%lld) is not before run.steps (%lld): the run ends at %.0f%% sparsity, not the "
                "%.0f%% of sparse.sparsity; set sparse.end_step (and start_step) below run.steps to reach it",
                static_cast<long long>(o_.end), static_cast<long long>(steps), 100.0 * cubic_.sparsity_at(steps - 1),
                100.0 * o_.sparsity);
  return buf;
}

}  // namespace pit::sparse_train
