#pragma once
// Test helpers: a temporary folder that removes itself, YAML files written into it, and a
// minimal valid config to build on.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace pit::train::test {

// The smallest config that loads: every required key, nothing else.
inline constexpr const char* kMinimal =
    "run:\n"
    "  steps: 100\n"
    "data:\n"
    "  kind: tokens\n"
    "  train: data/train.h5\n"
    "  valid: data/valid.h5\n"
    "model:\n"
    "  kind: transformer\n";

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "x";
    path_ = std::filesystem::temp_directory_path() /
            ("pit-config-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + test);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);  // best effort: a leftover temp folder fails nothing
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `text` to `name` in the folder and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << text;
    return file.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace pit::train::test
