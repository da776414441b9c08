#pragma once
// Rows of a benchmark table: printed as they come and written as Markdown for docs/.
#include <cstdio>
#include <string>
#include <vector>

namespace pit::bench {

struct Row {
  std::string op;       // e.g. "matmul fwd"
  std::string shape;    // e.g. "16384x1024 @ 1024x4096"
  double ms = 0;        // median
  double work = 0;      // FLOPs (compute-bound rows) or bytes moved (memory-bound rows)
  bool flops = true;    // whether `work` counts FLOPs
  double ceiling = 0;   // the roofline: peak FLOP/s or bytes/s measured in this run
  std::string peer;     // what the ratio compares against, e.g. "cuBLAS direct"
  double peer_ms = 0;   // 0 when there is no peer in this run
};

class Report {
 public:
  void add(const Row& r) {
    rows_.push_back(r);
    print(r);
  }
  const std::vector<Row>& rows() const { return rows_; }

  static void print_header() {
    std::printf("%-28s %-32s %10s %14s %9s %s\n", "op", "shape", "ms", "rate", "roofline",
                "vs peer");
  }

  static void print(const Row& r) {
    const double rate = r.work / (r.ms * 1e-3);
    char rate_s[32], peer_s[64] = "";
    if (r.flops)
      std::snprintf(rate_s, sizeof rate_s, "%.1f TFLOP/s", rate / 1e12);
    else
      std::snprintf(rate_s, sizeof rate_s, "%.0f GB/s", rate / 1e9);
    if (r.peer_ms > 0)
      std::snprintf(peer_s, sizeof peer_s, "%.3f ms %s (%.2fx)", r.peer_ms, r.peer.c_str(),
                    r.peer_ms / r.ms);
    std::printf("%-28s %-32s %10.4f %14s %8.0f%% %s\n", r.op.c_str(), r.shape.c_str(), r.ms, rate_s,
                100.0 * rate / r.ceiling, peer_s);
    std::fflush(stdout);
  }

  bool write_markdown(const std::string& path, const std::string& title) const {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    std::fprintf(f, "### %s\n\n| op | shape | ms | rate | roofline | peer |\n|---|---|---:|---:|---:|---|\n",
                 title.c_str());
    for (const Row& r : rows_) {
      const double rate = r.work / (r.ms * 1e-3);
      std::fprintf(f, "| %s | %s | %.4f | %.1f %s | %.0f%% | ", r.op.c_str(), r.shape.c_str(), r.ms,
                   r.flops ? rate / 1e12 : rate / 1e9, r.flops ? "TFLOP/s" : "GB/s",
                   100.0 * rate / r.ceiling);
      if (r.peer_ms > 0)
        std::fprintf(f, "%s %.4f ms (pit %.2fx) |\n", r.peer.c_str(), r.peer_ms, r.peer_ms / r.ms);
      else
        std::fprintf(f, "- |\n");
    }
    std::fclose(f);
    return true;
  }

 private:
  std::vector<Row> rows_;
};

}  // namespace pit::bench
