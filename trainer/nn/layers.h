#pragma once
// The basic layers. Parameters are f32 (master weights); Linear, Conv2d and MLP compute in the
// module's compute dtype (weights and input cast with ops::cast), Embedding returns f32 rows and
// the norms compute in their input's dtype (f32 statistics in every case).
#include <cstdint>

#include "core/random.h"
#include "ops/pit/index.h"
#include "ops/pit/planner.h"
#include "trainer/nn/activation.h"
#include "trainer/nn/module.h"

namespace pit::nn {

// How a layer's weights start: PyTorch's defaults (U(+-1/sqrt(fan_in)) weights and biases), or
// GPT-2's (weights N(0, std), biases 0).
struct Init {
  enum class Scheme { pytorch, normal };
  Scheme scheme = Scheme::pytorch;
  double std = 0.02;
  static Init pytorch() { return {}; }
  static Init normal(double std) { return {Scheme::normal, std}; }
};

class SparseLinear;

// y = x W^T + b: weight (out, in), bias (out). sparsify() turns it into a pruned layer.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, Init init = {});
  const char* type_name() const override { return "Linear"; }
  Variable forward(const Variable& x) override;  // (..., in) -> (..., out), compute dtype
  // activate(a, forward(x)); a sparse layer fuses a ReLU into its kernels (ops::sparse_linear).
  Variable forward_activated(const Variable& x, Activation a);
  const Variable& weight() const { return weight_; }  // undefined once sparse
  const Variable& bias() const { return bias_; }      // undefined without bias, or once sparse
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  // Makes the weight sparse in `unit` micro-tiles (nn/sparse_linear.h): weight and bias move into
  // the child "sparse" (a SparseLinear, every unit kept at first; parameters "sparse/values",
  // "sparse/bias", buffer "sparse/tile_mask"), which forward runs from then on. Create the
  // optimizer after sparsifying: one made before holds the old weight and bias Variables, which
  // the layer no longer reads, and not their replacements; its step() then refuses, naming them.
  SparseLinear& sparsify(sparse::MicroTile unit);
  SparseLinear* sparse() const { return sparse_.get(); }  // null while dense

 private:
  Variable weight_, bias_;
  int64_t in_ = 0, out_ = 0;
  std::shared_ptr<SparseLinear> sparse_;
};

// proj(relu(fc(x))): where both layers are sparse, one op (SparseLinear::forward_relu_into, the
// ReLU's derivative kept as bits on CUDA); else fc's forward_activated, then proj.
Variable relu_ffn(Linear& fc, Linear& proj, const Variable& x);

// Rows of weight (num_embeddings, dim), N(0, std) at init, picked by integer ids of any shape.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Generator& gen, double std = 1.0);
  const char* type_name() const override { return "Embedding"; }
  Variable forward(const Variable& ids) override;  // ids (...) i64/i32 -> (..., dim) f32
  const Variable& weight() const { return weight_; }

 private:
  Variable weight_;
};

// Over the last dim: weight 1 and bias 0 at init.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool bias = true);
  const char* type_name() const override { return "LayerNorm"; }
  Variable forward(const Variable& x) override;

 private:
  Variable weight_, bias_;
  double eps_;
};

// Over the last dim, no mean and no bias: x / sqrt(mean(x^2) + eps) * weight; weight 1 at init.
class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6);
  const char* type_name() const override { return "RMSNorm"; }
  Variable forward(const Variable& x) override;

 private:
  Variable weight_;
  double eps_;
};

// A LayerNorm or an RMSNorm.
std::shared_ptr<Module> make_norm(NormKind kind, int64_t dim, bool bias = true);

// NCHW, square kernel; weight (out, in, k, k), bias (out); PyTorch's default init.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
         int64_t padding, bool bias, Generator& gen);
  const char* type_name() const override { return "Conv2d"; }
  Variable forward(const Variable& x) override;  // compute dtype

 private:
  Variable weight_, bias_;
  int64_t stride_, padding_;
};

// fc (dim -> hidden), activation, proj (hidden -> out), dropout. With sparse_activation (ReLU
// only) proj runs as a K-condense PIT GEMM over the activation's non-zero 32x1 micro-tiles,
// detected online every step (ops::pit_matmul); on CUDA its planner takes cuBLAS instead when
// the activation is too dense to win (from the previous step's counts: no wait).
class MLP : public Module {
 public:
  struct Options {
    int64_t dim = 0, hidden = 0, out = 0;  // out 0: dim
    Activation activation = Activation::gelu;
    double dropout = 0.0;
    bool bias = true;
    bool sparse_activation = false;
    Init fc_init, proj_init;
  };
  MLP(const Options& o, Generator& gen);
  const char* type_name() const override { return "MLP"; }
  Variable forward(const Variable& x) override;

 private:
  Variable sparse_proj(const Variable& h);

  std::shared_ptr<Linear> fc_, proj_;
  Activation activation_;
  double dropout_;
  bool sparse_activation_;
  std::shared_ptr<sparse::PlanSite> site_;  // the planner's state for proj, across steps
};

}  // namespace pit::nn
