#pragma once
// What an atomic file replacement needs from POSIX: fsync of a file and of a directory, each
// throwing a pit::Error that names the path and the system's reason; and a check that a folder
// can be written at all.
#include <filesystem>

namespace pit::train {

void fsync_file(const std::filesystem::path& path);
void fsync_directory(const std::filesystem::path& dir);
// Creates `dir` if missing and writes and removes a small file in it, so that a folder the run
// cannot write is found before training, not at its first save; the error names `key` (the
// config key that chose the folder, e.g. "checkpoint.dir") and the system's reason.
void ensure_writable_dir(const std::filesystem::path& dir, const char* key);

}  // namespace pit::train
