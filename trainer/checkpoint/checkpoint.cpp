#include "trainer/checkpoint/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "trainer/checkpoint/durable.h"
#include "trainer/checkpoint/state_hdf5.h"
#include "trainer/io/hdf5.h"

namespace pit::train {
namespace fs = std::filesystem;

namespace {

CheckpointSaveHook& save_hook() {
  static CheckpointSaveHook hook;
  return hook;
}

void run_hook(const char* stage) {
  if (save_hook()) save_hook()(stage);
}

[[noreturn]] void unusable(const fs::path& path, const std::string& reason) {
  PIT_THROW("checkpoint ", path.string(), " cannot be used: ", reason,
            ". The file was left as it is; resume from another checkpoint (--resume without a PATH "
            "takes the newest usable one)");
}

// (step, path) of every file in `dir` named like a checkpoint, highest step first.
std::vector<std::pair<int64_t, fs::path>> checkpoint_files(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const int64_t step = checkpoint_step(entry.path().filename().string());
    if (step >= 0 && entry.is_regular_file(ec)) files.emplace_back(step, entry.path());
  }
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  return files;
}

bool valid_checkpoint(const fs::path& path) {
  try {
    check_checkpoint_header(path);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// Deletes the .tmp leftovers of saves that crashed, then the valid checkpoints beyond the newest
// `keep`; anything else stays, and so does `just`, the checkpoint just written (a new run in a
// folder holding an earlier run's later checkpoints deleted its own).
void prune(const fs::path& dir, int keep, const fs::path& just) {
  std::error_code listing;
  for (const auto& entry : fs::directory_iterator(dir, listing)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp") && checkpoint_step(name.substr(0, name.size() - 4)) >= 0) {
      std::error_code ignored;
      fs::remove(entry.path(), ignored);
    }
  }
  if (keep <= 0) return;
  int kept = 0;
  for (const auto& [step, path] : checkpoint_files(dir)) {
    if (path == just) {
      ++kept;
      continue;
    }
    if (!valid_checkpoint(path)) continue;
    if (kept < keep) {
      ++kept;
      continue;
    }
    std::error_code ec;
    fs::remove(path, ec);  // a file that cannot be removed is only a missed clean-up
  }
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  PIT_CHECK(step >= 0, "checkpoint step must be >= 0, got ", step);
  char name[40];
  std::snprintf(name, sizeof name, "step-%08lld.h5", static_cast<long long>(step));
  return name;
}

int64_t checkpoint_step(const std::string& name) {
  constexpr std::string_view head = "step-", tail = ".h5";
  if (name.size() < head.size() + 8 + tail.size() || !name.starts_with(head) ||
      !name.ends_with(tail))
    return -1;
  const std::string digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      }))
    return -1;
  return std::stoll(digits);
}

std::vector<fs::path> checkpoints_after(const fs::path& dir, int64_t step) {
  std::vector<fs::path> later;
  for (const auto& [s, path] : checkpoint_files(dir))
    if (s > step && valid_checkpoint(path)) later.push_back(path);
  std::reverse(later.begin(), later.end());
  return later;
}

void set_checkpoint_save_hook(CheckpointSaveHook hook) { save_hook() = std::move(hook); }

