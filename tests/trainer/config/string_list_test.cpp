// The string_list value type of the schema engine (on a small schema of its own), and pit-train's
// run.cpu_overrides built on it: each entry checked where it is written, the config as it runs
// on the CPU checked at load, with_cpu_overrides, and the round trip of the resolved YAML.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/core/expect_error.h"
#include "tests/trainer/config/config_files.h"
#include "trainer/config/config.h"
#include "trainer/config/loader.h"
#include "trainer/config/schema.h"
#include "trainer/config/train_schema.h"
#include "trainer/config/values.h"

// Suites are named trainer_config_* so that `ctest -R trainer_config` selects them.
namespace pit::train {
namespace {

using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;
using test::kMinimal;
using Strings = std::vector<std::string>;

// ---- the engine: string_list -------------------------------------------------------------------

const Schema& list_schema() {
  static const Schema schema = [] {
    Schema s;
    s.section("job", "a job")
        .string_list("tags", Strings{"a", "b c"}, "labels")
        .string_list("hosts", required, "where it runs").non_empty().example("[\"h1\", \"h2\"]")
        .string_list("words", Strings{}, "single words")
        .each("a word without spaces", [](const std::string& w) -> std::string {
          return w.find(' ') == std::string::npos ? "" : "a word may not hold a space";
        });
    return s;
  }();
  return schema;
}

Values load_list(const std::string& yaml, const Strings& overrides = {}) {
  return load_values(list_schema(), "l.yaml", yaml, overrides);
}

TEST(trainer_config_string_list, ParsesBlockAndFlowListsOfScalars) {
  const Values v = load_list(
      "job:\n"
      "  hosts:\n"
      "    - h1\n"
      "    - \"h 2\"\n"
      "    - 123\n"      // a scalar is a string, whatever it looks like
      "    - 1e-3\n"
      "    - 'true'\n"
      "  words: []\n");
  EXPECT_EQ(v.string_list("job.hosts"), (Strings{"h1", "h 2", "123", "1e-3", "true"}));
  EXPECT_EQ(v.string_list("job.tags"), (Strings{"a", "b c"}));  // the default
  EXPECT_TRUE(v.from_default("job.tags"));
  EXPECT_TRUE(v.string_list("job.words").empty());
  EXPECT_EQ(load_list("job: {hosts: [x, \"y, z\"], tags: []}\n").string_list("job.hosts"),
            (Strings{"x", "y, z"}));
}

TEST(trainer_config_string_list, OverridesSetAList) {
  const Values v = load_list("job: {hosts: [x]}\n", {"job.hosts=[a, \"b: c\"]", "job.tags=[]"});
  EXPECT_EQ(v.string_list("job.hosts"), (Strings{"a", "b: c"}));
  EXPECT_TRUE(v.string_list("job.tags").empty());
  EXPECT_EQ(v.origin("job.hosts"), "--set job.hosts=[a, \"b: c\"]");
}

TEST(trainer_config_string_list, AnElementThatIsNotAStringNamesItsIndexAndPlace) {
  expect_error_contains_all(
      [] {
        load_list(
            "job:\n"
            "  hosts:\n"
            "    - h1\n"
            "    - [a, b]\n"
            "    - {k: v}\n"
            "    - ~\n"
            "    - ok\n");
      },
      {"invalid config l.yaml: 3 errors",
       "\n  l.yaml:4:7: job.hosts[1]: a list is not a string; expected a non-empty list of strings "
       "(e.g. [\"h1\", \"h2\"])",
       "\n  l.yaml:5:7: job.hosts[2]: a mapping is not a string; expected a non-empty list of strings",
       "\n  l.yaml:3:5: job.hosts[3]: no value; expected a non-empty list of strings"});
  // An empty element: yaml-cpp has no place for it, so the message points at the list.
  expect_error_contains([] { load_list("job:\n  hosts:\n    - a\n    -\n    - b\n"); },
                        "l.yaml:3:5: job.hosts[1]: no value");
  // A common slip: "- key: value" is a mapping, not the string "key: value".
  expect_error_contains([] { load_list("job:\n  hosts:\n    - a: b\n"); },
                        "l.yaml:3:7: job.hosts[0]: a mapping is not a string");
}

TEST(trainer_config_string_list, NotAListEmptyAndMissing) {
  expect_error_contains([] { load_list("job:\n  hosts: h1\n"); },
                        "l.yaml:2:10: job.hosts: \"h1\" is not a list; expected a non-empty list of "
                        "strings (e.g. [\"h1\", \"h2\"])");
  expect_error_contains([] { load_list("job:\n  hosts: []\n"); },
                        "l.yaml:2:10: job.hosts: the list is empty; expected a non-empty list of strings");
  expect_error_contains([] { load_list("job:\n  tags: [x]\n"); },
                        "l.yaml:1:1: job.hosts: required key is missing; expected a non-empty list of "
                        "strings (e.g. [\"h1\", \"h2\"])");
  expect_error_contains([] { load_list("job: {hosts: [a]}\n", {"job.hosts="}); },
                        "--set job.hosts=: job.hosts: \"\" is not a list");
}

TEST(trainer_config_string_list, TheElementCheckRunsOnEachElement) {
  expect_error_contains_all(
      [] { load_list("job:\n  hosts: [h]\n  words: [one, two words, three, and four]\n"); },
      {"2 errors",
       "\n  l.yaml:3:16: job.words[1]: \"two words\": a word may not hold a space\n",
       "\n  l.yaml:3:34: job.words[3]: \"and four\": a word may not hold a space"});
  expect_error_contains([] { load_list("job: {hosts: [h]}\n", {"job.words=[a, b c]"}); },
                        "--set job.words=[a, b c]: job.words[1]: \"b c\": a word may not hold a space");
  EXPECT_EQ(list_schema().find_key("job.words")->expected(),
            "a list of strings, each a word without spaces");
}

TEST(trainer_config_string_list, ToYamlQuotesEveryStringAndReadsBackExactly) {
  const Strings tricky = {"",        "plain",    "a: b",   "# not a comment", "say \"hi\"",
                          "back\\slash", "tab\there", "two\nlines", "123",   "true",
                          "null",    "~",        "[1, 2]", "{k: v}",          "- dash",
                          "  spaced  ", "comma, here", "caf\xc3\xa9", "bell\x07"};
  Values v;
  v.set("job.tags", tricky, "");
  v.set("job.hosts", Strings{"h"}, "");
  v.set("job.words", Strings{}, "");
  const std::string yaml = to_yaml(list_schema(), v, /*with_docs=*/false);
  EXPECT_NE(yaml.find("  tags: [\"\", \"plain\", \"a: b\", \"# not a comment\", \"say \\\"hi\\\"\", "
                      "\"back\\\\slash\", \"tab\\there\", \"two\\nlines\", \"123\", \"true\", \"null\""),
            std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("  words: []\n"), std::string::npos) << yaml;
  const Values back = load_list(yaml);
  EXPECT_EQ(back.string_list("job.tags"), tricky) << yaml;
  EXPECT_EQ(back.string_list("job.hosts"), (Strings{"h"}));
  EXPECT_EQ(to_yaml(list_schema(), back, false), yaml);
  // With docs, as --print-config writes it: the comments of short lines line up, a long list
  // does not push them to the right.
  const std::string documented = to_yaml(list_schema(), v, /*with_docs=*/true);
  EXPECT_NE(documented.find("\"bell\\u0007\"]  # labels\n  hosts: [\"h\"]  # where it runs\n"
                            "  words: []     # single words\n"),
            std::string::npos)
      << documented;
  EXPECT_EQ(load_list(documented).string_list("job.tags"), tricky);
}

TEST(trainer_config_string_list, MarkdownAndSchemaBuilder) {
  const std::string md = markdown(list_schema());
  EXPECT_NE(md.find("| `job.tags` | list of strings | `[\"a\", \"b c\"]` |  | labels |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| `job.hosts` | list of strings | **required** | not empty | where it runs |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| `job.words` | list of strings | `[]` | each a word without spaces | single words |"),
            std::string::npos)
      << md;

  Schema s;
  SectionSpec& sec = s.section("x", "x");
  EXPECT_THROW(sec.integer("n", 1, "n").each("a word"), Error);  // each: string lists only
  EXPECT_NO_THROW(sec.string_list("l", Strings{}, "l").non_empty());
  EXPECT_THROW(sec.string_list("l", Strings{}, "again"), Error);  // declared twice
}

// ---- pit-train: run.cpu_overrides --------------------------------------------------------------

class trainer_config_cpu_overrides : public ::testing::Test {
 protected:
  // kMinimal with `run_lines` added to its run: section (which starts the file).
  std::string with_run(const std::string& run_lines) const {
    return std::string(kMinimal).insert(5, run_lines);
  }
  auto loading(const std::string& yaml, Strings overrides = {}) {
    dir_.write("a.yaml", yaml);
    return [this, overrides] { load_config(file_, overrides); };
  }
  std::string at(int line, int col) const {
    return file_ + ":" + std::to_string(line) + ":" + std::to_string(col);
  }

