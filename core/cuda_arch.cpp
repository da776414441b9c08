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
    const bool exact = suffix == "-real" || (!suffix.empty() && suffix[0] != '-');  // 90a, 100f, 90-real
    if (exact ? have == number : have >= number) return true;
  }
  return !any;
}

std::string cuda_arch_mismatch(std::string_view gpu, int major, int minor, std::string_view archs) {
  return detail::str_cat(
      gpu, " (compute capability ", major, ".", minor, ") cannot run this build of pit: its GPU code is for ",
      "CMAKE_CUDA_ARCHITECTURES=", archs,
      ", and the PIT kernels need a Hopper GPU (H100/H200, sm_90a: wgmma and TMA). Use device cpu "
      "(run.device: cpu), or run on an H100/H200");
}

}  // namespace pit
