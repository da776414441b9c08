#include "trainer/nn/layers.h"

#include "ops/functional.h"
#include "ops/pit/pit_ops.h"
#include "trainer/nn/init.h"
#include "trainer/nn/sparse_linear.h"

namespace pit::nn {
namespace {

void check_positive(const char* layer, const char* what, int64_t v) {
  PIT_CHECK(v > 0, layer, ": ", what, " must be positive, got ", v);
}

Tensor init_weight(const Shape& shape, int64_t fan_in, const Init& init, Generator& gen) {
  return init.scheme == Init::Scheme::normal ? init::normal(shape, 0.0, init.std, gen)
                                             : init::fan_in_uniform(shape, fan_in, gen);
}

Tensor init_bias(int64_t n, int64_t fan_in, const Init& init, Generator& gen) {
  return init.scheme == Init::Scheme::normal ? zeros({n}) : init::fan_in_uniform({n}, fan_in, gen);
}

// The parameter in x's dtype (norms compute in their input's dtype).
Variable like(const Variable& p, const Variable& x) {
  return p.defined() ? ops::cast(p, x.dtype()) : p;
}

}  // namespace

// ---- Linear -------------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, Init init) {
  check_positive("Linear", "in_features", in_features);
  check_positive("Linear", "out_features", out_features);
  weight_ = register_parameter("weight",
                               init_weight({out_features, in_features}, in_features, init, gen));
  if (bias) bias_ = register_parameter("bias", init_bias(out_features, in_features, init, gen));
  in_ = in_features;
  out_ = out_features;
}

Variable Linear::forward(const Variable& x) {
  if (sparse_) return sparse_->forward(x);
  return ops::linear(to_compute(x), to_compute(weight_),
                     bias_.defined() ? to_compute(bias_) : Variable());
}

Variable Linear::forward_activated(const Variable& x, Activation a) {
  if (sparse_ && a == Activation::relu) return sparse_->forward(x, /*relu=*/true);
  return activate(a, forward(x));
}

SparseLinear& Linear::sparsify(sparse::MicroTile unit) {
  PIT_CHECK(!sparse_, "Linear: sparsify() called twice");
  sparse_ = std::make_shared<SparseLinear>(weight_.data(), bias_.defined() ? bias_.data() : Tensor(), unit);
  remove_parameter("weight", "sparse/values (Linear::sparsify)");
  if (bias_.defined()) remove_parameter("bias", "sparse/bias (Linear::sparsify)");
  weight_ = Variable();
  bias_ = Variable();
  register_module("sparse", sparse_);
  return *sparse_;
}

// ---- Embedding ----------------------------------------------------------------------------------

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator& gen, double std) {
  check_positive("Embedding", "num_embeddings", num_embeddings);
  check_positive("Embedding", "dim", dim);
  weight_ = register_parameter("weight", init::normal({num_embeddings, dim}, 0.0, std, gen));
}

Variable Embedding::forward(const Variable& ids) {
  PIT_CHECK(ids.dtype() == DType::i64 || ids.dtype() == DType::i32,
            "Embedding: ids must be i64 or i32, got ", dtype_name(ids.dtype()));
  // CPU ids for a GPU table are copied over (a data loader's batch); GPU ids for a CPU table mean
  // a model left on the CPU, which would then train there without a word.
  PIT_CHECK(!(ids.device().is_cuda() && !weight_.device().is_cuda()), "Embedding: the ids are on ",
            ids.device().str(), " but the table is on ", weight_.device().str(),
            "; move the model to the ids' device first (model.to(device))");
  return ops::embedding(ids.data(), weight_);
}

// ---- norms --------------------------------------------------------------------------------------

LayerNorm::LayerNorm(int64_t dim, double eps, bool bias) : eps_(eps) {
  check_positive("LayerNorm", "dim", dim);
  weight_ = register_parameter("weight", ones({dim}));
  if (bias) bias_ = register_parameter("bias", zeros({dim}));
}

Variable LayerNorm::forward(const Variable& x) {
  return ops::layernorm(x, like(weight_, x), like(bias_, x), eps_);
}

