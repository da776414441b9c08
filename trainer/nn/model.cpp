#include "trainer/nn/model.h"

#include <string>

#include "core/random.h"
#include "trainer/nn/classifiers.h"
#include "trainer/nn/transformer.h"

namespace pit::nn {

const char* model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::mlp: return "mlp";
    case ModelKind::cnn: return "cnn";
    case ModelKind::transformer: return "transformer";
  }
  return "?";
}

ModelKind parse_model_kind(std::string_view name) {
  for (const ModelKind k : {ModelKind::mlp, ModelKind::cnn, ModelKind::transformer})
    if (name == model_kind_name(k)) return k;
  PIT_THROW("unknown model kind '", name, "'; allowed: mlp, cnn, transformer");
}

std::shared_ptr<Module> make_model(const ModelOptions& o) {
  check_compute_dtype(o.compute_dtype, "make_model");
  Generator gen(o.seed);
  std::shared_ptr<Module> model;
  if (o.kind == ModelKind::transformer) {
    TransformerOptions t;
    t.vocab_size = o.vocab_size;
    t.block_size = o.block_size;
    t.n_layer = o.n_layer;
    t.n_head = o.n_head;
    t.n_embd = o.n_embd;
    t.mlp_ratio = o.mlp_ratio;
    t.activation = o.activation;
    t.norm = o.norm;
    t.dropout = o.dropout;
    t.bias = o.bias;
    t.tie_embeddings = o.tie_embeddings;
    t.sparse_activation = o.sparse_activation;
    t.experts = o.experts;
    t.top_k = o.top_k;
    t.moe_every = o.moe_every;
    t.router_jitter = o.router_jitter;
    t.capacity_factor = o.capacity_factor;
    t.expert_comm = o.expert_comm;
    model = std::make_shared<TransformerLM>(t, gen);
  } else {
    ClassifierOptions c;
    c.in_channels = o.in_channels;
    c.image_size = o.image_size;
    c.num_classes = o.num_classes;
    c.hidden = o.hidden;
    c.channels = o.channels;
    c.activation = o.activation;
    c.dropout = o.dropout;
    c.bias = o.bias;
    if (o.kind == ModelKind::cnn) {
      model = std::make_shared<CnnClassifier>(c, gen);
    } else {
      model = std::make_shared<MlpClassifier>(c, gen);
    }
  }
  model->set_compute_dtype(o.compute_dtype);
  return model;
}

}  // namespace pit::nn
