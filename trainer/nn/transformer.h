#pragma once
// A GPT-2 style decoder: token + learned position embeddings, pre-norm blocks of causal
// self-attention and MLP with residuals, a final norm and an LM head (optionally tied to the
// token embedding). GPT-2 initialisation: weights N(0, 0.02), biases 0, and the residual
// projections (attn/proj, mlp/proj) N(0, 0.02 / sqrt(2 * n_layer)).
//
// Mixed precision: the residual stream stays f32 (the embeddings are f32 rows; each block adds
// its branch back in f32) and the norms compute in f32; the Linear layers and the attention run
// in the compute dtype; the logits come out in the compute dtype (cross_entropy computes in f32
// whatever their dtype).
#include <cstdint>
#include <memory>
#include <vector>

#include "core/random.h"
#include "trainer/nn/activation.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/module.h"
#include "trainer/nn/moe.h"

namespace pit::nn {

struct TransformerOptions {
  int64_t vocab_size = 0;
  int64_t block_size = 0;  // the longest sequence (learned positions)
  int64_t n_layer = 0, n_head = 0, n_embd = 0;
  int64_t mlp_ratio = 4;  // MLP hidden width = mlp_ratio * n_embd
  Activation activation = Activation::gelu_tanh;
  NormKind norm = NormKind::layernorm;
  double dropout = 0.0;  // embeddings, attention output and MLP output
  bool bias = true;      // of the Linear layers and LayerNorms
  bool tie_embeddings = true;
  bool sparse_activation = false;  // ReLU MLPs: proj as a K-condense PIT GEMM (nn::MLP)
  // Mixture of experts: with experts > 0, blocks moe_every - 1, 2 moe_every - 1, ... have an MoE
  // layer (nn::MoE: top_k of `experts` FFNs of the MLP's width, no biases) instead of the MLP.
  int64_t experts = 0, top_k = 1, moe_every = 1;
  double router_jitter = 0.0, capacity_factor = 0.0;  // capacity_factor 0: dropless
  // Expert parallelism: each MoE layer's experts sharded over these ranks (null: all here).
  Communicator* expert_comm = nullptr;
};

// qkv (fused Linear n_embd -> 3 n_embd), heads split with views, ops::causal_attention, proj,
// dropout. Takes (B, T, n_embd), returns (B, T, n_embd) in the compute dtype.
class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(const TransformerOptions& o, Generator& gen);
  const char* type_name() const override { return "CausalSelfAttention"; }
  Variable forward(const Variable& x) override;

 private:
  std::shared_ptr<Linear> qkv_, proj_;
  int64_t n_head_;
  double dropout_;
};

// x + attn(ln_1(x)), then + mlp(ln_2(x)) (or + moe(ln_2(x))); x keeps its dtype (f32).
class TransformerBlock : public Module {
 public:
  TransformerBlock(const TransformerOptions& o, Generator& gen, bool moe = false);
  const char* type_name() const override { return "TransformerBlock"; }
  Variable forward(const Variable& x) override;
  const std::shared_ptr<MoE>& moe() const { return moe_; }  // null in a dense block

 private:
  std::shared_ptr<Module> ln_1_, ln_2_;
  std::shared_ptr<CausalSelfAttention> attn_;
  std::shared_ptr<MLP> mlp_;
  std::shared_ptr<MoE> moe_;
};

class TransformerLM : public Module {
 public:
  TransformerLM(const TransformerOptions& o, Generator& gen);
  const char* type_name() const override { return "TransformerLM"; }
  // ids (B, T) i64 (or i32), T <= block_size -> logits (B, T, vocab_size).
  Variable forward(const Variable& ids) override;
  const TransformerOptions& options() const { return opt_; }
  // The MoE layers, in block order (empty for a dense model); their last_routing() describes the
  // last forward.
  const std::vector<std::shared_ptr<MoE>>& moe_layers() const { return moe_layers_; }

 private:
  TransformerOptions opt_;
  std::vector<std::shared_ptr<MoE>> moe_layers_;
  std::shared_ptr<Embedding> wte_, wpe_;
  std::shared_ptr<ModuleList> blocks_;
  std::shared_ptr<Module> ln_f_;
  std::shared_ptr<Linear> lm_head_;  // null when tied to wte
};

}  // namespace pit::nn