fs::path save_checkpoint(const fs::path& dir, int64_t step, const StateDict& state, int keep) {
  const fs::path path = dir / checkpoint_name(step);
  check_state_names(state);  // before anything touches the disk
  std::error_code ec;
  fs::create_directories(dir, ec);
  PIT_CHECK(!ec, "cannot create the checkpoint directory ", dir.string(), ": ", ec.message());

  const fs::path tmp = path.string() + ".tmp";
  try {
    {
      io::File file = io::File::create(tmp.string());
      file.set_attr_string("format", kCheckpointFormat);
      file.set_attr_int("version", kCheckpointVersion);
      file.set_attr_int("step", step);
      write_state(file, state);
      run_hook("entries");
      file.set_attr_int("complete", 1);  // last: a file without it is not a checkpoint
      file.close();
    }
    run_hook("closed");
    fsync_file(tmp);
    fs::rename(tmp, path, ec);
    PIT_CHECK(!ec, "cannot rename ", tmp.string(), " to ", path.string(), ": ", ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  fsync_directory(dir);
  run_hook("renamed");
  prune(dir, keep, path);
  return path;
}

void check_checkpoint_header(const fs::path& path) {
  std::error_code ec;
  PIT_CHECK(!fs::is_directory(path, ec), "checkpoint ", path.string(),
            " is a folder, not a checkpoint file: give one of its step-*.h5 files, or --resume without a PATH "
            "(the newest usable checkpoint of the run's checkpoint folder)");
  PIT_CHECK(fs::is_regular_file(path, ec), "checkpoint ", path.string(),
            ": no such file (--resume without a PATH takes the newest usable checkpoint of the run's checkpoint "
            "folder)");
  std::string reason;
  try {
    const io::File file = io::File::open(path.string());
    if (!file.has_attr("format") || file.attr_string("format") != kCheckpointFormat) {
      reason = "it is not a pit checkpoint (no format attribute \"pit-checkpoint\")";
    } else if (!file.has_attr("version") || file.attr_int("version") < 1) {
      reason = "it has no valid format version";
    } else if (const int64_t version = file.attr_int("version"); version > kCheckpointVersion) {
      reason = "it was written by a newer pit (format version " + std::to_string(version) +
               "; this build reads up to " + std::to_string(kCheckpointVersion) + ")";
    } else if (!file.has_attr("complete") || file.attr_int("complete") != 1) {
      reason = "it is incomplete (its save was interrupted)";
    }
  } catch (const Error& e) {
    reason = std::string("it is truncated or corrupt (") + e.what() + ")";
  }
  if (!reason.empty()) unusable(path, reason);
}

StateDict load_checkpoint(const fs::path& path) {
  check_checkpoint_header(path);
  try {
    const io::File file = io::File::open(path.string());
    return read_state(file);
  } catch (const Error& e) {
    unusable(path, std::string("it is corrupt (") + e.what() + ")");
  }
}

LoadedCheckpoint load_latest_checkpoint(const fs::path& dir) {
  LoadedCheckpoint out;
  for (const auto& [step, path] : checkpoint_files(dir)) {
    try {
      out.state = load_checkpoint(path);
    } catch (const Error& e) {
      out.problems.emplace_back(e.what());
      out.skipped.push_back(path);
      continue;
    }
    out.path = path;
    out.step = step;
    break;
  }
  return out;
}

LatestCheckpoint latest_checkpoint(const fs::path& dir) {
  LatestCheckpoint latest;
  for (const auto& [step, path] : checkpoint_files(dir)) {
    try {
      check_checkpoint_header(path);
    } catch (const Error& e) {
      latest.problems.emplace_back(e.what());
      continue;
    }
    latest.path = path;
    latest.step = step;
    break;
  }
  return latest;
}

void check_compatible(const StateDict& expected, const StateDict& loaded) {
  std::set<std::string> names;
  for (const auto& [name, t] : expected.tensors) names.insert(name);
  for (const auto& [name, t] : loaded.tensors) names.insert(name);
  constexpr const char* kFix =
      "; the checkpoint was written for another model or configuration: resume with the same "
      "configuration, or start the run in a new directory";
  auto describe = [](const Tensor& t) {
    return shape_str(t.shape()) + " " + dtype_name(t.dtype());
  };
  for (const std::string& name : names) {
    const auto e = expected.tensors.find(name);
    const auto l = loaded.tensors.find(name);
    if (l == loaded.tensors.end())
      PIT_THROW("checkpoint incompatible: tensor '", name, "' (", describe(e->second),
                ") is expected but missing from the checkpoint", kFix);
    if (e == expected.tensors.end())
      PIT_THROW("checkpoint incompatible: the checkpoint has tensor '", name, "' (",
                describe(l->second), "), which is not expected", kFix);
    if (e->second.shape() != l->second.shape())
      PIT_THROW("checkpoint incompatible: tensor '", name, "' has shape ",
                shape_str(l->second.shape()), " in the checkpoint but ",
                shape_str(e->second.shape()), " is expected", kFix);
    if (e->second.dtype() != l->second.dtype())
      PIT_THROW("checkpoint incompatible: tensor '", name, "' has dtype ",
                dtype_name(l->second.dtype()), " in the checkpoint but ",
                dtype_name(e->second.dtype()), " is expected", kFix);
  }
}

}  // namespace pit::train
