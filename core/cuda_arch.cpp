#include "core/cuda_arch.h"

#include <charconv>

#include "core/error.h"

namespace pit {

bool cuda_archs_cover(std::string_view archs, int major, int minor) {
  const int have = major * 10 + minor;
  bool any = false;
  while (!archs.empty()) {
    const size_t end = archs.find_first_of(",;");
    std::string_view entry = archs.substr(0, end);
    archs = end == std::string_view::npos ? std::string_view() : archs.substr(end + 1);
    if (entry.empty()) continue;
    if (entry == "native" || entry == "all" || entry == "all-major") return true;
    any = true;
    int number = 0;
    const auto [rest, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), number);
    if (ec != std::errc()) continue;  // not an architecture number: it covers nothing
    const std::string_view suffix(rest, static_cast<size_t>(entry.data() + entry.size() - rest));
    // Machine code for X.y runs on X.z with z >= y; PTX (plain or -virtual entries) is compiled
    // for any later GPU by the driver. Architecture-specific code (90a) runs on its own
    // capability alone, family code (100f) on its family.
    const bool same_major = have / 10 == number / 10;
    bool covers = have >= number;                                     // 80, 80-virtual
    if (suffix.starts_with('a')) covers = have == number;             // 90a, 90a-real
    else if (suffix.starts_with('f') || suffix == "-real") covers = covers && same_major;  // 100f, 80-real
    if (covers) return true;
  }
  return !any;
}

std::string cuda_arch_mismatch(std::string_view gpu, int major, int minor, std::string_view archs) {
  return detail::str_cat(
      gpu, " (compute capability ", major, ".", minor, ") cannot run this build of pit: its GPU code is for ",
      "CMAKE_CUDA_ARCHITECTURES=", archs,
      ". Build pit for this GPU (-DCMAKE_CUDA_ARCHITECTURES=", major, minor, "; the CUDA backend is written and "
      "tuned for Hopper, H100/H200 with sm_90a), use device cpu (run.device: cpu), or run on an H100/H200");
}

}  // namespace pit
