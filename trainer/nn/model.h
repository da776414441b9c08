#pragma once
// make_model: builds any model of trainer/nn from one plain options struct (the trainer maps its
// config onto it). Weights are drawn on the CPU from Generator(seed), so a seed gives the same
// model everywhere; move it with model->to(device) afterwards.
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "trainer/nn/activation.h"
#include "trainer/nn/module.h"

namespace pit::nn {

enum class ModelKind { mlp, cnn, transformer };
ModelKind parse_model_kind(std::string_view name);  // "mlp", "cnn", "transformer"
const char* model_kind_name(ModelKind kind);

struct ModelOptions {
  ModelKind kind = ModelKind::mlp;
  uint64_t seed = 0;
  DType compute_dtype = DType::f32;  // f32, bf16 or f16 (the last two on CUDA only)
  Activation activation = Activation::relu;  // hidden layers (classifiers) or MLP (transformer)
  double dropout = 0.0;
  bool bias = true;

  // mlp, cnn: input (B, in_channels, image_size, image_size) -> logits (B, num_classes).
  int64_t in_channels = 1, image_size = 28, num_classes = 10;
  std::vector<int64_t> hidden = {128};       // hidden Linear widths
  std::vector<int64_t> channels = {16, 32};  // cnn: conv3x3-relu-maxpool stages

  // transformer: ids (B, T) -> logits (B, T, vocab_size).
  int64_t vocab_size = 0, block_size = 0, n_layer = 0, n_head = 0, n_embd = 0, mlp_ratio = 4;
  NormKind norm = NormKind::layernorm;
  bool tie_embeddings = true;
  bool sparse_activation = false;  // transformer, ReLU: see TransformerOptions
  // transformer, mixture of experts (0 experts: dense MLPs): see TransformerOptions.
  int64_t experts = 0, top_k = 1, moe_every = 1;
  double router_jitter = 0.0, capacity_factor = 0.0;
  Communicator* expert_comm = nullptr;  // expert parallelism: see TransformerOptions
};

std::shared_ptr<Module> make_model(const ModelOptions& options);

}  // namespace pit::nn
