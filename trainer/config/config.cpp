#include "trainer/config/config.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <optional>

#include "core/error.h"
#include "trainer/config/loader.h"
#include "trainer/config/train_schema.h"
#include "trainer/config/values.h"

namespace pit::train {
namespace {

template <typename E>
struct Named {
  std::string_view name;
  E value;
};

// The schema's choice strings and the C++ enums, in one table per enum. A choice missing here
// fails the first load that uses it (and the defaults/round-trip tests use every one).
constexpr Named<DeviceChoice> kDevices[] = {
    {"auto", DeviceChoice::automatic}, {"cpu", DeviceChoice::cpu}, {"cuda", DeviceChoice::cuda}};
constexpr Named<DataKind> kDataKinds[] = {{"tokens", DataKind::tokens}, {"images", DataKind::images}};
constexpr Named<ModelKind> kModelKinds[] = {
    {"transformer", ModelKind::transformer}, {"mlp", ModelKind::mlp}, {"cnn", ModelKind::cnn}};
constexpr Named<NormKind> kNorms[] = {{"layernorm", NormKind::layernorm}, {"rmsnorm", NormKind::rmsnorm}};
constexpr Named<ActivationKind> kActivations[] = {
    {"gelu", ActivationKind::gelu}, {"relu", ActivationKind::relu}, {"silu", ActivationKind::silu}};
constexpr Named<OptimizerKind> kOptimizers[] = {{"adamw", OptimizerKind::adamw}, {"sgd", OptimizerKind::sgd}};
constexpr Named<ScheduleKind> kSchedules[] = {
    {"constant", ScheduleKind::constant}, {"cosine", ScheduleKind::cosine}, {"step", ScheduleKind::step}};
constexpr Named<SparseMethod> kSparseMethods[] = {{"none", SparseMethod::none},
                                                   {"magnitude", SparseMethod::magnitude},
                                                   {"set", SparseMethod::set},
                                                   {"rigl", SparseMethod::rigl}};

template <typename E, size_t N>
E pick(const Values& v, std::string_view key, const Named<E> (&table)[N]) {
  const std::string& s = v.string(key);
  for (const Named<E>& n : table)
    if (n.name == s) return n.value;
  PIT_THROW("config key ", key, ": \"", s, "\" has no C++ value; add it to config.cpp");
}

template <typename E, size_t N>
std::string_view name_of(E value, const Named<E> (&table)[N]) {
  for (const Named<E>& n : table)
    if (n.value == value) return n.name;
  return "?";
}

Config from_values(const Values& v, const std::string& source) {
  Config c;
  RunConfig& run = c.run;
  run.name = v.string("run.name");
  run.seed = v.integer("run.seed");
  run.device = pick(v, "run.device", kDevices);
  run.out_dir = v.string("run.out_dir");
  run.steps = v.integer("run.steps");
  run.log_every = v.integer("run.log_every");
  run.eval_every = v.integer("run.eval_every");
  run.eval_batches = v.integer("run.eval_batches");
  run.final_eval_batches = v.integer("run.final_eval_batches");
  run.threads = v.integer("run.threads");
  run.cpu_overrides = v.string_list("run.cpu_overrides");

  DataConfig& data = c.data;
  data.kind = pick(v, "data.kind", kDataKinds);
  data.train = v.string("data.train");
  data.valid = v.string("data.valid");
  data.batch_size = v.integer("data.batch_size");
  data.seq_len = v.integer("data.seq_len");
  data.shuffle = v.boolean("data.shuffle");

  ModelConfig& model = c.model;
  model.kind = pick(v, "model.kind", kModelKinds);
  model.vocab_size = v.integer("model.vocab_size");
  model.d_model = v.integer("model.d_model");
  model.n_layers = v.integer("model.n_layers");
  model.n_heads = v.integer("model.n_heads");
  model.d_ff = v.integer("model.d_ff");
  model.max_seq_len = v.integer("model.max_seq_len");
  model.dropout = v.real("model.dropout");
  model.norm = pick(v, "model.norm", kNorms);
  model.activation = pick(v, "model.activation", kActivations);
  model.tie_embeddings = v.boolean("model.tie_embeddings");
  model.sparse_activation = v.boolean("model.sparse_activation");
  model.experts = v.integer("model.experts");
  model.top_k = v.integer("model.top_k");
  model.moe_every = v.integer("model.moe_every");
  model.router_jitter = v.real("model.router_jitter");
  model.aux_loss_coef = v.real("model.aux_loss_coef");
  model.z_loss_coef = v.real("model.z_loss_coef");
  model.capacity_factor = v.real("model.capacity_factor");
  model.hidden = v.int_list("model.hidden");
  model.channels = v.int_list("model.channels");
  model.cnn_hidden = v.integer("model.cnn_hidden");

  OptimConfig& optim = c.optim;
  optim.name = pick(v, "optim.name", kOptimizers);
  optim.lr = v.real("optim.lr");
  optim.weight_decay = v.real("optim.weight_decay");
  optim.beta1 = v.real("optim.beta1");
  optim.beta2 = v.real("optim.beta2");
  optim.eps = v.real("optim.eps");
  optim.momentum = v.real("optim.momentum");
  optim.nesterov = v.boolean("optim.nesterov");
  optim.grad_clip = v.real("optim.grad_clip");

  ScheduleConfig& schedule = c.schedule;
  schedule.name = pick(v, "schedule.name", kSchedules);
  schedule.warmup_steps = v.integer("schedule.warmup_steps");
  schedule.min_lr = v.real("schedule.min_lr");
  schedule.step_every = v.integer("schedule.step_every");
  schedule.gamma = v.real("schedule.gamma");

  PrecisionConfig& precision = c.precision;
  precision.compute = parse_dtype(v.string("precision.compute"));
  precision.loss_scale = v.real("precision.loss_scale");
  precision.init_scale = v.real("precision.init_scale");
  precision.growth_interval = v.integer("precision.growth_interval");

  c.checkpoint.every = v.integer("checkpoint.every");
  c.checkpoint.keep = v.integer("checkpoint.keep");
  c.checkpoint.dir = v.string("checkpoint.dir");

  c.metrics.file = v.string("metrics.file");

  SparseConfig& sparse = c.sparse;
  sparse.method = pick(v, "sparse.method", kSparseMethods);
  sparse.layers = v.string_list("sparse.layers");
  sparse.unit = v.string("sparse.unit");
  sparse.sparsity = v.real("sparse.sparsity");
  sparse.budget = v.string("sparse.budget");
  sparse.dense_first_last = v.boolean("sparse.dense_first_last");
  sparse.initial_sparsity = v.real("sparse.initial_sparsity");
  sparse.start_step = v.integer("sparse.start_step");
  sparse.end_step = v.integer("sparse.end_step");
  sparse.every = v.integer("sparse.every");
  sparse.global_threshold = v.string("sparse.threshold") == "global";
  sparse.drop_fraction = v.real("sparse.drop_fraction");
  sparse.update_every = v.integer("sparse.update_every");
  sparse.update_end = v.integer("sparse.update_end");

  c.parallel.expert = v.integer("parallel.expert");

  c.resolved_yaml = to_yaml(train_schema(), v, /*with_docs=*/false);
  c.source = source;
  return c;
}

std::string joined(const std::string& dir, const std::string& leaf) {
  return (std::filesystem::path(dir) / leaf).string();
}

// `yaml_text` with the CPU overrides applied, then the command line's, and the list emptied: the
// result is the CPU run as it runs, so that printed (--print-config) or saved with a checkpoint it
// runs the same again, not with the entries applied a second time over its own values. `title`
// names the config in an error; each override is named by where it came from.
Values cpu_values(const std::string& name, const std::string& yaml_text,
                  const std::vector<std::string>& cpu_overrides,
                  const std::vector<std::string>& command_line, const std::string& title) {
  std::vector<Override> overrides;
  for (size_t i = 0; i < cpu_overrides.size(); ++i)
    overrides.push_back(Override{cpu_overrides[i],
                                 "run.cpu_overrides[" + std::to_string(i) + "] \"" + cpu_overrides[i] + "\""});
  for (Override& o : command_line_overrides(command_line)) overrides.push_back(std::move(o));
  overrides.push_back(Override{"run.cpu_overrides=[]", "run.cpu_overrides, emptied once applied"});
  return load_values_from(train_schema(), name, yaml_text, overrides,
                          title + " on the CPU (with run.cpu_overrides applied)");
}

// Loads and, when it has CPU overrides, checks the config as it would run on the CPU: each entry
// is valid on its own (the schema checks that where it points at the entry), but together with
// the rest they may break a rule across keys (e.g. run.steps=10 against schedule.warmup_steps).
// The trial starts from the same text, so errors point into it.
Config load_checked(const std::string& name, const std::string& yaml_text,
                    const std::vector<std::string>& overrides) {
  const Values values = load_values(train_schema(), name, yaml_text, overrides);
  if (const auto& cpu = values.string_list("run.cpu_overrides"); !cpu.empty())
    cpu_values(name, yaml_text, cpu, overrides, name);
  return from_values(values, name);
}

}  // namespace

std::string_view to_string(DeviceChoice v) { return name_of(v, kDevices); }
std::string_view to_string(DataKind v) { return name_of(v, kDataKinds); }
std::string_view to_string(ModelKind v) { return name_of(v, kModelKinds); }
std::string_view to_string(NormKind v) { return name_of(v, kNorms); }
std::string_view to_string(ActivationKind v) { return name_of(v, kActivations); }
std::string_view to_string(OptimizerKind v) { return name_of(v, kOptimizers); }
std::string_view to_string(ScheduleKind v) { return name_of(v, kSchedules); }
std::string_view to_string(SparseMethod v) { return name_of(v, kSparseMethods); }

std::string Config::out_dir() const { return run.out_dir.empty() ? joined("runs", run.name) : run.out_dir; }

std::string Config::checkpoint_dir() const {
  return checkpoint.dir.empty() ? joined(out_dir(), "checkpoints") : checkpoint.dir;
}

std::string Config::metrics_file() const {
  return metrics.file.empty() ? joined(out_dir(), "metrics.jsonl") : metrics.file;
}

// At least 1 (a run of one step has no update either way; the Sparsifier refuses 0).
int64_t Config::sparse_update_end() const {
  const int64_t three_quarters = run.steps / 4 * 3 + run.steps % 4 * 3 / 4;  // 3 * steps overflows near 2^63
  return sparse.update_end > 0 ? sparse.update_end : std::max<int64_t>(1, three_quarters);
}

int64_t Config::max_seq_len() const { return model.max_seq_len == 0 ? data.seq_len : model.max_seq_len; }

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_checked(path, read_config_file(path), overrides);
}

