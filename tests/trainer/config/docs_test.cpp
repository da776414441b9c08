// docs/CONFIG.md is generated from the schema; this test fails when the two differ, so the doc
// cannot go stale. PIT_UPDATE_DOCS=1 rewrites the file instead (see its header).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "trainer/config/config.h"
#include "trainer/config/train_schema.h"

#ifndef PIT_SOURCE_DIR
#error "PIT_SOURCE_DIR must name the source tree (tests/trainer/config/CMakeLists.txt sets it)"
#endif

// Suites are named trainer_config_* so that `ctest -R trainer_config` selects them.
namespace pit::train {
namespace {

const std::string kDocPath = std::string(PIT_SOURCE_DIR) + "/docs/CONFIG.md";

TEST(trainer_config_docs, ConfigMdIsUpToDate) {
  const std::string generated = schema_markdown();
  const char* update = std::getenv("PIT_UPDATE_DOCS");
  if (update && std::string(update) == "1") {
    std::ofstream(kDocPath, std::ios::binary) << generated;
    GTEST_SKIP() << "rewrote " << kDocPath;
  }
  std::ifstream in(kDocPath, std::ios::binary);
  ASSERT_TRUE(in) << kDocPath << " is missing; create it with PIT_UPDATE_DOCS=1 and this test";
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(text.str() == generated)
      << kDocPath << " is out of date with trainer/config/train_schema.cpp. Regenerate it:\n"
      << "  PIT_UPDATE_DOCS=1 <build>/tests/trainer/config/test_trainer_config_docs\n";
}

TEST(trainer_config_docs, EveryKeyIsDocumented) {
  const std::string md = schema_markdown();
  for (const SectionSpec& s : train_schema().sections()) {
    EXPECT_NE(md.find("## " + s.name() + "\n"), std::string::npos) << s.name();
    for (const KeySpec& k : s.keys()) {
      EXPECT_FALSE(k.doc.empty()) << s.name() << "." << k.name << " has no doc";
      EXPECT_NE(md.find("| `" + s.name() + "." + k.name + "` |"), std::string::npos) << k.name;
    }
  }
  EXPECT_NE(md.find("| `optim.lr` | real | `3e-4` | > 0 | peak learning rate |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| `run.steps` | integer | **required** | >= 1 |"), std::string::npos);
  EXPECT_NE(md.find("| `run.device` | choice | `auto` | `auto`, `cpu`, `cuda` |"), std::string::npos);
  EXPECT_NE(md.find("## Checks across keys"), std::string::npos);
}

TEST(trainer_config_docs, TheExampleInTheDocLoads) {
  const std::string md = schema_markdown();
  const size_t begin = md.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = md.find("```\n", begin + 8);
  ASSERT_NE(end, std::string::npos);
  const Config c = config_from_yaml(md.substr(begin + 8, end - begin - 8), "docs/CONFIG.md");
  EXPECT_EQ(c.run.steps, 1000);
}

TEST(trainer_config_docs, EveryShippedConfigLoads) {
  // configs/*.yaml as a user runs them: each must pass the schema and its checks across keys
  // (with the CPU's overrides too), so that a new check cannot reject a shipped config unseen.
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(PIT_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    ++seen;
    const std::string path = entry.path().string();
    EXPECT_NO_THROW((void)load_config(path)) << path;
    EXPECT_NO_THROW((void)with_cpu_overrides(load_config(path), {})) << path;
  }
  EXPECT_GE(seen, 6);  // moe, prune_lm, prune_mnist, rigl_mnist, mnist_mlp, mnist_cnn
}

}  // namespace
}  // namespace pit::train
