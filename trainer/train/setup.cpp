#include "trainer/train/setup.h"

#include <string>

#include "core/error.h"
#include "ops/kernels.h"
#include "trainer/data/image_loader.h"
#include "trainer/data/token_loader.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/sgd.h"

namespace pit::train {
namespace {

nn::Activation activation_of(ActivationKind a) {
  switch (a) {
    case ActivationKind::gelu: return nn::Activation::gelu;
    case ActivationKind::relu: return nn::Activation::relu;
    case ActivationKind::silu: return nn::Activation::silu;
  }
  PIT_THROW("unknown activation");
}

data::LoaderOptions loader_options(const Config& c, data::LoaderMode mode) {
  data::LoaderOptions o;
  o.batch_size = c.data.batch_size;
  o.seq_len = c.data.seq_len;
  o.seed = static_cast<uint64_t>(c.run.seed);
  o.shuffle = c.data.shuffle;
  o.mode = mode;
  return o;
}

// data.kind names what the files hold; the loader is picked by their contents, which must agree.
std::unique_ptr<data::Loader> checked_kind(const Config& c, std::unique_ptr<data::Loader> loader, const char* key,
                                           const std::string& path) {
  const bool tokens = dynamic_cast<const data::TokenLoader*>(loader.get()) != nullptr;
  const DataKind holds = tokens ? DataKind::tokens : DataKind::images;
  PIT_CHECK(holds == c.data.kind, "data.kind is ", to_string(c.data.kind), " but ", key, " ", path, " holds ",
            to_string(holds), "; point ", key, " to a file of ", to_string(c.data.kind),
            " (scripts/get_data.sh writes ",
            c.data.kind == DataKind::tokens ? "data/brown/brown_train.h5 and brown_valid.h5"
                                            : "data/mnist/mnist_train.h5 and mnist_test.h5",
            "), or set data.kind and a model.kind that takes ", to_string(holds));
  return loader;
}

}  // namespace

Device resolve_device(const Config& config, std::string* note) {
  switch (config.run.device) {
    case DeviceChoice::cpu: return Device::cpu();
    case DeviceChoice::cuda:
      PIT_CHECK(cuda_available(), "run.device is cuda but no CUDA GPU is visible to this process "
                "(or pit was built without CUDA); set run.device: auto or cpu, or run on a GPU "
                "machine");
      return Device::cuda(0);
    case DeviceChoice::automatic:
      if (!cuda_available()) return Device::cpu();
      try {
        check_device(Device::cuda(0));  // a GPU this build has no code for, e.g. 90a code on an A100
        return Device::cuda(0);
      } catch (const Error& e) {
        if (note != nullptr)
          *note = std::string("run.device is auto and a GPU is visible, but this build cannot run on it, so this "
                              "run trains on the CPU (set run.device: cpu to say so, or rebuild pit for the GPU): ") +
                  e.what();
        return Device::cpu();
      }
  }
  return Device::cpu();
}

void check_model_fits_device(const Config& c, Device device) {
  if (c.model.kind != ModelKind::transformer) return;
  const int64_t d = c.model.d_model, heads = c.model.n_heads;  // heads divides d (checked on load)
  const int64_t limit = kernels::attention_head_dim_limit(device);
  if (limit == 0 || d / heads <= limit) return;
  int64_t fewest = (d + limit - 1) / limit;  // the fewest heads that divide d into heads of <= limit
  while (d % fewest != 0) ++fewest;
  PIT_THROW("model.d_model / model.n_heads = ", d, " / ", heads, " = ", d / heads, " is the attention's head size, "
            "but attention on ", device.str(), " takes heads of at most ", limit, "; set model.n_heads to ", fewest,
            " or more (a divisor of model.d_model), or lower model.d_model");
}

DType resolve_compute_dtype(const Config& config, Device device, std::FILE* log) {
  const DType want = config.precision.compute;
  if (device.is_cuda() || want == DType::f32) return want;
  if (log != nullptr)
    std::fprintf(log, "pit-train: precision.compute is %s, which the CPU backend does not compute "
                 "in; this CPU run computes in f32\n", dtype_name(want));
  return DType::f32;
}

std::unique_ptr<data::Loader> make_train_loader(const Config& config, int rank, int ranks) {
  data::LoaderOptions o = loader_options(config, data::LoaderMode::train);
  o.shard = rank;
  o.shards = ranks;
  return checked_kind(config, data::make_loader(config.data.train, o), "data.train", config.data.train);
}

std::unique_ptr<data::Loader> make_valid_loader(const Config& config) {
  return checked_kind(config, data::make_loader(config.data.valid, loader_options(config, data::LoaderMode::eval)),
                      "data.valid", config.data.valid);
}

nn::ModelOptions model_options(const Config& c, const data::Loader& train, DType compute) {
  const ModelConfig& m = c.model;
  nn::ModelOptions o;
  o.seed = static_cast<uint64_t>(c.run.seed);
  o.compute_dtype = compute;
  o.activation = activation_of(m.activation);
  o.dropout = m.dropout;
  switch (m.kind) {
    case ModelKind::transformer: {
      const auto* tokens = dynamic_cast<const data::TokenLoader*>(&train);
      PIT_CHECK(tokens != nullptr, "model.kind transformer needs a token file, but data.train ",
                c.data.train, " holds images; point data.train to a token file (scripts/get_data.sh "
                "writes data/brown/brown_train.h5)");
      PIT_CHECK(tokens->vocab_size() <= m.vocab_size, "data.train ", c.data.train, " has a vocabulary of ",
                tokens->vocab_size(), " tokens but model.vocab_size is ", m.vocab_size,
                "; set model.vocab_size to at least ", tokens->vocab_size());
      PIT_CHECK(m.d_ff % m.d_model == 0, "model.d_ff (", m.d_ff, ") must be a multiple of model.d_model (",
                m.d_model, ")");
      o.kind = nn::ModelKind::transformer;
      o.vocab_size = m.vocab_size;
      o.block_size = c.max_seq_len();
      o.n_layer = m.n_layers;
      o.n_head = m.n_heads;
      o.n_embd = m.d_model;
      o.mlp_ratio = m.d_ff / m.d_model;
      o.norm = m.norm == NormKind::rmsnorm ? nn::NormKind::rmsnorm : nn::NormKind::layernorm;
      o.tie_embeddings = m.tie_embeddings;
      o.sparse_activation = m.sparse_activation;
      o.experts = m.experts;
      o.top_k = m.top_k;
      o.moe_every = m.moe_every;
      o.router_jitter = m.router_jitter;
      o.capacity_factor = m.capacity_factor;
      break;
    }
    case ModelKind::mlp:
    case ModelKind::cnn: {
      const auto* images = dynamic_cast<const data::ImageLoader*>(&train);
      PIT_CHECK(images != nullptr, "model.kind ", to_string(m.kind), " needs an image file, but data.train ",
                c.data.train, " holds tokens; point data.train to an image file (scripts/get_data.sh "
                "writes data/mnist/mnist_train.h5)");
      const Shape& s = images->image_shape();
      PIT_CHECK(s[1] == s[2], "the images of ", c.data.train, " are ", s[1], "x", s[2],
                "; the classifiers take square images");
      o.kind = m.kind == ModelKind::mlp ? nn::ModelKind::mlp : nn::ModelKind::cnn;
      o.in_channels = s[0];
      o.image_size = s[1];
      o.num_classes = images->num_classes();
      if (m.kind == ModelKind::mlp) {
        o.hidden = m.hidden;
      } else {
        o.channels = m.channels;
        o.hidden = {m.cnn_hidden};
      }
      break;
    }
  }
  return o;
}

void check_valid_fits(const Config& c, const data::Loader& valid, const nn::ModelOptions& o) {
  const std::string file = "data.valid " + c.data.valid;
  if (o.kind == nn::ModelKind::transformer) {
    const auto* tokens = dynamic_cast<const data::TokenLoader*>(&valid);
    PIT_CHECK(tokens != nullptr, file, " holds images but data.train ", c.data.train,
              " holds tokens; point data.valid to a token file");
    PIT_CHECK(tokens->vocab_size() <= o.vocab_size, file, " has a vocabulary of ", tokens->vocab_size(),
              " tokens but model.vocab_size is ", o.vocab_size, "; set model.vocab_size to at least ",
              tokens->vocab_size());
    return;
  }
  const auto* images = dynamic_cast<const data::ImageLoader*>(&valid);
  PIT_CHECK(images != nullptr, file, " holds tokens but data.train ", c.data.train,
            " holds images; point data.valid to an image file");
  const Shape want{o.in_channels, o.image_size, o.image_size};
  PIT_CHECK(images->image_shape() == want, file, " has images of shape ", shape_str(images->image_shape()),
            " but those of data.train ", c.data.train, " are ", shape_str(want), "; the two files must match");
  PIT_CHECK(images->num_classes() <= o.num_classes, file, " has ", images->num_classes(), " classes but data.train ",
            c.data.train, " has ", o.num_classes, ", which the model's output is sized for; the two files must match");
}

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& c, const nn::Module& model) {
  std::vector<optim::Param> params = optim::with_default_decay(model.named_parameters());
  if (c.optim.name == OptimizerKind::sgd) {
    optim::SgdOptions o;
    o.momentum = c.optim.momentum;
    o.nesterov = c.optim.nesterov;
    o.weight_decay = c.optim.weight_decay;
    return std::make_unique<optim::SGD>(std::move(params), o);
  }
  optim::AdamWOptions o;
  o.beta1 = c.optim.beta1;
  o.beta2 = c.optim.beta2;
  o.eps = c.optim.eps;
  o.weight_decay = c.optim.weight_decay;
  return std::make_unique<optim::AdamW>(std::move(params), o);
}

optim::LrSchedule make_schedule(const Config& c) {
  optim::ScheduleOptions o;
  switch (c.schedule.name) {
    case ScheduleKind::constant: o.kind = optim::ScheduleKind::constant; break;
    case ScheduleKind::cosine: o.kind = optim::ScheduleKind::cosine; break;
    case ScheduleKind::step: o.kind = optim::ScheduleKind::step; break;
  }
  o.lr = c.optim.lr;
  o.warmup_steps = c.schedule.warmup_steps;
  o.min_lr = c.schedule.min_lr;
  o.total_steps = c.run.steps;
  o.step_every = c.schedule.step_every;
  o.gamma = c.schedule.gamma;
  return optim::LrSchedule(o);
}

std::optional<optim::LossScaler> make_loss_scaler(const Config& c, DType compute) {
  if (compute != DType::f16) return std::nullopt;
  if (c.precision.loss_scale > 0) return optim::LossScaler::fixed(c.precision.loss_scale);
  optim::LossScalerOptions o;
  o.init_scale = c.precision.init_scale;
  o.growth_interval = c.precision.growth_interval;
  return optim::LossScaler(o);
}

}  // namespace pit::train
