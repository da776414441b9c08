#pragma once
// Whether a build's GPU code runs on a given GPU: CMAKE_CUDA_ARCHITECTURES against the device's
// compute capability, so that a GPU the build has no code for fails at its first use with an
// error that says so (CUDA's own, "no kernel image is available", comes from whichever kernel
// launches first).
#include <string>
#include <string_view>

namespace pit {

// archs: CMAKE_CUDA_ARCHITECTURES with ',' or ';' between entries ("90a", "80;90a-real", ...).
// An entry with a feature suffix (90a), or -real, carries machine code for exactly that
// capability; a plain one (80) or -virtual also PTX, which the driver compiles for any later
// capability. "native", "all" and "all-major" (and an empty list) cover every GPU: the build
// chose for itself.
bool cuda_archs_cover(std::string_view archs, int major, int minor);

// The message for a GPU the build does not cover: what it is, what the build has, the way out.
std::string cuda_arch_mismatch(std::string_view gpu, int major, int minor, std::string_view archs);

}  // namespace pit