Config config_from_yaml(const std::string& yaml_text, const std::string& name,
                        const std::vector<std::string>& overrides) {
  return load_checked(name, yaml_text, overrides);
}

namespace {

struct Chosen {
  Values values;
  std::string note;  // "" or one line
};

// config_to_run's choice (its doc in config.h): the values of the run, and what to say about them.
Chosen choose_run(const std::string& path, const std::string& text, const std::vector<std::string>& overrides,
                  const std::function<bool(const Config&)>& lands_on_gpu) {
  std::optional<Values> values;
  std::exception_ptr gpu_problem;
  std::string gpu_message;
  try {
    values = load_values(train_schema(), path, text, overrides);
  } catch (const Error& e) {
    gpu_problem = std::current_exception();
    gpu_message = e.what();
  }
  if (values) {
    const Config c = from_values(*values, path);
    if (c.run.cpu_overrides.empty()) return {*values, ""};
    if (lands_on_gpu(c)) {
      // The CPU run is checked too (load_config's rule), but only said: a --set made for this GPU
      // run (model.moe_every=4) may not suit the entries' smaller CPU run (2 layers).
      try {
        cpu_values(path, text, c.run.cpu_overrides, overrides, path);
      } catch (const Error& e) {
        return {*values, "running on the GPU, where run.cpu_overrides do not apply; on a CPU this command would "
                         "stop: " + std::string(e.what())};
      }
      return {*values, ""};
    }
    return {cpu_values(path, text, c.run.cpu_overrides, overrides, path), "running on the CPU: run.cpu_overrides applied"};
  }
  // Invalid as the GPU run (often a --set that shortens it: run.steps=50 under a warm-up of 200).
  // A run that lands on the CPU runs the config run.cpu_overrides give, which may be valid: the
  // file's own entries (unless the command line sets the list), then the command line.
  std::optional<Values> cpu;
  const bool sets_the_list = std::any_of(overrides.begin(), overrides.end(), [](const std::string& o) {
    return o.substr(0, o.find('=')) == "run.cpu_overrides";
  });
  if (!sets_the_list) {
    try {
      const Values file = load_values(train_schema(), path, text, {});
      if (const auto& entries = file.string_list("run.cpu_overrides"); !entries.empty())
        cpu = cpu_values(path, text, entries, overrides, path);
    } catch (const Error&) {
      cpu.reset();  // not valid on the CPU either: the GPU run's problems are the ones to show
    }
  }
  if (!cpu || lands_on_gpu(from_values(*cpu, path))) std::rethrow_exception(gpu_problem);
  return {*cpu, "running on the CPU: run.cpu_overrides applied; on a GPU, where they do not apply, this command "
                "would stop: " + gpu_message};
}

// Keys given a value other than their default (in the file, by --set or by run.cpu_overrides)
// that the other settings leave without effect, one line each naming where it was set: a run
// that drops them without a word is not the run its author meant. Defaults written out (a
// printed config holds every key) are not named.
std::vector<std::string> inert_keys(const Values& v) {
  const Schema& schema = train_schema();
  std::vector<std::string> out;
  const auto inert = [&](std::initializer_list<const char*> keys, const std::string& why) {
    for (const char* key : keys) {
      if (v.from_default(key)) continue;
      const KeySpec* spec = schema.find_key(key);
      if (spec != nullptr && spec->fallback && *spec->fallback == v.get(key)) continue;
      out.push_back("warning: " + std::string(key) + " (" + v.origin(key) + ") has no effect: " + why);
    }
  };
  const std::string& method = v.string("sparse.method");
  const auto magnitude_keys = {"sparse.initial_sparsity", "sparse.start_step", "sparse.end_step", "sparse.every",
                               "sparse.threshold"};
  const auto regrowth_keys = {"sparse.drop_fraction", "sparse.update_every", "sparse.update_end"};
  if (method == "none") {
    const std::string dense = "sparse.method is none (a dense run); set sparse.method to prune";
    inert({"sparse.layers", "sparse.unit", "sparse.sparsity", "sparse.budget", "sparse.dense_first_last"}, dense);
    inert(magnitude_keys, dense);
    inert(regrowth_keys, dense);
  } else if (method == "magnitude") {
    inert(regrowth_keys, "it is SET's and RigL's, and sparse.method is magnitude");
    if (v.string("sparse.threshold") == "global") inert({"sparse.budget"}, "sparse.threshold is global");
  } else {
    inert(magnitude_keys, "it is magnitude pruning's, and sparse.method is " + method);
  }
  const std::string& compute = v.string("precision.compute");
  if (compute != "f16") {
    inert({"precision.loss_scale", "precision.init_scale", "precision.growth_interval"},
          "loss scaling is f16's, and precision.compute is " + compute);
  } else if (v.real("precision.loss_scale") > 0) {
    inert({"precision.init_scale", "precision.growth_interval"},
          "they are the dynamic scale's, and precision.loss_scale is static");
  }
  return out;
}

}  // namespace

