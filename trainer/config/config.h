#pragma once
// pit-train's configuration: loaded from YAML, validated against train_schema() and handed to
// the trainer as typed structs. Defaults live in the schema only (trainer/config/
// train_schema.cpp); docs/CONFIG.md lists every key and is generated from it.
//
//   Config c = load_config("configs/moe.yaml", {"optim.lr=1e-3"});
//   c.optim.lr;          // 0.001
//   c.checkpoint_dir();  // "runs/moe/checkpoints" when checkpoint.dir is ""
//
// A checkpoint stores c.resolved_yaml; config_from_yaml(resolved_yaml) gives back an equal Config.
// When the run lands on the CPU, with_cpu_overrides(c, command_line.overrides) gives the config
// that it runs with there (run.cpu_overrides applied).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/dtype.h"

namespace pit::train {

enum class DeviceChoice { automatic, cpu, cuda };  // "auto" is a C++ keyword
enum class DataKind { tokens, images };
enum class ModelKind { transformer, mlp, cnn };
enum class NormKind { layernorm, rmsnorm };
enum class ActivationKind { gelu, relu, silu };
enum class OptimizerKind { adamw, sgd };
enum class ScheduleKind { constant, cosine, step };
enum class SparseMethod { none, magnitude, set, rigl };

// The names as the config writes them: "auto", "tokens", "rmsnorm", ...
std::string_view to_string(DeviceChoice v);
std::string_view to_string(DataKind v);
std::string_view to_string(ModelKind v);
std::string_view to_string(NormKind v);
std::string_view to_string(ActivationKind v);
std::string_view to_string(OptimizerKind v);
std::string_view to_string(ScheduleKind v);
std::string_view to_string(SparseMethod v);

// Members carry no defaults of their own: the schema's defaults fill every one on load.
struct RunConfig {
  std::string name;
  int64_t seed = 0;
  DeviceChoice device = DeviceChoice::automatic;
  std::string out_dir;  // "" means runs/<name>: use Config::out_dir()
  int64_t steps = 0;
  int64_t log_every = 0;
  int64_t eval_every = 0;  // 0: only at the end
  int64_t eval_batches = 0;
  int64_t final_eval_batches = 0;  // 0: the whole validation set
  int64_t threads = 0;  // 0: all cores
  // "section.key=value" overrides for a run on the CPU, already checked: use with_cpu_overrides()
  std::vector<std::string> cpu_overrides;
  bool operator==(const RunConfig&) const = default;
};

struct DataConfig {
  DataKind kind = DataKind::tokens;
  std::string train, valid;
  int64_t batch_size = 0;
  int64_t seq_len = 0;  // tokens only
  bool shuffle = false;
  bool operator==(const DataConfig&) const = default;
};

struct ModelConfig {
  ModelKind kind = ModelKind::transformer;
  // transformer
  int64_t vocab_size = 0, d_model = 0, n_layers = 0, n_heads = 0, d_ff = 0;
  int64_t max_seq_len = 0;  // 0 means data.seq_len: use Config::max_seq_len()
  double dropout = 0;
  NormKind norm = NormKind::layernorm;
  ActivationKind activation = ActivationKind::gelu;
  bool tie_embeddings = false;
  bool sparse_activation = false;
  // transformer, mixture of experts (experts 0: dense feed-forward layers)
  int64_t experts = 0, top_k = 1, moe_every = 1;
  double router_jitter = 0, aux_loss_coef = 0, z_loss_coef = 0, capacity_factor = 0;
  // mlp
  std::vector<int64_t> hidden;
  // cnn
  std::vector<int64_t> channels;
  int64_t cnn_hidden = 0;
  bool operator==(const ModelConfig&) const = default;
};

struct OptimConfig {
  OptimizerKind name = OptimizerKind::adamw;
  double lr = 0, weight_decay = 0;
  double beta1 = 0, beta2 = 0, eps = 0;  // adamw
  double momentum = 0;                   // sgd
  bool nesterov = false;                 // sgd
  double grad_clip = 0;                  // 0: off
  bool operator==(const OptimConfig&) const = default;
};

struct ScheduleConfig {
  ScheduleKind name = ScheduleKind::constant;
  int64_t warmup_steps = 0;
  double min_lr = 0;        // cosine
  int64_t step_every = 0;   // step
  double gamma = 0;         // step
  bool operator==(const ScheduleConfig&) const = default;
};

struct PrecisionConfig {
  DType compute = DType::f32;  // f32, bf16 or f16
  double loss_scale = 0;       // f16: 0 means dynamic
  double init_scale = 0;       // f16, dynamic
  int64_t growth_interval = 0; // f16, dynamic
  bool operator==(const PrecisionConfig&) const = default;
};

struct CheckpointConfig {
  int64_t every = 0;  // 0: only at the end
  int64_t keep = 0;
  std::string dir;    // "" means <out_dir>/checkpoints: use Config::checkpoint_dir()
  bool operator==(const CheckpointConfig&) const = default;
};

// Dynamic sparse training of Linear layers (trainer/sparse/sparsifier.h).
struct SparseConfig {
  SparseMethod method = SparseMethod::none;
  std::vector<std::string> layers;  // patterns of Linear paths
  std::string unit;                 // "32x1", "32x32", "1x1", ...
  double sparsity = 0;
  std::string budget;               // "uniform" or "erk"
  bool dense_first_last = false;
  double initial_sparsity = 0;                   // magnitude
  int64_t start_step = 0, end_step = 0, every = 0;  // magnitude
  bool global_threshold = false;                 // magnitude
  double drop_fraction = 0;                      // set, rigl
  int64_t update_every = 0, update_end = 0;      // set, rigl; update_end 0: use Config::sparse_update_end()
  bool operator==(const SparseConfig&) const = default;
};

// How the ranks of a multi-process run share the work (docs/DISTRIBUTED.md).
struct ParallelConfig {
  int64_t expert = 1;  // ranks each MoE layer's experts are sharded over (1: every rank holds all)
  bool operator==(const ParallelConfig&) const = default;
};

struct MetricsConfig {
  std::string file;  // "" means <out_dir>/metrics.jsonl: use Config::metrics_file()
  bool operator==(const MetricsConfig&) const = default;
};

struct Config {
  RunConfig run;
  DataConfig data;
  ModelConfig model;
  OptimConfig optim;
  ScheduleConfig schedule;
  PrecisionConfig precision;
  CheckpointConfig checkpoint;
  MetricsConfig metrics;
  SparseConfig sparse;
  ParallelConfig parallel;

