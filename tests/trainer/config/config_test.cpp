// Loading pit-train configs: defaults, --set overrides, the typed result, and the resolved YAML
// that a checkpoint stores (it must load back to the same Config).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tests/core/expect_error.h"
#include "tests/trainer/config/config_files.h"
#include "trainer/config/config.h"
#include "trainer/config/train_schema.h"

// Suites are named trainer_config_* so that `ctest -R trainer_config` selects them.
namespace pit::train {
namespace {

using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;
using test::kMinimal;

TEST(trainer_config_load, DefaultsFillEveryKeyNotGiven) {
  test::TempDir dir;
  const Config c = load_config(dir.write("min.yaml", kMinimal));
  EXPECT_EQ(c.source, (dir.path() / "min.yaml").string());
  EXPECT_EQ(c.run.name, "run");
  EXPECT_EQ(c.run.seed, 1234);
  EXPECT_EQ(c.run.device, DeviceChoice::automatic);
  EXPECT_EQ(c.run.out_dir, "");
  EXPECT_EQ(c.run.steps, 100);
  EXPECT_EQ(c.run.log_every, 10);
  EXPECT_EQ(c.run.eval_every, 200);
  EXPECT_EQ(c.run.eval_batches, 20);
  EXPECT_EQ(c.run.threads, 0);
  EXPECT_TRUE(c.run.cpu_overrides.empty());
  EXPECT_EQ(c.data.kind, DataKind::tokens);
  EXPECT_EQ(c.data.train, "data/train.h5");
  EXPECT_EQ(c.data.valid, "data/valid.h5");
  EXPECT_EQ(c.data.batch_size, 32);
  EXPECT_EQ(c.data.seq_len, 256);
  EXPECT_TRUE(c.data.shuffle);
  EXPECT_EQ(c.model.kind, ModelKind::transformer);
  EXPECT_EQ(c.model.vocab_size, 256);
  EXPECT_EQ(c.model.d_model, 256);
  EXPECT_EQ(c.model.n_layers, 4);
  EXPECT_EQ(c.model.n_heads, 4);
  EXPECT_EQ(c.model.d_ff, 1024);
  EXPECT_EQ(c.model.max_seq_len, 0);
  EXPECT_EQ(c.model.dropout, 0.0);
  EXPECT_EQ(c.model.norm, NormKind::layernorm);
  EXPECT_EQ(c.model.activation, ActivationKind::gelu);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_EQ(c.model.hidden, (std::vector<int64_t>{1024, 1024}));
  EXPECT_EQ(c.model.channels, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(c.model.cnn_hidden, 128);
  EXPECT_EQ(c.optim.name, OptimizerKind::adamw);
  EXPECT_EQ(c.optim.lr, 3e-4);
  EXPECT_EQ(c.optim.weight_decay, 0.0);
  EXPECT_EQ(c.optim.beta1, 0.9);
  EXPECT_EQ(c.optim.beta2, 0.999);
  EXPECT_EQ(c.optim.eps, 1e-8);
  EXPECT_EQ(c.optim.momentum, 0.9);
  EXPECT_FALSE(c.optim.nesterov);
  EXPECT_EQ(c.optim.grad_clip, 1.0);
  EXPECT_EQ(c.schedule.name, ScheduleKind::cosine);
  EXPECT_EQ(c.schedule.warmup_steps, 0);
  EXPECT_EQ(c.schedule.min_lr, 0.0);
  EXPECT_EQ(c.schedule.step_every, 1000);
  EXPECT_EQ(c.schedule.gamma, 0.1);
  EXPECT_EQ(c.precision.compute, DType::f32);
  EXPECT_EQ(c.precision.loss_scale, 0.0);
  EXPECT_EQ(c.precision.init_scale, 65536.0);
  EXPECT_EQ(c.precision.growth_interval, 2000);
  EXPECT_EQ(c.checkpoint.every, 0);
  EXPECT_EQ(c.checkpoint.keep, 3);
  EXPECT_EQ(c.checkpoint.dir, "");
  EXPECT_EQ(c.metrics.file, "");
}

TEST(trainer_config_load, HelpersResolveTheEmptyDefaults) {
  Config c = config_from_yaml(kMinimal, "min", {"run.name=moe"});
  EXPECT_EQ(c.out_dir(), "runs/moe");
  EXPECT_EQ(c.checkpoint_dir(), "runs/moe/checkpoints");
  EXPECT_EQ(c.metrics_file(), "runs/moe/metrics.jsonl");
  EXPECT_EQ(c.max_seq_len(), 256);

  c = config_from_yaml(kMinimal, "min", {"run.out_dir=/scratch/x", "model.max_seq_len=512"});
  EXPECT_EQ(c.out_dir(), "/scratch/x");
  EXPECT_EQ(c.checkpoint_dir(), "/scratch/x/checkpoints");
  EXPECT_EQ(c.metrics_file(), "/scratch/x/metrics.jsonl");
  EXPECT_EQ(c.max_seq_len(), 512);

  c = config_from_yaml(kMinimal, "min", {"checkpoint.dir=ck", "metrics.file=m.jsonl"});
  EXPECT_EQ(c.checkpoint_dir(), "ck");
  EXPECT_EQ(c.metrics_file(), "m.jsonl");
}

TEST(trainer_config_load, FlowStyleAndAnEmptySectionLoad) {
  const Config c = config_from_yaml(
      "run: {steps: 7}\ndata: {kind: images, train: a, valid: b}\nmodel: {kind: mlp, hidden: []}\n"
      "optim:\n  # every key commented out\n");
  EXPECT_EQ(c.run.steps, 7);
  EXPECT_TRUE(c.model.hidden.empty());
  EXPECT_EQ(c.optim.lr, 3e-4);
}

// ---- --set overrides ---------------------------------------------------------------------------

TEST(trainer_config_override, SetsScalarsListsAndStrings) {
  test::TempDir dir;
  const std::string file = dir.write("a.yaml", std::string(kMinimal) + "optim:\n  lr: 0.1\n");
  const Config c = load_config(file, {"optim.lr=1e-3", "model.hidden=[512, 256]", "data.shuffle=false",
                                      "run.name=my run", "run.out_dir=", "precision.compute=bf16",
                                      "optim.beta2=0.95", "optim.beta2=0.98"});
  EXPECT_EQ(c.optim.lr, 1e-3);  // the override wins over the file
  EXPECT_EQ(c.model.hidden, (std::vector<int64_t>{512, 256}));
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.run.name, "my run");
  EXPECT_EQ(c.run.out_dir, "");  // an empty value is the empty string
  EXPECT_EQ(c.precision.compute, DType::bf16);
  EXPECT_EQ(c.optim.beta2, 0.98);  // the last --set of a key wins
}

TEST(trainer_config_override, SuppliesARequiredKey) {
  const Config c = config_from_yaml("data: {kind: tokens, train: t, valid: v}\nmodel: {kind: transformer}\n",
                                    "a.yaml", {"run.steps=5"});
  EXPECT_EQ(c.run.steps, 5);
}

TEST(trainer_config_override, ErrorsNameTheOverrideNotAFileLine) {
  test::TempDir dir;
  const std::string file = dir.write("a.yaml", kMinimal);
  expect_error_contains(
      [&] { load_config(file, {"optim.lr=abc"}); },
      "\n  --set optim.lr=abc: optim.lr: \"abc\" is not a real number; expected a real number > 0 "
      "(e.g. 3e-4)");
  expect_error_contains([&] { load_config(file, {"optim.lrr=1"}); },
                        "--set optim.lrr=1: optim.lrr: unknown key; did you mean \"lr\"? (keys of "
                        "optim: name, lr,");
  expect_error_contains([&] { load_config(file, {"optimm.lr=1"}); },
                        "--set optimm.lr=1: unknown section \"optimm\"; did you mean \"optim\"?");
  expect_error_contains([&] { load_config(file, {"model.hidden=[1, 0]"}); },
                        "--set model.hidden=[1, 0]: model.hidden[1]: 0 is out of range; expected a "
                        "list of integers, each >= 1");
  expect_error_contains([&] { load_config(file, {"model.hidden=[1,"}); },
                        "--set model.hidden=[1,: model.hidden: the value is not a YAML scalar or "
                        "flow list");
  expect_error_contains([&] { load_config(file, {"lr=1"}); },
                        "--set lr=1: expected section.key=value (e.g. --set optim.lr=1e-3); did you "
                        "mean optim.lr?");
  for (const char* bad : {"lr=1", "optim.lr", ".lr=1", "optim.=1"})
    expect_error_contains([&] { load_config(file, {bad}); },
                          "--set " + std::string(bad) + ": expected section.key=value");
  // Counts that would overflow where they are used (an int, seq_len + 1) are out of range.
  expect_error_contains([&] { load_config(file, {"checkpoint.keep=4294967297"}); },
                        "checkpoint.keep: 4294967297 is out of range");
  expect_error_contains([&] { load_config(file, {"data.seq_len=9223372036854775807"}); },
                        "data.seq_len: 9223372036854775807 is out of range");
  // A file error and an override error are reported together.
  const std::string bad_file = dir.write("b.yaml", std::string(kMinimal) + "optim:\n  eps: 0\n");
  expect_error_contains_all([&] { load_config(bad_file, {"run.steps=0"}); },
                            {"2 errors", bad_file + ":10:8: optim.eps: 0 is out of range",
                             "--set run.steps=0: run.steps: 0 is out of range"});
}

// ---- the resolved YAML -------------------------------------------------------------------------

// A config with a non-default value for most keys, including strings that need quoting and
// reals that only an exact (shortest round-trip) format keeps.
const std::vector<std::string> kEverything = {
    "run.name=\"a: b # not a comment\"", "run.seed=0", "run.device=cpu", "run.out_dir=out \"dir\"",
    "run.steps=1000", "run.log_every=1", "run.eval_every=0", "run.eval_batches=3", "run.threads=2",
    "run.cpu_overrides=[\"model.d_model=48\", \"run.name=\\\"x # y\\\"\", 'data.train=''a: b''']",
    "data.seq_len=64", "data.batch_size=8", "data.shuffle=false", "data.train=123",
    "model.vocab_size=512", "model.d_model=96", "model.n_layers=2", "model.n_heads=3",
    "model.d_ff=384", "model.max_seq_len=100", "model.dropout=0.30000000000000004",
    "model.norm=rmsnorm", "model.activation=silu", "model.tie_embeddings=false",
    "model.hidden=[]", "model.channels=[8]", "model.cnn_hidden=16", "optim.name=sgd",
    "optim.lr=1.2345678901234567e-5", "optim.weight_decay=0.1", "optim.beta1=0",
    "optim.beta2=0.95", "optim.eps=1e-12", "optim.momentum=0.5", "optim.nesterov=true",
    "optim.grad_clip=0", "schedule.name=step", "schedule.warmup_steps=10", "schedule.min_lr=1e-7",
    "schedule.step_every=100", "schedule.gamma=1", "precision.compute=f16",
    "precision.loss_scale=128", "precision.init_scale=1e300", "precision.growth_interval=1",
    "checkpoint.every=50", "checkpoint.keep=1", "checkpoint.dir=\\ttab", "metrics.file=m.jsonl",
    "sparse.method=rigl", "sparse.layers=[\"hidden/*\", head]", "sparse.unit=64x64", "sparse.sparsity=0.75",
    "sparse.budget=erk", "sparse.dense_first_last=true", "sparse.initial_sparsity=0.1", "sparse.start_step=5",
    "sparse.end_step=7", "sparse.every=2", "sparse.threshold=global", "sparse.drop_fraction=0.5",
    "sparse.update_every=3", "sparse.update_end=9"};

TEST(trainer_config_resolved, ReloadingTheResolvedYamlGivesAnIdenticalConfig) {
  test::TempDir dir;
  const Config a = load_config(dir.write("a.yaml", kMinimal), kEverything);
  EXPECT_EQ(a.run.name, "a: b # not a comment");
  EXPECT_EQ(a.data.train, "123");
  EXPECT_EQ(a.checkpoint.dir, "\\ttab");
  EXPECT_EQ(a.sparse.method, SparseMethod::rigl);
  EXPECT_EQ(a.sparse.layers, (std::vector<std::string>{"hidden/*", "head"}));
  EXPECT_TRUE(a.sparse.global_threshold);
  EXPECT_EQ(a.sparse_update_end(), 9);
  // The default, 3/4 of run.steps rounded down, at least 1, with no overflow near 2^63.
  Config by_default = a;
  by_default.sparse.update_end = 0;
  for (const auto [steps, end] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {8, 6}, {11, 8},
                                  {INT64_MAX, INT64_MAX / 4 * 3 + 2}}) {
    by_default.run.steps = steps;
    EXPECT_EQ(by_default.sparse_update_end(), end) << steps;
  }
  EXPECT_EQ(a.model.dropout, 0.30000000000000004);
  EXPECT_EQ(a.run.cpu_overrides,
            (std::vector<std::string>{"model.d_model=48", "run.name=\"x # y\"", "data.train='a: b'"}));

