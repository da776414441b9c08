#pragma once
// Dynamic sparse training in the training loop: the Sparsifier made from the config's `sparse`
// section (inactive for method none), its calls around each step, and its metrics over a
// logging window: overall sparsity, FLOPs saved, mask changes, each layer's density.
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "core/comm.h"
#include "trainer/config/config.h"
#include "trainer/nn/module.h"
#include "trainer/optim/optimizer.h"
#include "trainer/sparse/sparsifier.h"
#include "trainer/train/metrics.h"

namespace pit::train {

// The sparsifier options of the config (sparse.method must not be none).
sparse_train::SparsifierOptions sparsifier_options(const Config& config);

class SparseStats {
 public:
  // Makes the config's layers sparse (before the model moves and the optimizer takes its
  // parameters); inactive for sparse.method none. comm: the data-parallel ranks (RigL averages
  // its dense gradients over them), or null.
  SparseStats(const Config& config, nn::Module& model, Communicator* comm = nullptr);
  bool active() const { return sparsifier_ != nullptr; }
  // The method and each sparse layer; warns (stderr) of a layer that starts with no unit.
  void print_header(std::FILE* out);
  void before_step(int64_t step);
  void after_step(int64_t step, optim::Optimizer& optimizer, bool overflow = false);
  // At a log step: sparsity, flops_saved, mask_updates and mask_changes of the window and
  // density/<layer> into `rec`; returns " | sparsity S%" for the progress line.
  std::string flush(MetricsRecord& rec);

 private:
  // Warns once per layer (rank 0) that `layer` has no unit left: it passes on its bias alone.
  // when: "step 120", "at the start".
  void warn_emptied(const std::string& when, const std::string& layer);

  std::unique_ptr<sparse_train::Sparsifier> sparsifier_;
  int64_t steps_ = 0;  // run.steps
  int64_t updates_ = 0, changes_ = 0;
  bool speaks_ = true;              // rank 0 (or one process): prints the warnings
  std::set<std::string> warned_;    // layers already said to be empty
};

}  // namespace pit::train
