#include "trainer/data/import_util.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace pit::data {

std::filesystem::path find_package_root(const std::filesystem::path& dir, const std::string& marker,
                                        const std::string& package) {
  std::error_code ec;
  PIT_CHECK(std::filesystem::is_directory(dir, ec), dir.string(),
            " is not a directory; expected the extracted ", package,
            " package (scripts/get_data.sh downloads and extracts it)");
  if (std::filesystem::exists(dir / marker, ec)) return dir;
  if (std::filesystem::exists(dir / "package" / marker, ec)) return dir / "package";
  PIT_THROW(dir.string(), " does not hold the ", package, " package: neither ",
            (dir / marker).string(), " nor ", (dir / "package" / marker).string(),
            " exists. Pass the folder the package's tarball was extracted to "
            "(scripts/get_data.sh downloads and extracts it)");
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PIT_CHECK(in, "cannot open ", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  PIT_CHECK(!in.bad(), "cannot read ", path.string());
  return buffer.str();
}

}  // namespace pit::data