Config config_to_run(const std::string& path, const std::vector<std::string>& overrides,
                     const std::function<bool(const Config&)>& lands_on_gpu, std::string* note) {
  if (note) note->clear();
  const Chosen chosen = choose_run(path, read_config_file(path), overrides, lands_on_gpu);
  if (note) {
    *note = chosen.note;
    for (const std::string& line : inert_keys(chosen.values)) *note += (note->empty() ? "" : "\n") + line;
  }
  return from_values(chosen.values, path);
}

Config with_cpu_overrides(const Config& config, const std::vector<std::string>& command_line_overrides) {
  if (config.run.cpu_overrides.empty()) return config;
  // Line numbers point into the resolved YAML, not into the file it was loaded from: say so.
  const std::string source = config.source.empty() ? "<config>" : config.source;
  const Values values = cpu_values(source + " (resolved)", config.resolved_yaml, config.run.cpu_overrides,
                                   command_line_overrides, source);
  return from_values(values, config.source);
}

std::string print_config(const Config& config) {
  // Rebuilt from resolved_yaml (which is valid by construction) so that the comments come from
  // the schema, not from a second copy of every key here.
  const Values values = load_values(train_schema(), config.source, config.resolved_yaml, {});
  std::string header = "# pit-train config";
  if (!config.source.empty()) header += " from " + config.source;
  header += ", every key resolved (docs/CONFIG.md)\n";
  return header + to_yaml(train_schema(), values, /*with_docs=*/true);
}