  std::string resolved_yaml;  // every key, defaults filled, in schema order; no comments
  std::string source;         // the file (or name) it was loaded from

  // The "" defaults resolved.
  std::string out_dir() const;         // run.out_dir, or runs/<run.name>
  std::string checkpoint_dir() const;  // checkpoint.dir, or <out_dir>/checkpoints
  std::string metrics_file() const;    // metrics.file, or <out_dir>/metrics.jsonl
  int64_t max_seq_len() const;         // model.max_seq_len, or data.seq_len when 0
  int64_t sparse_update_end() const;   // sparse.update_end, or 3/4 of run.steps when 0

  // Equal settings; where they were loaded from does not count, so a config reloaded from its
  // resolved YAML (a checkpoint's) equals the original. resolved_yaml holds every key, so it
  // also covers a section that a later feature adds before it is listed here.
  bool operator==(const Config& o) const {
    return resolved_yaml == o.resolved_yaml &&
           std::tie(run, data, model, optim, schedule, precision, checkpoint, metrics, sparse, parallel) ==
               std::tie(o.run, o.data, o.model, o.optim, o.schedule, o.precision, o.checkpoint,
                        o.metrics, o.sparse, o.parallel);
  }
};

// Loads, applies overrides ("section.key=value", as given to --set) and validates; throws one
// pit::Error listing every problem (file:line:col, key, value, what is allowed). The config as
// it would run on the CPU (see with_cpu_overrides) is validated too, so that a bad entry of
// run.cpu_overrides fails now and not when the run lands on a machine without a GPU.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from YAML text, e.g. the resolved_yaml a checkpoint stored. `name` names the text in
// error messages.
Config config_from_yaml(const std::string& yaml_text, const std::string& name = "<config>",
                        const std::vector<std::string>& overrides = {});

// The config pit-train runs, from `path` and the command line's --set `overrides`, on the device
// lands_on_gpu picks for it (true: a GPU). A config valid as written is load_config's, with
// with_cpu_overrides applied where it lands on the CPU. One that --set leaves invalid as the GPU
// run (e.g. run.steps=50 against schedule.warmup_steps: 200) still runs where it lands on the CPU,
// when the config run.cpu_overrides give there is valid; otherwise the GPU run's problems are
// thrown as load_config throws them. One invalid only as the CPU run runs where it lands on a GPU.
// `note` (may be null) gets lines for the log ("" when there is nothing to say): which config was
// chosen where that matters, and a "warning: ..." for each key set to a value that the other
// settings leave without effect (sparse.sparsity under sparse.method none, precision.loss_scale
// without f16).
Config config_to_run(const std::string& path, const std::vector<std::string>& overrides,
                     const std::function<bool(const Config&)>& lands_on_gpu, std::string* note);

// The config for a run on the CPU: config.resolved_yaml re-resolved with config.run.cpu_overrides
// applied first and then `command_line_overrides` (the --set overrides the config was loaded
// with, applied again so that they still win). The config unchanged when cpu_overrides is empty.
// Applying it twice gives the same config. An error names where each bad value came from
// (run.cpu_overrides[i] "entry", --set entry, or the resolved YAML).
Config with_cpu_overrides(const Config& config, const std::vector<std::string>& command_line_overrides);

// The resolved YAML with each key's doc as a trailing comment (for --print-config). Loading it
// gives the same Config.
std::string print_config(const Config& config);

// docs/CONFIG.md: every section and key with type, default, allowed values and doc.
std::string schema_markdown();

}  // namespace pit::train
