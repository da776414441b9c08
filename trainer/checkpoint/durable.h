#pragma once
// What an atomic file replacement needs from POSIX: fsync of a file and of a directory, each
// throwing a pit::Error that names the path and the system's reason.
#include <filesystem>

namespace pit::train {

void fsync_file(const std::filesystem::path& path);
void fsync_directory(const std::filesystem::path& dir);

}  // namespace pit::train
