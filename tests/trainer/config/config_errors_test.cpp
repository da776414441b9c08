// Every kind of config error: each message must name file:line:col (or the override), the
// dotted key, the value and what is allowed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/core/expect_error.h"
#include "tests/trainer/config/config_files.h"
#include "trainer/config/config.h"

// Suites are named trainer_config_* so that `ctest -R trainer_config` selects them.
namespace pit::train {
namespace {

using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;
using test::kMinimal;

class trainer_config_errors : public ::testing::Test {
 protected:
  // Writes `yaml` to a.yaml; the returned function loads it (for expect_error_*).
  auto loading(const std::string& yaml, std::vector<std::string> overrides = {}) {
    dir_.write("a.yaml", yaml);
    return [this, overrides] { load_config(file_, overrides); };
  }
  // "…/a.yaml:line:col"
  std::string at(int line, int col) const {
    return file_ + ":" + std::to_string(line) + ":" + std::to_string(col);
  }

  test::TempDir dir_;
  // Fixed before any test runs: at() may be evaluated before loading() in the same call.
  const std::string file_ = (dir_.path() / "a.yaml").string();
};

TEST_F(trainer_config_errors, WrongTypeNamesPlaceKeyValueAndWhatIsAllowed) {
  // Line 10 is "  lr: abc"; the value starts at column 7.
  expect_error_contains(loading(std::string(kMinimal) + "optim:\n  lr: abc\n"),
                        at(10, 7) + ": optim.lr: \"abc\" is not a real number; "
                                    "expected a real number > 0 (e.g. 3e-4)");
}

TEST_F(trainer_config_errors, WrongTypeOfIntegerBooleanStringAndList) {
  const std::string yaml =
      "run:\n"
      "  steps: 1.5\n"                 // 2: not an integer
      "data:\n"
      "  kind: tokens\n"
      "  train: [a, b]\n"              // 5: not a string
      "  valid: v.h5\n"
      "  shuffle: yes\n"               // 7: YAML 1.1 boolean, refused
      "model:\n"
      "  kind: transformer\n"
      "  hidden: 1024\n"               // 10: not a list
      "optim:\n"
      "  lr: .inf\n";                  // 12: not finite
  expect_error_contains_all(
      loading(yaml),
      {at(2, 10) + ": run.steps: \"1.5\" is not an integer; expected an integer >= 1 (e.g. 1000)",
       at(5, 10) + ": data.train: a list is not a string; expected a non-empty string",
       at(7, 12) + ": data.shuffle: \"yes\" is not a boolean; expected true or false",
       at(10, 11) + ": model.hidden: \"1024\" is not a list; expected a list of integers, each >= 1 "
                    "(e.g. [1024, 1024])",
       at(12, 7) + ": optim.lr: \".inf\" is not a real number", "5 errors"});
}

TEST_F(trainer_config_errors, OutOfRange) {
  expect_error_contains(loading(std::string(kMinimal) + "  dropout: 1.0\n"),
                        at(9, 12) + ": model.dropout: 1.0 is out of range; expected a real number "
                                    ">= 0 and < 1 (e.g. 0.0)");
  expect_error_contains(loading(std::string(kMinimal) + "schedule:\n  warmup_steps: -1\n"),
                        at(10, 17) + ": schedule.warmup_steps: -1 is out of range; expected an "
                                     "integer >= 0 (e.g. 0)");
  expect_error_contains(loading(std::string(kMinimal) + "schedule:\n  gamma: 0\n"),
                        at(10, 10) + ": schedule.gamma: 0 is out of range; expected a real number "
                                     "> 0 and <= 1 (e.g. 0.1)");
  expect_error_contains(loading(kMinimal, {"run.seed=99999999999999999999"}),
                        "--set run.seed=99999999999999999999: run.seed: 99999999999999999999 is "
                        "out of range; expected an integer >= 0 (e.g. 1234)");
}

TEST_F(trainer_config_errors, NotAmongAllowedValuesSuggestsTheNearest) {
  expect_error_contains(loading(std::string(kMinimal) + "  norm: batchnorm\n"),
                        at(9, 9) + ": model.norm: \"batchnorm\" is not allowed; expected one of "
                                   "layernorm, rmsnorm");
  const std::string typo =
      "run:\n"
      "  steps: 10\n"
      "  device: cdua\n"
      "data: {kind: tokens, train: t.h5, valid: v.h5}\n"
      "model: {kind: transformer}\n";
  expect_error_contains(loading(typo), at(3, 11) + ": run.device: \"cdua\" is not allowed; expected "
                                                   "one of auto, cpu, cuda; did you mean \"cuda\"?");
}

TEST_F(trainer_config_errors, ListElementOutOfRangeNamesTheElement) {
  expect_error_contains(loading(std::string(kMinimal) + "  hidden: [1024, 0, x]\n"),
                        at(9, 18) + ": model.hidden[1]: 0 is out of range; expected a list of "
                                    "integers, each >= 1");
  expect_error_contains(loading(std::string(kMinimal) + "  hidden: [1024, 0, x]\n"),
                        at(9, 21) + ": model.hidden[2]: \"x\" is not an integer");
  expect_error_contains(loading(std::string(kMinimal) + "  channels: []\n"),
                        at(9, 13) + ": model.channels: the list is empty; expected a non-empty "
                                    "list of integers, each >= 1");
}

TEST_F(trainer_config_errors, UnknownKeySuggestsTheNearestAndListsTheSection) {
  expect_error_contains(loading(std::string(kMinimal) + "optim:\n  lrr: 0.1\n"),
                        at(10, 3) + ": optim.lrr: unknown key; did you mean \"lr\"? (keys of optim: "
                                    "name, lr, weight_decay, beta1, beta2, eps, momentum, nesterov, "
                                    "grad_clip)");
  expect_error_contains(loading(std::string(kMinimal) + "  d_modle: 512\n"),
                        at(9, 3) + ": model.d_modle: unknown key; did you mean \"d_model\"?");
  // Right key, wrong section.
  expect_error_contains(loading(std::string(kMinimal) + "schedule:\n  lr: 0.1\n"),
                        at(10, 3) + ": schedule.lr: unknown key; did you mean optim.lr? (keys of schedule:");
  // Nothing close: no suggestion, only the list.
  expect_error_contains(loading(std::string(kMinimal) + "optim:\n  flux_capacitor: 1\n"),
                        "optim.flux_capacitor: unknown key (keys of optim: name, lr,");
}

TEST_F(trainer_config_errors, UnknownSection) {
  expect_error_contains(loading(std::string(kMinimal) + "optm:\n  lr: 0.1\n"),
                        at(9, 1) + ": unknown section \"optm\"; did you mean \"optim\"? (sections: "
                                   "run, data, model, optim, schedule, precision, checkpoint, metrics, sparse, parallel)");
  expect_error_contains(loading(std::string(kMinimal) + "batch_size: 8\n"),
                        at(9, 1) + ": unknown section \"batch_size\"; batch_size is a key of data: and goes "
                                   "inside that section (sections: run, data,");
}

TEST_F(trainer_config_errors, RequiredKeyMissing) {
  // run: is there without steps; data: is absent altogether.
  expect_error_contains_all(
      loading("run:\n  name: x\nmodel:\n  kind: mlp\n"),
      {at(1, 1) + ": run.steps: required key is missing; expected an integer >= 1 (e.g. 1000)",
       file_ + " (it has no data: section): data.kind: required key is missing; expected one of "
               "tokens, images",
       "data.train: required key is missing; expected a non-empty string (e.g. \"data/train.h5\")",
       "data.valid: required key is missing", "4 errors"});
}

TEST_F(trainer_config_errors, SectionGivenAsAScalar) {
  // The section's keys are not reported missing as well: one error for one mistake.
  expect_error_contains_all(
      loading(std::string(kMinimal) + "optim: fast\nschedule: [1]\n"),
      {at(9, 8) + ": optim: \"fast\" is not a section; expected a mapping of optim's keys (name, "
                  "lr, weight_decay,",
       at(10, 11) + ": schedule: a list is not a section", "2 errors"});
}

TEST_F(trainer_config_errors, DuplicateKey) {
  expect_error_contains(loading(std::string(kMinimal) + "optim:\n  lr: 0.1\n  lr: 0.2\n"),
                        at(11, 3) + ": optim.lr: duplicate key (first at " + at(10, 3) + ")");
}

TEST_F(trainer_config_errors, KeyWithoutValue) {
  expect_error_contains(loading(std::string(kMinimal) + "optim:\n  lr:\n"),
                        at(10, 3) + ": optim.lr: no value; expected a real number > 0 (e.g. 3e-4)");
}

TEST_F(trainer_config_errors, EmptyRequiredString) {
  const std::string yaml = "run: {steps: 5}\ndata: {kind: tokens, train: \"\", valid: v}\n"
                           "model: {kind: transformer}\n";
  expect_error_contains(loading(yaml), at(2, 29) + ": data.train: the string is empty; expected a "
                                                   "non-empty string");
}

TEST_F(trainer_config_errors, EveryErrorOfAFileIsReportedAtOnce) {
  const std::string yaml =
      "run:\n"
      "  stepz: 100\n"          // unknown key (and so run.steps is missing)
      "data:\n"
      "  kind: text\n"          // not allowed
      "  train: t.h5\n"
      "  valid: v.h5\n"
      "model:\n"
      "  kind: transformer\n"
      "  n_heads: 0\n"          // out of range
      "optim:\n"
      "  lr: fast\n";           // wrong type
  const std::string message = pit::test::error_message(loading(yaml), std::source_location::current());
  EXPECT_NE(message.find("invalid config " + file_ + ": 5 errors"), std::string::npos) << message;
  for (const std::string& needle :
       {at(2, 3) + ": run.stepz: unknown key; did you mean \"steps\"?", at(4, 9) + ": data.kind:",
        at(9, 12) + ": model.n_heads: 0 is out of range", at(11, 7) + ": optim.lr: \"fast\"",
        at(1, 1) + ": run.steps: required key is missing"})
    EXPECT_NE(message.find(needle), std::string::npos) << "missing: " << needle << "\n" << message;
  // In the order a reader meets them: file order, then missing keys.
  EXPECT_LT(message.find("run.stepz"), message.find("data.kind"));
  EXPECT_LT(message.find("optim.lr"), message.find("run.steps: required"));
}

TEST_F(trainer_config_errors, MissingFileSyntaxErrorAndNotAMapping) {
  const std::string missing = (dir_.path() / "nope.yaml").string();
  expect_error_contains([&] { load_config(missing); }, "config file " + missing + " does not exist");
  expect_error_contains([&] { load_config(dir_.path().string()); }, "is a directory");
  // The unclosed '[' is found where the flow list should have ended, on line 2 (the column is
  // yaml-cpp's business).
  expect_error_contains_all(loading("run: [1, 2\nb: 3\n"),
                            {file_ + ":2:", ": YAML syntax error: end of sequence flow not found",
                             "1 error"});
  expect_error_contains(loading("- run\n- data\n"),
                        at(1, 1) + ": the config is a list; expected a mapping of sections (run, data,");
  // A tab in the indentation is named, with the line it is on.
  expect_error_contains_all(loading("run:\n  name: a\n\tsteps: 3\n"),
                            {": YAML syntax error: ", " (line 3 is indented with a tab; YAML indents with spaces only)"});
  // A tab after the indentation (in a value) is not blamed.
  const std::string in_value = pit::test::error_message(loading("run: [1, 2\nb: \"x\ty\"\n"), std::source_location::current());
  EXPECT_NE(in_value.find("YAML syntax error: end of sequence flow not found"), std::string::npos) << in_value;
  EXPECT_EQ(in_value.find("indented with a tab"), std::string::npos) << in_value;
  // A second document would be dropped without a word: it is an error.
  expect_error_contains(loading(std::string(kMinimal) + "---\nrun:\n  steps: 5\n"),
                        ": a second YAML document (after a --- line); a config is one document");
  EXPECT_NO_THROW(loading(std::string("---\n") + kMinimal)());  // one document, marked as such
}

// ---- checks across keys ------------------------------------------------------------------------

TEST_F(trainer_config_errors, HeadsMustDivideModelWidthNamingBothKeys) {
  expect_error_contains(loading(std::string(kMinimal) + "  n_heads: 3\n"),
                        at(9, 12) + ": model.d_model = 256 (default), model.n_heads = 3: "
                                    "model.d_model must be a multiple of model.n_heads");
  // Not a transformer: the key is ignored, so is the rule.
  EXPECT_NO_THROW(load_config(dir_.write("b.yaml", std::string(kMinimal) + "  n_heads: 3\n"),
                              {"model.kind=mlp", "data.kind=images"}));
}

TEST_F(trainer_config_errors, WarmupMustBeShorterThanTheRun) {
  expect_error_contains(loading(std::string(kMinimal) + "schedule:\n  warmup_steps: 100\n"),
                        at(10, 17) + ": schedule.warmup_steps = 100, run.steps = 100 (" + at(2, 10) +
                            "): schedule.warmup_steps must be less than run.steps (for 100 steps e.g. --set "
                            "schedule.warmup_steps=10)");
}

TEST_F(trainer_config_errors, DataKindMustSuitModelKind) {
  expect_error_contains(loading(kMinimal, {"model.kind=cnn"}),
                        at(4, 9) + ": data.kind = tokens, model.kind = cnn (--set model.kind=cnn): "
                                   "model.kind cnn needs data.kind images");
  expect_error_contains(loading(kMinimal, {"data.kind=images"}),
                        "--set data.kind=images: data.kind = images, model.kind = transformer (" +
                            at(8, 9) + "): a transformer needs data.kind tokens");
  EXPECT_NO_THROW(loading(kMinimal, {"data.kind=images", "model.kind=mlp"})());
}

TEST_F(trainer_config_errors, MaxSeqLenMustCoverTheSequence) {
  expect_error_contains(loading(std::string(kMinimal) + "  max_seq_len: 128\n"),
                        at(9, 16) + ": model.max_seq_len = 128, data.seq_len = 256 (default): "
                                    "model.max_seq_len must be 0 (meaning data.seq_len) or at least "
                                    "data.seq_len");
  EXPECT_NO_THROW(loading(std::string(kMinimal) + "  max_seq_len: 128\n", {"data.seq_len=128"})());
}

TEST_F(trainer_config_errors, MinLrMustNotExceedLr) {
  expect_error_contains(loading(kMinimal, {"schedule.min_lr=0.01", "optim.lr=0.001"}),
                        "--set schedule.min_lr=0.01: schedule.min_lr = 0.01, optim.lr = 0.001 "
                        "(--set optim.lr=0.001): schedule.min_lr must not exceed optim.lr");
  // A constant schedule never reaches min_lr.
  EXPECT_NO_THROW(loading(kMinimal, {"schedule.min_lr=0.01", "optim.lr=0.001", "schedule.name=constant"})());
}

TEST_F(trainer_config_errors, NesterovNeedsMomentum) {
  expect_error_contains(loading(kMinimal, {"optim.name=sgd", "optim.nesterov=true", "optim.momentum=0"}),
                        "--set optim.nesterov=true: optim.nesterov = true, optim.momentum = 0.0 "
                        "(--set optim.momentum=0): Nesterov momentum needs optim.momentum > 0");
}

TEST_F(trainer_config_errors, ExpertsNeedABlockToLiveIn) {
  // moe_every beyond the blocks: no MoE layer, so experts would be ignored in silence.
  expect_error_contains(loading(kMinimal, {"model.n_layers=1", "model.experts=8", "model.moe_every=2"}),
                        "model.moe_every (2) exceeds model.n_layers (1), so no block would get an MoE layer");
  EXPECT_NO_THROW(loading(kMinimal, {"model.n_layers=2", "model.experts=8", "model.moe_every=2"})());
  EXPECT_NO_THROW(loading(kMinimal, {"model.n_layers=1", "model.experts=0", "model.moe_every=2"})());
}

TEST_F(trainer_config_errors, FeedForwardWidthIsAMultipleOfTheModelWidth) {
  // Checked with the config (it was found only when the run built the model, after opening the data).
  expect_error_contains(loading(kMinimal, {"model.d_model=64", "model.d_ff=100"}),
                        "model.d_ff (100) must be a multiple of model.d_model (64)");
  EXPECT_NO_THROW(loading(kMinimal, {"model.d_model=64", "model.d_ff=192"})());
}

TEST_F(trainer_config_errors, SparseKeysAcrossTheirSection) {
  expect_error_contains(loading(kMinimal, {"model.sparse_activation=true"}),
                        "model.sparse_activation skips the zeros of a ReLU: set model.activation: relu");
  EXPECT_NO_THROW(loading(kMinimal, {"model.sparse_activation=true", "model.activation=relu"})());
  // Only dense feed-forward layers take it: refused when every block is an MoE block.
  expect_error_contains(loading(kMinimal, {"model.sparse_activation=true", "model.activation=relu", "model.experts=4"}),
                        "with model.moe_every: 1 every block has an MoE layer instead");
  EXPECT_NO_THROW(loading(kMinimal, {"model.sparse_activation=true", "model.activation=relu", "model.experts=4",
                                     "model.n_layers=2", "model.moe_every=2"})());
  expect_error_contains(loading(kMinimal, {"sparse.method=magnitude", "sparse.start_step=10", "sparse.end_step=5"}),
                        "sparse.end_step must be at least sparse.start_step (equal: one-shot pruning at that step)");
  expect_error_contains(loading(kMinimal, {"sparse.method=magnitude", "sparse.initial_sparsity=0.5", "sparse.sparsity=0.4"}),
                        "sparse.initial_sparsity must not exceed sparse.sparsity");
  // The magnitude rules do not bind the other methods.
  EXPECT_NO_THROW(loading(kMinimal, {"sparse.method=rigl", "sparse.start_step=10", "sparse.end_step=5"})());
}

TEST_F(trainer_config_errors, RulesOverAKeyWithItsOwnErrorAreSkipped) {
  // n_heads is wrong on its own; "d_model must be a multiple of n_heads" would only add noise.
  const std::string message = pit::test::error_message(
      loading(std::string(kMinimal) + "  n_heads: x\n"), std::source_location::current());
  EXPECT_NE(message.find("1 error\n"), std::string::npos) << message;
  EXPECT_EQ(message.find("multiple of"), std::string::npos) << message;
}

}  // namespace
}  // namespace pit::train
