// pit-train's command line, and the "did you mean" helper it shares with the config loader.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/core/expect_error.h"
#include "trainer/config/cli.h"
#include "trainer/config/suggest.h"

// Suites are named trainer_config_* so that `ctest -R trainer_config` selects them.
namespace pit::train {
namespace {

using pit::test::expect_error_contains;

// parse_command_line over {"pit-train", args...}.
CommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "pit-train");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return parse_command_line(static_cast<int>(args.size()), argv.data());
}

TEST(trainer_config_cli, ConfigAlone) {
  const CommandLine cl = parse({"--config", "configs/moe.yaml"});
  EXPECT_EQ(cl.config_path, "configs/moe.yaml");
  EXPECT_FALSE(cl.help);
  EXPECT_FALSE(cl.print_config);
  EXPECT_FALSE(cl.resume);
  EXPECT_TRUE(cl.overrides.empty());
  EXPECT_EQ(parse({"--config=a.yaml"}).config_path, "a.yaml");
}

TEST(trainer_config_cli, EveryOption) {
  const CommandLine cl = parse({"--set", "optim.lr=1e-3", "--config", "a.yaml", "--set=model.hidden=[1,2]",
                                "--print-config", "--resume", "runs/x/checkpoints/step_100.h5"});
  EXPECT_EQ(cl.config_path, "a.yaml");
  EXPECT_EQ(cl.overrides, (std::vector<std::string>{"optim.lr=1e-3", "model.hidden=[1,2]"}));
  EXPECT_TRUE(cl.print_config);
  EXPECT_TRUE(cl.resume);
  EXPECT_EQ(cl.resume_path, "runs/x/checkpoints/step_100.h5");
}

TEST(trainer_config_cli, ResumeTakesAnOptionalPath) {
  CommandLine cl = parse({"--config", "a.yaml", "--resume"});
  EXPECT_TRUE(cl.resume);
  EXPECT_EQ(cl.resume_path, "");  // the latest checkpoint of the run
  cl = parse({"--resume", "--config", "a.yaml"});
  EXPECT_TRUE(cl.resume);
  EXPECT_EQ(cl.resume_path, "");
  EXPECT_EQ(cl.config_path, "a.yaml");
  cl = parse({"--resume=ck.h5", "--config", "a.yaml"});
  EXPECT_EQ(cl.resume_path, "ck.h5");
  EXPECT_FALSE(parse({"--config", "a.yaml"}).resume);
}

TEST(trainer_config_cli, HelpNeedsNoConfigAndWins) {
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-h"}).help);
  EXPECT_TRUE(parse({"--bogus", "--help"}).help);
  EXPECT_TRUE(parse({"--config", "a.yaml", "-h", "--nonsense"}).help);
}

TEST(trainer_config_cli, ErrorsSayWhatIsWrong) {
  expect_error_contains([] { parse({}); }, "--config FILE is required (pit-train --help lists the options)");
  expect_error_contains([] { parse({"--set", "optim.lr=1"}); }, "--config FILE is required");
  expect_error_contains([] { parse({"--config"}); }, "--config needs a FILE");
  expect_error_contains([] { parse({"--config", "--print-config"}); },
                        "--config needs a FILE, got the option --print-config");
  expect_error_contains([] { parse({"--config="}); }, "--config= needs a FILE");
  expect_error_contains([] { parse({"--config", "a.yaml", "--config", "b.yaml"}); },
                        "--config is given twice");
  expect_error_contains([] { parse({"--config", "a.yaml", "--set"}); }, "--set needs a section.key=value");
  expect_error_contains([] { parse({"--config", "a.yaml", "--set", "optim.lr"}); },
                        "--set needs section.key=value, got \"optim.lr\"");
  expect_error_contains([] { parse({"--config", "a.yaml", "--sett", "a.b=1"}); },
                        "unknown option --sett; did you mean --set?");
  expect_error_contains([] { parse({"--config", "a.yaml", "--print-confg"}); },
                        "did you mean --print-config?");
  expect_error_contains([] { parse({"--config", "a.yaml", "--frobnicate"}); },
                        "unknown option --frobnicate (pit-train --help lists the options)");
  expect_error_contains([] { parse({"configs/moe.yaml"}); },
                        "unexpected argument \"configs/moe.yaml\"; did you mean --config configs/moe.yaml?");
  expect_error_contains([] { parse({"--config", "a.yaml", "--print-config=yes"}); },
                        "--print-config takes no value");
  expect_error_contains([] { parse({"--config", "a.yaml", "--help=1"}); }, "--help takes no value");
}

TEST(trainer_config_cli, UsageListsEveryOptionAndTheDocs) {
  const std::string usage = usage_text();
  for (const char* needle : {"usage: pit-train --config FILE", "--set section.key=VALUE", "--print-config",
                             "--resume [PATH]", "-h, --help", "docs/CONFIG.md"})
    EXPECT_NE(usage.find(needle), std::string::npos) << needle << "\n" << usage;
}

TEST(trainer_config_suggest, EditDistanceCountsSwapsAsOne) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("lr", ""), 2u);
  EXPECT_EQ(edit_distance("lr", "lr"), 0u);
  EXPECT_EQ(edit_distance("lrr", "lr"), 1u);
  EXPECT_EQ(edit_distance("d_modle", "d_model"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(trainer_config_suggest, ClosestMatchOnlyForPlausibleTypos) {
  const std::vector<std::string> keys = {"name", "lr", "weight_decay", "beta1", "beta2", "eps"};
  EXPECT_EQ(closest_match("LR", keys), "lr");
  EXPECT_EQ(closest_match("wieght_decay", keys), "weight_decay");
  EXPECT_EQ(closest_match("beta_1", keys), "beta1");
  EXPECT_EQ(closest_match("xy", keys), "");        // two edits from "lr": not a typo of it
  EXPECT_EQ(closest_match("momentum", keys), "");
  EXPECT_EQ(closest_match("a", {}), "");
  EXPECT_EQ(join({"a", "b", "c"}), "a, b, c");
}

}  // namespace
}  // namespace pit::train
