#include "trainer/train/sparse_stats.h"

#include <cstdlib>

#include "core/error.h"

namespace pit::train {
namespace {

sparse::MicroTile parse_unit(const std::string& s) {
  const size_t x = s.find('x');
  PIT_CHECK(x != std::string::npos, "sparse.unit must be RxC (e.g. 32x1), got ", s);
  return {std::atoll(s.substr(0, x).c_str()), std::atoll(s.substr(x + 1).c_str())};
}

sparse_train::Method method_of(SparseMethod m) {
  switch (m) {
    case SparseMethod::magnitude: return sparse_train::Method::magnitude;
    case SparseMethod::set: return sparse_train::Method::set;
    case SparseMethod::rigl: return sparse_train::Method::rigl;
    default: PIT_THROW("sparse.method none has no sparsifier");
  }
}

}  // namespace

sparse_train::SparsifierOptions sparsifier_options(const Config& c) {
  const SparseConfig& s = c.sparse;
  sparse_train::SparsifierOptions o;
  o.method = method_of(s.method);
  o.layers = s.layers;
  o.unit = parse_unit(s.unit);
  o.sparsity = s.sparsity;
  o.budget = sparse_train::parse_budget(s.budget);
  o.dense_first_last = s.dense_first_last;
  o.initial_sparsity = s.initial_sparsity;
  o.start = s.start_step;
  o.end = s.end_step;
  o.every = s.every;
  o.global = s.global_threshold;
  o.drop_fraction = s.drop_fraction;
  o.update_every = s.update_every;
  o.update_end = c.sparse_update_end();
  o.seed = static_cast<uint64_t>(c.run.seed);
  return o;
}

SparseStats::SparseStats(const Config& c, nn::Module& model, Communicator* comm) {
  if (c.sparse.method == SparseMethod::none) return;
  steps_ = c.run.steps;
  speaks_ = comm == nullptr || comm->rank() == 0;
  sparsifier_ = std::make_unique<sparse_train::Sparsifier>(model, sparsifier_options(c), comm);
}

void SparseStats::print_header(std::FILE* out) {
  if (!sparsifier_) return;
  std::fprintf(out, "pit-train: sparse %s\n", sparsifier_->describe().c_str());
  if (const std::string s = sparsifier_->shortfall(steps_); !s.empty()) std::fprintf(out, "pit-train: warning: %s\n", s.c_str());
  for (const sparse_train::LayerSparsity& l : sparsifier_->layers())
    std::fprintf(out, "pit-train:   %-24s %5lld x %-5lld density %5.1f%% (%lld of %lld units)\n", l.name.c_str(),
                 static_cast<long long>(l.out), static_cast<long long>(l.in), 100.0 * l.density,
                 static_cast<long long>(l.kept_units), static_cast<long long>(l.units));
  // SET / RigL start at the budget's density: a small layer's may round to no unit.
  for (const sparse_train::LayerSparsity& l : sparsifier_->layers())
    if (l.units > 0 && l.kept_units == 0) warn_emptied("at the start", l.name);
}

void SparseStats::before_step(int64_t step) {
  if (sparsifier_) sparsifier_->before_step(step);
}

void SparseStats::after_step(int64_t step, optim::Optimizer& optimizer, bool overflow) {
  if (!sparsifier_) return;
  const sparse_train::MaskChanges ch = sparsifier_->after_step(step, optimizer, !overflow);
  updates_ += ch.updated;
  changes_ += ch.changed;
  if (ch.skipped && speaks_)
    std::fprintf(stderr,
                 "pit-train: note: step %lld: the mask update was skipped: the gradients it grows from overflowed "
                 "(a loss scale too large for f16; the scaler lowers it); the next update step runs as usual\n",
                 static_cast<long long>(step));
  for (const std::string& layer : ch.emptied) warn_emptied("step " + std::to_string(step), layer);
}

void SparseStats::warn_emptied(const std::string& when, const std::string& layer) {
  if (!speaks_ || !warned_.insert(layer).second) return;
  if (sparsifier_->options().global)
    std::fprintf(stderr,
                 "pit-train: warning: %s: sparse.threshold global pruned every unit of layer '%s', which now "
                 "passes on its bias alone; use sparse.threshold: layer (a budget per layer) or a lower "
                 "sparse.sparsity\n",
                 when.c_str(), layer.c_str());
  else
    std::fprintf(stderr,
                 "pit-train: warning: %s: layer '%s' has too few units for its budget, which rounds to none: it "
                 "passes on its bias alone; use a smaller sparse.unit, a lower sparse.sparsity, or leave the "
                 "layer out of sparse.layers (or sparse.dense_first_last: true)\n",
                 when.c_str(), layer.c_str());
}

std::string SparseStats::flush(MetricsRecord& rec) {
  if (!sparsifier_) return "";
  const double sparsity = sparsifier_->sparsity();
  rec.add("sparsity", sparsity).add("flops_saved", sparsifier_->flops_saved());
  rec.add("mask_updates", updates_).add("mask_changes", changes_);
  for (const sparse_train::LayerSparsity& l : sparsifier_->layers()) rec.add("density/" + l.name, l.density);
  updates_ = changes_ = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, " | sparsity %.1f%%", 100.0 * sparsity);
  return buf;
}

}  // namespace pit::train