std::string schema_markdown() {
  std::string out =
      "# pit-train configuration\n"
      "\n"
      "<!-- Generated from trainer/config/train_schema.cpp by schema_markdown(); do not edit.\n"
      "     To regenerate: PIT_UPDATE_DOCS=1 build/tests/trainer/config/test_trainer_config_docs -->\n"
      "\n"
      "`pit-train --config FILE [--set section.key=value ...]` reads a YAML file of the sections\n"
      "below. Every key has a default except the **required** ones. `--set` overrides a key\n"
      "(the value is YAML: `--set optim.lr=1e-3`, `--set model.hidden=[512,512]`);\n"
      "`--print-config` prints every key as resolved, with its doc. An unknown key, a value of the\n"
      "wrong type or out of range is an error naming file:line:col, the key, the value and what\n"
      "is allowed; all errors of a file are reported together. A key set to a value that the other\n"
      "settings leave without effect (`sparse.sparsity` under `sparse.method: none`,\n"
      "`precision.loss_scale` without f16) is warned of when the run starts, naming where it was set.\n"
      "\n"
      "Integers are written without a decimal point; reals may be written as `3e-4`, `0.5` or\n"
      "`1`. Booleans are `true` or `false`. An empty string `\"\"` means the documented default\n"
      "path.\n"
      "\n"
      "The smallest config gives the required keys only:\n"
      "\n"
      "```yaml\n"
      "run:\n"
      "  steps: 1000\n"
      "data:\n"
      "  kind: tokens\n"
      "  train: data/train.h5\n"
      "  valid: data/valid.h5\n"
      "model:\n"
      "  kind: transformer\n"
      "```\n"
      "\n"
      "`run.cpu_overrides` lets one config describe a full GPU run and a small CPU run: when the\n"
      "run lands on the CPU (no GPU, or `run.device: cpu`), its entries are applied as `--set`\n"
      "would apply them, and then the command line's `--set` overrides, which still win. The\n"
      "entries are checked on every load, on a GPU too:\n"
      "`cpu_overrides: [\"run.steps=200\", \"model.d_model=64\", \"data.batch_size=4\"]`.\n"
      "A `--set` that only the GPU run breaks (e.g. `--set run.steps=50` where `schedule.warmup_steps`\n"
      "is 200 and run.cpu_overrides lower it) does not stop a run that lands on the CPU: pit-train\n"
      "runs the CPU config, which is valid, and says what the GPU run would need. The other way\n"
      "round, a `--set` that only the CPU run breaks (`--set model.moe_every=4` where the entries\n"
      "leave 2 layers) does not stop a run that lands on a GPU; pit-train says what a CPU run would\n"
      "need. The CPU run's config (printed by `--print-config`, saved with its checkpoints) has the\n"
      "entries applied and `run.cpu_overrides: []`, so that it runs the same again.\n"
      "\n";
  return out + markdown(train_schema());
}

}  // namespace pit::train
