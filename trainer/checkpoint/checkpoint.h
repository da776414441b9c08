#pragma once
// Checkpoints: a StateDict in an HDF5 file <dir>/step-<8 digits>.h5, written atomically.
//
// File layout (docs/DATA.md): root attributes format = "pit-checkpoint", version, step, and
// complete = 1, written last; the entries as trainer/checkpoint/state_hdf5.h lays them out.
//
// save_checkpoint writes <name>.tmp, fsyncs it, renames it to <name> and fsyncs the directory,
// so a crash at any point leaves either the previous set of checkpoints or the new one, never
// a half file under a checkpoint's name. load_checkpoint checks the format, version and
// completeness, and never modifies or deletes the file it reads.
//
//   train::save_checkpoint("runs/moe/ckpt", step, state, /*keep=*/3);
//   auto latest = train::latest_checkpoint("runs/moe/ckpt");
//   if (latest.found()) { StateDict s = train::load_checkpoint(latest.path); ... }
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "trainer/state.h"

namespace pit::train {

inline constexpr const char* kCheckpointFormat = "pit-checkpoint";
inline constexpr int64_t kCheckpointVersion = 1;

// "step-00001234.h5"; steps past 8 digits get more.
std::string checkpoint_name(int64_t step);
// The step of a checkpoint file name, or -1 when `name` is not one (e.g. a ".tmp" leftover).
int64_t checkpoint_step(const std::string& name);

// Writes `state` as the checkpoint of `step` in `dir` (created if missing) and returns its path;
// an existing checkpoint of the same step is replaced. Then deletes the oldest valid checkpoints
// in `dir` beyond the newest `keep` (keep <= 0 keeps all); files that are not valid checkpoints
// are never deleted. On an error the partial .tmp file is removed and the previous checkpoints
// are left as they were.
std::filesystem::path save_checkpoint(const std::filesystem::path& dir, int64_t step,
                                      const StateDict& state, int keep);

// The StateDict of a checkpoint, tensors on the CPU. A missing, truncated, corrupt, incomplete
// or foreign file is an error naming it and saying what to do; the file is left untouched.
StateDict load_checkpoint(const std::filesystem::path& path);

// Throws (see load_checkpoint) unless `path` has a valid, complete checkpoint header. Cheap: it
// reads the root attributes only.
void check_checkpoint_header(const std::filesystem::path& path);

struct LatestCheckpoint {
  std::filesystem::path path;         // empty when there is none
  int64_t step = -1;
  std::vector<std::string> problems;  // newer checkpoint files skipped as unusable, with why
  bool found() const { return !path.empty(); }
};

// The complete checkpoint of the highest step in `dir` (none when `dir` is missing). .tmp
// leftovers are ignored; unusable newer files are skipped and listed in `problems`.
LatestCheckpoint latest_checkpoint(const std::filesystem::path& dir);

struct LoadedCheckpoint {
  std::filesystem::path path;                 // empty when none loads
  int64_t step = -1;
  StateDict state;                            // its contents (load_checkpoint)
  std::vector<std::string> problems;          // newer checkpoint files skipped as unusable, with why
  std::vector<std::filesystem::path> skipped; // those files
  bool found() const { return !path.empty(); }
};

// The newest checkpoint in `dir` that loads whole (--resume without a PATH): like
// latest_checkpoint, but a file whose header is sound and whose contents are not (a tensor
// HDF5 cannot read back) is skipped as well, and listed.
LoadedCheckpoint load_latest_checkpoint(const std::filesystem::path& dir);

// The valid checkpoints in `dir` of steps after `step`, lowest step first.
std::vector<std::filesystem::path> checkpoints_after(const std::filesystem::path& dir, int64_t step);

// Throws naming the first tensor (in name order) whose presence, shape or dtype differs between
// the state a model expects and the one loaded from a checkpoint.
void check_compatible(const StateDict& expected, const StateDict& loaded);

// Fault injection for tests: called during every save with the stage reached ("entries": the
// .tmp file holds every entry but not the complete marker; "closed": the .tmp file is complete
// and closed, not yet renamed; "renamed": the checkpoint has its final name, the older ones are
// not yet pruned). A hook that throws aborts the save there. Pass {} to remove it.
using CheckpointSaveHook = std::function<void(const std::string& stage)>;
void set_checkpoint_save_hook(CheckpointSaveHook hook);

}  // namespace pit::train