RMSNorm::RMSNorm(int64_t dim, double eps) : eps_(eps) {
  check_positive("RMSNorm", "dim", dim);
  weight_ = register_parameter("weight", ones({dim}));
}

Variable RMSNorm::forward(const Variable& x) { return ops::rmsnorm(x, like(weight_, x), eps_); }

std::shared_ptr<Module> make_norm(NormKind kind, int64_t dim, bool bias) {
  if (kind == NormKind::rmsnorm) return std::make_shared<RMSNorm>(dim);
  return std::make_shared<LayerNorm>(dim, 1e-5, bias);
}

// ---- Conv2d -------------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
               int64_t padding, bool bias, Generator& gen)
    : stride_(stride), padding_(padding) {
  check_positive("Conv2d", "in_channels", in_channels);
  check_positive("Conv2d", "out_channels", out_channels);
  check_positive("Conv2d", "kernel", kernel);
  check_positive("Conv2d", "stride", stride);
  PIT_CHECK(padding >= 0, "Conv2d: padding must be >= 0, got ", padding);
  const int64_t fan_in = in_channels * kernel * kernel;
  weight_ = register_parameter("weight", init::fan_in_uniform({out_channels, in_channels, kernel, kernel},
                                                              fan_in, gen));
  if (bias) bias_ = register_parameter("bias", init::fan_in_uniform({out_channels}, fan_in, gen));
}

Variable Conv2d::forward(const Variable& x) {
  return ops::conv2d(to_compute(x), to_compute(weight_),
                     bias_.defined() ? to_compute(bias_) : Variable(), stride_, padding_);
}

// ---- MLP ----------------------------------------------------------------------------------------

MLP::MLP(const Options& o, Generator& gen)
    : activation_(o.activation), dropout_(o.dropout), sparse_activation_(o.sparse_activation),
      site_(std::make_shared<sparse::PlanSite>()) {
  PIT_CHECK(o.dropout >= 0.0 && o.dropout < 1.0, "MLP: dropout must be in [0, 1), got ", o.dropout);
  PIT_CHECK(!o.sparse_activation || o.activation == Activation::relu, "MLP: sparse_activation needs the ReLU ",
            "activation (its zeros are what the PIT GEMM skips); set the activation to relu");
  fc_ = register_module("fc", std::make_shared<Linear>(o.dim, o.hidden, o.bias, gen, o.fc_init));
  proj_ = register_module("proj", std::make_shared<Linear>(o.hidden, o.out > 0 ? o.out : o.dim,
                                                           o.bias, gen, o.proj_init));
}

Variable relu_ffn(Linear& fc, Linear& proj, const Variable& x) {
  if (fc.sparse() && proj.sparse()) return fc.sparse()->forward_relu_into(*proj.sparse(), x);
  return proj.forward(fc.forward_activated(x, Activation::relu));
}

Variable MLP::forward(const Variable& x) {
  if (activation_ == Activation::relu && fc_->sparse() && proj_->sparse())  // both pruned: one op
    return ops::dropout(relu_ffn(*fc_, *proj_, x), dropout_, is_training());
  const Variable h = fc_->forward_activated(x, activation_);
  const bool pit = sparse_activation_ && !proj_->sparse();  // a pruned proj runs its own kernels
  return ops::dropout(pit ? sparse_proj(h) : proj_->forward(h), dropout_, is_training());
}

// proj(h) = h W^T + b with h's zero micro-tiles skipped: pit_matmul(h, W^T), the planner choosing
// on CUDA (K lists 32x1 on the CPU); the gradient of h is taken at its non-zero micro-tiles only,
// which is all the ReLU passes back anyway.
Variable MLP::sparse_proj(const Variable& h) {
  const Variable w = to_compute(proj_->weight());
  Variable y = ops::pit_matmul(h, ops::transpose(w, 0, 1), {.site = site_.get()});
  return proj_->bias().defined() ? ops::add(y, to_compute(proj_->bias())) : y;
}

}  // namespace pit::nn
