#include "trainer/checkpoint/durable.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "core/error.h"

namespace pit::train {
namespace {

void fsync_path(const std::filesystem::path& path, int flags, const char* what) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0)
    PIT_THROW("cannot open ", what, " ", path.string(), " to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) PIT_THROW("fsync of ", what, " ", path.string(), " failed: ", std::strerror(err));
}

}  // namespace

void fsync_file(const std::filesystem::path& path) { fsync_path(path, O_RDONLY, "file"); }

void fsync_directory(const std::filesystem::path& dir) {
  fsync_path(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY, "directory");
}

void ensure_writable_dir(const std::filesystem::path& dir, const char* key) {
  const std::string fix = std::string("; set ") + key + " to a folder this run can write";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  PIT_CHECK(!ec, key, ": cannot create the folder ", dir.string(), ": ", ec.message(), fix);
  PIT_CHECK(std::filesystem::is_directory(dir, ec), key, ": ", dir.string(), " is not a folder", fix);
  const std::filesystem::path probe = dir / (".pit-write-probe-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  PIT_CHECK(fd >= 0, key, ": cannot write in the folder ", dir.string(), ": ", std::strerror(errno), fix);
  ::close(fd);
  std::filesystem::remove(probe, ec);
}

}  // namespace pit::train