  test::TempDir dir_;
  const std::string file_ = (dir_.path() / "a.yaml").string();
};

TEST_F(trainer_config_cpu_overrides, DefaultIsEmptyAndWithCpuOverridesKeepsTheConfig) {
  const Config c = config_from_yaml(kMinimal, "min.yaml");
  EXPECT_TRUE(c.run.cpu_overrides.empty());
  EXPECT_NE(c.resolved_yaml.find("\n  cpu_overrides: []\n"), std::string::npos) << c.resolved_yaml;
  const Config cpu = with_cpu_overrides(c, {"optim.lr=1"});  // nothing to apply: unchanged
  EXPECT_TRUE(cpu == c);
  EXPECT_EQ(cpu.source, "min.yaml");
  EXPECT_EQ(cpu.optim.lr, 3e-4);
}

TEST_F(trainer_config_cpu_overrides, LoadsAsWrittenAndAppliesOnlyOnRequest) {
  dir_.write("a.yaml", with_run("  cpu_overrides:\n"
                                "    - run.steps=20\n"
                                "    - model.d_model=64\n"
                                "    - model.hidden=[8, 8]\n"
                                "    - data.batch_size=4\n"
                                "    - run.out_dir=\n"));
  const Config c = load_config(file_, {"run.out_dir=/scratch"});
  EXPECT_EQ(c.run.cpu_overrides, (Strings{"run.steps=20", "model.d_model=64", "model.hidden=[8, 8]",
                                          "data.batch_size=4", "run.out_dir="}));
  EXPECT_EQ(c.run.steps, 100);  // loading applies nothing
  EXPECT_EQ(c.model.d_model, 256);

  const Config cpu = with_cpu_overrides(c, {"run.out_dir=/scratch"});
  EXPECT_EQ(cpu.run.steps, 20);
  EXPECT_EQ(cpu.model.d_model, 64);
  EXPECT_EQ(cpu.model.hidden, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(cpu.data.batch_size, 4);
  EXPECT_EQ(cpu.run.out_dir, "/scratch");  // the command line wins over run.cpu_overrides
  EXPECT_TRUE(cpu.run.cpu_overrides.empty());  // applied: the CPU run as it runs
  EXPECT_EQ(cpu.source, file_);
  EXPECT_NE(cpu.resolved_yaml, c.resolved_yaml);
  // Applying it again changes nothing; without the command line the entry's value stays.
  EXPECT_TRUE(with_cpu_overrides(cpu, {"run.out_dir=/scratch"}) == cpu);
  EXPECT_EQ(with_cpu_overrides(c, {}).run.out_dir, "");
}

TEST_F(trainer_config_cpu_overrides, TheCommandLineWinsInOrder) {
  const Config c = config_from_yaml(with_run("  cpu_overrides: [optim.lr=1e-2, data.batch_size=4]\n"),
                                    "a.yaml", {"optim.lr=5e-3"});
  EXPECT_EQ(c.optim.lr, 5e-3);
  const Config cpu = with_cpu_overrides(c, {"optim.lr=5e-3"});
  EXPECT_EQ(cpu.optim.lr, 5e-3);      // --set beats the CPU entry
  EXPECT_EQ(cpu.data.batch_size, 4);  // the CPU entry beats the file
  EXPECT_EQ(with_cpu_overrides(c, {}).optim.lr, 1e-2);
  // Within run.cpu_overrides, as on the command line, the last entry of a key wins.
  const Config twice = config_from_yaml(with_run("  cpu_overrides: [data.batch_size=4, data.batch_size=2]\n"));
  EXPECT_EQ(with_cpu_overrides(twice, {}).data.batch_size, 2);
}

TEST_F(trainer_config_cpu_overrides, AnEntryIsCheckedWhereItIsWritten) {
  // The list opens on line 2; entry i is on line 3 + i, its text at column 7.
  const std::string yaml = with_run(
      "  cpu_overrides:\n"
      "    - batch_size=4\n"            // no section
      "    - model.d_modle=64\n"        // unknown key
      "    - optm.lr=1e-3\n"            // unknown section
      "    - data.batch_size=0\n"       // out of range
      "    - optim.lr=fast\n"           // wrong type
      "    - model.hidden=[1, 0, x]\n"  // two bad elements
      "    - run.cpu_overrides=[]\n"    // itself
      "    - model.norm=rmsnorm\n"      // fine
      "    - data.seq_len: 64\n");      // a mapping, not "key=value"
  expect_error_contains_all(
      loading(yaml),
      {"invalid config " + file_ + ": 8 errors",
       at(3, 7) + ": run.cpu_overrides[0]: \"batch_size=4\": expected section.key=value (e.g. "
                  "optim.lr=1e-3); did you mean data.batch_size?",
       at(4, 7) + ": run.cpu_overrides[1]: \"model.d_modle=64\": model.d_modle: unknown key; did you "
                  "mean \"d_model\"? (keys of model:",
       at(5, 7) + ": run.cpu_overrides[2]: \"optm.lr=1e-3\": unknown section \"optm\"; did you mean "
                  "\"optim\"?",
       at(6, 7) + ": run.cpu_overrides[3]: \"data.batch_size=0\": data.batch_size: 0 is out of range; "
                  "expected an integer >= 1 (e.g. 32)",
       at(7, 7) + ": run.cpu_overrides[4]: \"optim.lr=fast\": optim.lr: \"fast\" is not a real "
                  "number; expected a real number > 0 (e.g. 3e-4)",
       at(8, 7) + ": run.cpu_overrides[5]: \"model.hidden=[1, 0, x]\": model.hidden[1]: 0 is out of "
                  "range; expected a list of integers, each >= 1 (e.g. [1024, 1024]); "
                  "model.hidden[2]: \"x\" is not an integer",
       at(9, 7) + ": run.cpu_overrides[6]: \"run.cpu_overrides=[]\": run.cpu_overrides cannot set "
                  "run.cpu_overrides itself",
       at(11, 7) + ": run.cpu_overrides[8]: a mapping is not a string; expected a list of strings, "
                   "each section.key=value (e.g. [\"model.d_model=64\", \"data.batch_size=4\"])"});
  // Set from the command line, the list is checked the same way.
  expect_error_contains(loading(kMinimal, {"run.cpu_overrides=[run.steps=0]"}),
                        "--set run.cpu_overrides=[run.steps=0]: run.cpu_overrides[0]: "
                        "\"run.steps=0\": run.steps: 0 is out of range; expected an integer >= 1");
  expect_error_contains(loading(kMinimal, {"run.cpu_overrides=run.steps=10"}),
                        "--set run.cpu_overrides=run.steps=10: run.cpu_overrides: \"run.steps=10\" is "
                        "not a list; expected a list of strings, each section.key=value");
}

TEST_F(trainer_config_cpu_overrides, TheConfigAsItRunsOnTheCpuIsCheckedAtLoad) {
  // Each entry is fine alone, but the CPU run would end before its warm-up does.
  const std::string yaml = with_run("  cpu_overrides: [run.log_every=1, run.steps=10]\n") +
                           "schedule:\n  warmup_steps: 50\n";
  expect_error_contains_all(
      loading(yaml),
      {"invalid config " + file_ + " on the CPU (with run.cpu_overrides applied): 1 error\n",
       at(11, 17) + ": schedule.warmup_steps = 50, run.steps = 10 (run.cpu_overrides[1] "
                    "\"run.steps=10\"): schedule.warmup_steps must be less than run.steps"});
  // The command line takes part: it can break the CPU config ...
  expect_error_contains(loading(with_run("  cpu_overrides: [run.steps=10]\n"), {"schedule.warmup_steps=20"}),
                        "--set schedule.warmup_steps=20: schedule.warmup_steps = 20, run.steps = 10 "
                        "(run.cpu_overrides[0] \"run.steps=10\"): schedule.warmup_steps must be less "
                        "than run.steps");
  // ... and mend it, since it wins over the entries.
  EXPECT_NO_THROW(loading(yaml, {"run.steps=100"})());
  // Errors of the config itself come first and alone.
  expect_error_contains_all(loading(yaml, {"optim.lr=0"}),
                            {"invalid config " + file_ + ": 1 error", "--set optim.lr=0: optim.lr:"});
}

TEST_F(trainer_config_cpu_overrides, WithCpuOverridesNamesWhereABadValueCameFrom) {
  Config c = config_from_yaml(with_run("  cpu_overrides: [run.steps=10]\n") + "schedule:\n  warmup_steps: 5\n",
                              "a.yaml");
  // The command line given now differs from the one the config was checked with.
  expect_error_contains_all(
      [&] { with_cpu_overrides(c, {"schedule.warmup_steps=20"}); },
      {"invalid config a.yaml on the CPU (with run.cpu_overrides applied): 1 error",
       "--set schedule.warmup_steps=20: schedule.warmup_steps = 20, run.steps = 10 (run.cpu_overrides[0] "
       "\"run.steps=10\"): schedule.warmup_steps must be less than run.steps"});
  expect_error_contains([&] { with_cpu_overrides(c, {"optim.lr=x"}); },
                        "--set optim.lr=x: optim.lr: \"x\" is not a real number");
  // A value from the config itself is named by its place in the resolved YAML, which is where
  // it was read from (the file may have changed since).
  expect_error_contains_all([&] { with_cpu_overrides(c, {"run.steps=5"}); },
                            {"\n  a.yaml (resolved):", ": schedule.warmup_steps = 5, run.steps = 5 "
                                                       "(--set run.steps=5): schedule.warmup_steps"});
  // Entries that were not checked on load (the struct edited by hand) are named by index.
  c.run.cpu_overrides = {"run.steps=50", "optim.lr=abc"};
  expect_error_contains([&] { with_cpu_overrides(c, {}); },
                        "run.cpu_overrides[1] \"optim.lr=abc\": optim.lr: \"abc\" is not a real "
                        "number; expected a real number > 0 (e.g. 3e-4)");
}

TEST_F(trainer_config_cpu_overrides, ConfigToRunTakesTheConfigOfTheDeviceItLandsOn) {
  const auto on_gpu = [](const Config&) { return true; };
  const auto on_cpu = [](const Config&) { return false; };
  std::string note = "stale";
  // Valid as written: the GPU run as loaded, the CPU run with the entries applied.
  dir_.write("a.yaml", with_run("  cpu_overrides: [run.steps=20, schedule.warmup_steps=2]\n") +
                           "schedule:\n  warmup_steps: 50\n");
  const Config gpu = config_to_run(file_, {}, on_gpu, &note);
  EXPECT_EQ(gpu.run.steps, 100);
  EXPECT_EQ(note, "");
  EXPECT_TRUE(gpu == load_config(file_, {}));
  const Config cpu = config_to_run(file_, {"optim.lr=1e-3"}, on_cpu, &note);
  EXPECT_EQ(cpu.run.steps, 20);
  EXPECT_EQ(cpu.schedule.warmup_steps, 2);
  EXPECT_EQ(cpu.optim.lr, 1e-3);
  EXPECT_EQ(note, "running on the CPU: run.cpu_overrides applied");
  EXPECT_TRUE(cpu == with_cpu_overrides(load_config(file_, {"optim.lr=1e-3"}), {"optim.lr=1e-3"}));
  // The CPU run's config has the entries applied and the list emptied: printed and loaded again
  // (on a CPU as on a GPU) it is the same run, not one with the entries applied twice.
  EXPECT_TRUE(cpu.run.cpu_overrides.empty());
  const std::string printed = dir_.write("printed.yaml", print_config(config_to_run(file_, {"run.steps=40"}, on_cpu, &note)));
  const Config again = config_to_run(printed, {}, on_cpu, &note);
  EXPECT_EQ(again.run.steps, 40);
  EXPECT_EQ(again.schedule.warmup_steps, 2);
  EXPECT_EQ(note, "");

  // A --set that breaks only the CPU run (a warm-up of 30 under the entries' 20 steps): a run that
  // lands on a GPU goes on and says what a CPU would need; one on the CPU stops.
  const std::string cpu_error = "schedule.warmup_steps must be less than run.steps";
  const Config gpu_only = config_to_run(file_, {"schedule.warmup_steps=30", "run.cpu_overrides=[run.steps=20]"}, on_gpu, &note);
  EXPECT_EQ(gpu_only.schedule.warmup_steps, 30);
  EXPECT_NE(note.find("running on the GPU, where run.cpu_overrides do not apply; on a CPU this command would stop: "
                      "invalid config " + file_ + " on the CPU"),
            std::string::npos)
      << note;
  EXPECT_NE(note.find(cpu_error), std::string::npos) << note;
  expect_error_contains([&] {
    config_to_run(file_, {"schedule.warmup_steps=30", "run.cpu_overrides=[run.steps=20]"}, on_cpu, &note);
  }, cpu_error);

  // --set run.steps=30 breaks the GPU run (warm-up 50) but not the CPU one (warm-up 2): a GPU
  // stops as load_config does, the CPU runs and the note says what a GPU would need.
  const std::string gpu_error = "--set run.steps=30): schedule.warmup_steps must be less than run.steps";
  expect_error_contains([&] { config_to_run(file_, {"run.steps=30"}, on_gpu, &note); }, gpu_error);
  expect_error_contains([&] { load_config(file_, {"run.steps=30"}); }, gpu_error);
  const Config shortened = config_to_run(file_, {"run.steps=30"}, on_cpu, &note);
  EXPECT_EQ(shortened.run.steps, 30);  // the command line still wins over the entries
  EXPECT_EQ(shortened.schedule.warmup_steps, 2);
  EXPECT_TRUE(shortened == with_cpu_overrides(gpu, {"run.steps=30"}));
  EXPECT_NE(note.find("running on the CPU: run.cpu_overrides applied; on a GPU, where they do not apply, this "
                      "command would stop: invalid config " + file_ + ": 1 error"),
            std::string::npos)
      << note;
  EXPECT_NE(note.find(gpu_error), std::string::npos) << note;
  EXPECT_NO_THROW(config_to_run(file_, {"run.steps=30"}, on_cpu, nullptr));

  // Invalid on the CPU too (warm-up 2, 2 steps): the GPU run's problems, wherever it lands.
  expect_error_contains([&] { config_to_run(file_, {"run.steps=2"}, on_cpu, &note); },
                        "schedule.warmup_steps = 50, run.steps = 2 (--set run.steps=2)");
  // A command line that sets the list itself, or a config without one, has no CPU run to fall to.
  expect_error_contains([&] { config_to_run(file_, {"run.steps=30", "run.cpu_overrides=[run.log_every=1]"}, on_cpu, &note); },
                        gpu_error);
  dir_.write("a.yaml", with_run("") + "schedule:\n  warmup_steps: 50\n");
  expect_error_contains([&] { config_to_run(file_, {"run.steps=30"}, on_cpu, &note); }, gpu_error);
  // What lands on the CPU is decided on the CPU config: one that lands on a GPU stops.
  dir_.write("a.yaml", with_run("  cpu_overrides: [run.device=cuda, schedule.warmup_steps=2]\n") +
                           "schedule:\n  warmup_steps: 50\n");
  expect_error_contains([&] {
    config_to_run(file_, {"run.steps=30"}, [](const Config& c) { return c.run.device == DeviceChoice::cuda; }, &note);
  }, gpu_error);
}

TEST_F(trainer_config_cpu_overrides, AResolvedConfigWithCpuOverridesRoundTrips) {
  const Strings entries = {"run.name=\"cpu: small # run\"", "model.hidden=[8, 8]", "run.out_dir=",
                           "optim.lr=1.2345678901234567e-5", "data.train=\"a \\\"q\\\" b\""};
  std::string list = "[";
  for (const std::string& e : entries) list += (list.size() > 1 ? ", '" : "'") + e + "'";
  const Config a = load_config(dir_.write("a.yaml", with_run("  cpu_overrides: " + list + "]\n")),
                               {"model.d_model=128"});
  ASSERT_EQ(a.run.cpu_overrides, entries);

  const Config b = config_from_yaml(a.resolved_yaml, "<checkpoint>");
  EXPECT_EQ(b.resolved_yaml, a.resolved_yaml);
  EXPECT_TRUE(a == b) << a.resolved_yaml;
  EXPECT_TRUE(config_from_yaml(print_config(a)) == a) << print_config(a);

  // The CPU config from either is the same, and round-trips too.
  const Config cpu = with_cpu_overrides(a, {"model.d_model=128"});
  EXPECT_EQ(cpu.run.name, "cpu: small # run");
  EXPECT_EQ(cpu.data.train, "a \"q\" b");
  EXPECT_EQ(cpu.optim.lr, 1.2345678901234567e-5);
  EXPECT_EQ(cpu.model.d_model, 128);
  EXPECT_TRUE(with_cpu_overrides(b, {"model.d_model=128"}) == cpu);
  EXPECT_TRUE(config_from_yaml(cpu.resolved_yaml) == cpu) << cpu.resolved_yaml;
}

TEST(trainer_config_cpu_overrides_docs, TheKeyIsDocumented) {
  const std::string md = schema_markdown();
  EXPECT_NE(md.find("| `run.cpu_overrides` | list of strings | `[]` | each section.key=value | "
                    "overrides applied when the run lands on the CPU"),
            std::string::npos)
      << md;
  // The example entries in the prose are valid ones.
  const std::string example = "[\"run.steps=200\", \"model.d_model=64\", \"data.batch_size=4\"]";
  ASSERT_NE(md.find("`cpu_overrides: " + example + "`"), std::string::npos) << md;
  const Config c = config_from_yaml("run:\n  steps: 1000\n  cpu_overrides: " + example +
                                        "\ndata: {kind: tokens, train: t, valid: v}\nmodel: {kind: transformer}\n",
                                    "docs");
  EXPECT_EQ(with_cpu_overrides(c, {}).run.steps, 200);
}

}  // namespace
}  // namespace pit::train