  const Config b = config_from_yaml(a.resolved_yaml, "<checkpoint>");
  EXPECT_EQ(b.resolved_yaml, a.resolved_yaml);
  EXPECT_TRUE(a == b) << a.resolved_yaml;
  EXPECT_EQ(b.model.dropout, 0.30000000000000004);
  EXPECT_EQ(b.optim.lr, 1.2345678901234567e-5);
  EXPECT_EQ(b.precision.init_scale, 1e300);

  // From a file too, and from the commented --print-config output.
  EXPECT_TRUE(load_config(dir.write("resolved.yaml", a.resolved_yaml)) == a);
  EXPECT_TRUE(config_from_yaml(print_config(a)) == a) << print_config(a);

  // The defaults alone round-trip as well.
  const Config d = config_from_yaml(kMinimal);
  EXPECT_TRUE(config_from_yaml(d.resolved_yaml) == d) << d.resolved_yaml;
  EXPECT_FALSE(d == a);
}

TEST(trainer_config_resolved, ListsEveryKeyInSchemaOrder) {
  const Config c = config_from_yaml(kMinimal);
  const std::string expected_start =
      "run:\n"
      "  name: \"run\"\n"
      "  seed: 1234\n"
      "  device: auto\n"
      "  out_dir: \"\"\n"
      "  steps: 100\n";
  EXPECT_EQ(c.resolved_yaml.substr(0, expected_start.size()), expected_start) << c.resolved_yaml;
  EXPECT_NE(c.resolved_yaml.find("  lr: 3e-4\n  weight_decay: 0.0\n"), std::string::npos);
  EXPECT_NE(c.resolved_yaml.find("  hidden: [1024, 1024]\n"), std::string::npos);
  EXPECT_NE(c.resolved_yaml.find("  init_scale: 65536.0\n"), std::string::npos);

  size_t keys = 0, lines = 0, at = 0;
  for (const SectionSpec& s : train_schema().sections()) {
    keys += s.keys().size() + 1;  // its keys and its header line
    for (const KeySpec& k : s.keys()) {
      const size_t next = c.resolved_yaml.find("\n  " + k.name + ": ", at);
      EXPECT_NE(next, std::string::npos) << s.name() << "." << k.name << " missing or out of order";
      if (next != std::string::npos) at = next;
    }
  }
  for (char ch : c.resolved_yaml) lines += ch == '\n';
  EXPECT_EQ(lines, keys);
}

TEST(trainer_config_resolved, PrintConfigCommentsEachKeyWithItsDoc) {
  const std::string printed = print_config(config_from_yaml(kMinimal, "min.yaml"));
  EXPECT_EQ(printed.rfind("# pit-train config from min.yaml", 0), 0u) << printed;
  EXPECT_NE(printed.find("optim:  # the optimizer\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("  lr: 3e-4"), std::string::npos);
  EXPECT_NE(printed.find("# peak learning rate\n"), std::string::npos);
}

// Each choice of each enum key maps to the C++ enum and back (the tables in config.cpp).
TEST(trainer_config_resolved, EveryChoiceMapsToItsEnum) {
  const std::vector<std::pair<std::string, std::function<std::string(const Config&)>>> fields = {
      {"run.device", [](const Config& c) { return std::string(to_string(c.run.device)); }},
      {"data.kind", [](const Config& c) { return std::string(to_string(c.data.kind)); }},
      {"model.kind", [](const Config& c) { return std::string(to_string(c.model.kind)); }},
      {"model.norm", [](const Config& c) { return std::string(to_string(c.model.norm)); }},
      {"model.activation", [](const Config& c) { return std::string(to_string(c.model.activation)); }},
      {"optim.name", [](const Config& c) { return std::string(to_string(c.optim.name)); }},
      {"schedule.name", [](const Config& c) { return std::string(to_string(c.schedule.name)); }},
      {"precision.compute", [](const Config& c) { return std::string(dtype_name(c.precision.compute)); }},
      {"sparse.method", [](const Config& c) { return std::string(to_string(c.sparse.method)); }},
      {"sparse.unit", [](const Config& c) { return c.sparse.unit; }},
      {"sparse.budget", [](const Config& c) { return c.sparse.budget; }},
      {"sparse.threshold", [](const Config& c) { return std::string(c.sparse.global_threshold ? "global" : "layer"); }},
  };
  size_t choice_keys = 0;
  for (const SectionSpec& s : train_schema().sections())
    for (const KeySpec& k : s.keys()) choice_keys += k.type == ValueType::choice;
  EXPECT_EQ(fields.size(), choice_keys) << "a choice key without a test here";

  for (const auto& [key, field] : fields)
    for (const std::string& choice : train_schema().find_key(key)->choices) {
      // data.kind and model.kind must agree: pick the partner that suits.
      std::vector<std::string> set = {key + "=" + choice};
      if (key == "data.kind") set.push_back(choice == "tokens" ? "model.kind=transformer" : "model.kind=mlp");
      if (key == "model.kind") set.push_back(choice == "transformer" ? "data.kind=tokens" : "data.kind=images");
      EXPECT_EQ(field(config_from_yaml(kMinimal, "min", set)), choice) << key;
    }
}

// A key set to a value that the other settings leave without effect is warned of in the note,
// naming where it was set; keys that a printed config writes out at their defaults are not.
TEST(trainer_config_to_run, KeysWithoutEffectAreWarnedOf) {
  test::TempDir dir;
  const std::string file =
      dir.write("a.yaml", std::string(kMinimal) + "sparse:\n  sparsity: 0.95\nprecision:\n  loss_scale: 1024\n");
  const auto on_cpu = [](const Config&) { return false; };
  std::string note;
  config_to_run(file, {}, on_cpu, &note);
  EXPECT_NE(note.find("warning: sparse.sparsity (" + file + ":10:13) has no effect: sparse.method is none (a dense "
                      "run); set sparse.method to prune"),
            std::string::npos)
      << note;
  EXPECT_NE(note.find("\nwarning: precision.loss_scale (" + file +
                      ":12:15) has no effect: loss scaling is f16's, and precision.compute is f32"),
            std::string::npos)
      << note;
  config_to_run(file, {"sparse.method=rigl", "sparse.every=5", "precision.compute=f16", "precision.init_scale=8"},
                on_cpu, &note);
  EXPECT_NE(note.find("warning: sparse.every (--set sparse.every=5) has no effect: it is magnitude pruning's, and "
                      "sparse.method is rigl"),
            std::string::npos)
      << note;
  EXPECT_NE(note.find("warning: precision.init_scale (--set precision.init_scale=8) has no effect: they are the "
                      "dynamic scale's, and precision.loss_scale is static"),
            std::string::npos)
      << note;
  EXPECT_EQ(note.find("sparse.sparsity"), std::string::npos) << note;  // used now
  // Every key written out, the defaults among them: nothing to say.
  const std::string printed = dir.write(
      "p.yaml", print_config(config_to_run(file, {"sparse.method=magnitude", "precision.compute=f16"}, on_cpu, &note)));
  EXPECT_EQ(note, "");
  config_to_run(printed, {}, on_cpu, &note);
  EXPECT_EQ(note, "");
}

}  // namespace
}  // namespace pit::train
