#include "trainer/nn/transformer.h"

#include <cmath>

#include "ops/functional.h"
#include "ops/operators.h"

namespace pit::nn {
namespace {

constexpr double kInitStd = 0.02;  // GPT-2

void check_options(const TransformerOptions& o) {
  auto positive = [](const char* what, int64_t v) {
    PIT_CHECK(v > 0, "TransformerLM: ", what, " must be positive, got ", v);
  };
  positive("vocab_size", o.vocab_size);
  positive("block_size", o.block_size);
  positive("n_layer", o.n_layer);
  positive("n_head", o.n_head);
  positive("n_embd", o.n_embd);
  positive("mlp_ratio", o.mlp_ratio);
  PIT_CHECK(o.n_embd % o.n_head == 0, "TransformerLM: n_embd ", o.n_embd,
            " must be a multiple of n_head ", o.n_head);
  PIT_CHECK(o.dropout >= 0.0 && o.dropout < 1.0, "TransformerLM: dropout must be in [0, 1), got ",
            o.dropout);
  PIT_CHECK(o.experts >= 0 && o.moe_every >= 1, "TransformerLM: experts must be >= 0 and moe_every >= 1, got ",
            o.experts, " and ", o.moe_every);
  PIT_CHECK(o.experts == 0 || o.moe_every <= o.n_layer, "TransformerLM: moe_every ", o.moe_every, " with ", o.n_layer,
            " layers makes no layer MoE (block i is MoE where (i + 1) % moe_every == 0); set moe_every <= n_layer, "
            "or experts 0 for a dense model");
}

// The init of the projections back into the residual stream.
Init residual_init(const TransformerOptions& o) {
  return Init::normal(kInitStd / std::sqrt(2.0 * static_cast<double>(o.n_layer)));
}

}  // namespace

// ---- attention ----------------------------------------------------------------------------------

CausalSelfAttention::CausalSelfAttention(const TransformerOptions& o, Generator& gen)
    : n_head_(o.n_head), dropout_(o.dropout) {
  // Built directly (or in a TransformerBlock), not only through TransformerLM's check_options:
  // n_head 0 (the options' default) would divide by zero in forward.
  PIT_CHECK(o.n_head > 0 && o.n_embd > 0 && o.n_embd % o.n_head == 0, "CausalSelfAttention: n_embd (", o.n_embd,
            ") must be a positive multiple of n_head (", o.n_head, "); set TransformerOptions::n_head");
  qkv_ = register_module("qkv", std::make_shared<Linear>(o.n_embd, 3 * o.n_embd, o.bias, gen,
                                                         Init::normal(kInitStd)));
  proj_ = register_module("proj", std::make_shared<Linear>(o.n_embd, o.n_embd, o.bias, gen,
                                                           residual_init(o)));
}

Variable CausalSelfAttention::forward(const Variable& x) {
  PIT_CHECK(x.dim() == 3, "CausalSelfAttention: the input must be (batch, seq, n_embd), got ",
            shape_str(x.shape()));
  const int64_t b = x.size(0), t = x.size(1), c = x.size(2), dh = c / n_head_;
  const Variable qkv = qkv_->forward(x);  // (B, T, 3C)
  // (B, T, C) slice -> (B, T, H, Dh) view -> (B, H, T, Dh) view.
  auto head = [&](int64_t i) {
    return ops::transpose(ops::reshape(ops::slice(qkv, 2, i * c, (i + 1) * c), {b, t, n_head_, dh}),
                          1, 2);
  };
  const Variable y = ops::causal_attention(head(0), head(1), head(2));
  const Variable merged = ops::reshape(ops::transpose(y, 1, 2), {b, t, c});
  return ops::dropout(proj_->forward(merged), dropout_, is_training());
}

// ---- block --------------------------------------------------------------------------------------

TransformerBlock::TransformerBlock(const TransformerOptions& o, Generator& gen, bool moe) {
  ln_1_ = register_module("ln_1", make_norm(o.norm, o.n_embd, o.bias));
  attn_ = register_module("attn", std::make_shared<CausalSelfAttention>(o, gen));
  ln_2_ = register_module("ln_2", make_norm(o.norm, o.n_embd, o.bias));
  if (moe) {
    MoE::Options e;
    e.dim = o.n_embd;
    e.hidden = o.mlp_ratio * o.n_embd;
    e.experts = o.experts;
    e.top_k = o.top_k;
    e.activation = o.activation;
    e.jitter = o.router_jitter;
    e.capacity_factor = o.capacity_factor;
    e.expert_comm = o.expert_comm;
    e.dropout = o.dropout;
    e.router_std = kInitStd;
    e.fc_std = kInitStd;
    e.proj_std = residual_init(o).std;
    moe_ = register_module("moe", std::make_shared<MoE>(e, gen));
    return;
  }
  MLP::Options m;
  m.dim = o.n_embd;
  m.hidden = o.mlp_ratio * o.n_embd;
  m.activation = o.activation;
  m.dropout = o.dropout;
  m.bias = o.bias;
  m.sparse_activation = o.sparse_activation;
  m.fc_init = Init::normal(kInitStd);
  m.proj_init = residual_init(o);
  mlp_ = register_module("mlp", std::make_shared<MLP>(m, gen));
}

Variable TransformerBlock::forward(const Variable& x) {
  const DType stream = x.dtype();  // the residual stream keeps its dtype
  const Variable h = x + ops::cast(attn_->forward(ln_1_->forward(x)), stream);
  const Variable n = ln_2_->forward(h);
  return h + ops::cast(moe_ ? moe_->forward(n) : mlp_->forward(n), stream);
}

// ---- model --------------------------------------------------------------------------------------

TransformerLM::TransformerLM(const TransformerOptions& o, Generator& gen) : opt_(o) {
  check_options(o);
  wte_ = register_module("wte", std::make_shared<Embedding>(o.vocab_size, o.n_embd, gen, kInitStd));
  wpe_ = register_module("wpe", std::make_shared<Embedding>(o.block_size, o.n_embd, gen, kInitStd));
  blocks_ = register_module("blocks", std::make_shared<ModuleList>());
  for (int64_t i = 0; i < o.n_layer; ++i) {
    const bool moe = o.experts > 0 && (i + 1) % o.moe_every == 0;
    const auto block = std::make_shared<TransformerBlock>(o, gen, moe);
    blocks_->push_back(block);
    if (moe) moe_layers_.push_back(block->moe());
  }
  ln_f_ = register_module("ln_f", make_norm(o.norm, o.n_embd, o.bias));
  if (!o.tie_embeddings)
    lm_head_ = register_module("lm_head", std::make_shared<Linear>(o.n_embd, o.vocab_size, false, gen,
                                                                   Init::normal(kInitStd)));
}

Variable TransformerLM::forward(const Variable& ids) {
  PIT_CHECK(ids.dim() == 2, "TransformerLM: ids must be (batch, seq), got shape ",
            shape_str(ids.shape()));
  const int64_t t = ids.size(1);
  PIT_CHECK(t >= 1 && t <= opt_.block_size, "TransformerLM: sequence length ", t,
            " must be in [1, block_size = ", opt_.block_size, "]");
  const Variable pos(arange(0.0, static_cast<double>(t), 1.0, DType::i64, ids.device()));
  Variable x = ops::dropout(wte_->forward(ids) + wpe_->forward(pos), opt_.dropout, is_training());
  for (size_t i = 0; i < blocks_->size(); ++i) x = (*blocks_)[i].forward(x);
  x = ln_f_->forward(x);
  if (lm_head_) return lm_head_->forward(x);
  return ops::linear(to_compute(x), to_compute(wte_->weight()));
}

}  // namespace pit::nn
