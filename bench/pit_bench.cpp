// pit-bench: benchmarks on the GPU machine (usage below, and docs/BENCHMARKS.md).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace pit::bench {
int run_dense_ops(const std::string& markdown_path);
int run_pit_gemm(const std::string& markdown_path, const std::string& tune_path);
int run_engine(const std::string& markdown_path);
int run_roofline();
int run_moe(const std::string& markdown_path);
int run_sparse(const std::string& markdown_path);
}

namespace {

const char* const kUsage =
    "usage: pit-bench dense|pit|engine|roofline|moe|sparse [--markdown FILE] [--tune FILE]\n"
    "  dense   dense ops at transformer shapes (bf16) vs cuBLAS and copy bandwidth\n"
    "  pit     PIT GEMMs vs cuBLAS, cuSPARSE CSR and Blocked-ELL; detection vs one read; pit_matmul\n"
    "          with the planner end to end (--tune FILE: also the other micro-tiles, written as the\n"
    "          planner's cost table)\n"
    "  engine  the PIT GEMMs' dense-tile engines (mma.sync configs, wgmma) vs cuBLAS\n"
    "  roofline  measured DRAM, L2 and tensor-core rates, and the bound they put on the PIT GEMMs at\n"
    "          4096^3 per micro-tile and density\n"
    "  moe     the MoE experts (moe_ffn: dispatch, expert GEMMs, combine) at T=16384, d=1024,\n"
    "          ffn=4096, E=64, top-1/top-2, uniform/skewed, vs a dense FFN of equal FLOPs\n"
    "          (PIT_BENCH_MOE_PARTS=1: also each part of it alone, against cuBLAS)\n"
    "  sparse  the pruned FFN block (8192 tokens, 4096 -> 16384 -> 4096, 90% sparse, per micro-tile):\n"
    "          a training step and its weights + grads + AdamW state vs the dense block; one layer\n"
    "          on the PIT kernels vs its dense path by density\n"
    "environment (pit):\n"
    "  PIT_BENCH_FILTER=\"4096^3 128x1 90%\"  only the rows whose \"problem tile sparsity\" contains it\n"
    "                                       (dense: whose op contains it, e.g. \"layernorm\")\n"
    "  PIT_BENCH_ENGINE=mma|wgmma|persistent  force the tensor-core engine of the M-gather (mma,\n"
    "                                       wgmma) and of the 128-row K-condense (all three)\n"
    "  PIT_BENCH_MOE_TRACE=1|2              moe: three untimed passes of top-1 (top-2) uniform, nothing\n"
    "                                       else (for a profiler)\n"
    "  PIT_BENCH_SPARSE_TABLE=block|activation  sparse: that table alone\n"
    "  PIT_BENCH_SPARSE_TRACE=64x64|dense|activation  sparse: three untimed steps of that block (or\n"
    "                                       the activation case), nothing else (for a profiler)\n"
    "roofline prints its table only (no --markdown).\n";

}  // namespace

int main(int argc, char** argv) {
  const std::string suite = argc > 1 ? argv[1] : "";
  std::string markdown, tune;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--markdown" || arg == "--tune") && i + 1 < argc) {
      (arg == "--markdown" ? markdown : tune) = argv[++i];
    } else {
      std::fprintf(stderr, "pit-bench: %s '%s'\n%s",
                   arg == "--markdown" || arg == "--tune" ? "missing the file after" : "unknown argument",
                   arg.c_str(), kUsage);
      return 2;
    }
  }
  if (!markdown.empty() && suite == "roofline") {
    std::fprintf(stderr, "pit-bench: roofline writes no markdown (it prints its table only)\n%s", kUsage);
    return 2;
  }
  if (!tune.empty() && suite != "pit") {
    std::fprintf(stderr, "pit-bench: --tune only applies to 'pit'\n%s", kUsage);
    return 2;
  }
  try {
    if (suite == "dense") return pit::bench::run_dense_ops(markdown);
    if (suite == "pit") return pit::bench::run_pit_gemm(markdown, tune);
    if (suite == "engine") return pit::bench::run_engine(markdown);
    if (suite == "roofline") return pit::bench::run_roofline();
    if (suite == "moe") return pit::bench::run_moe(markdown);
    if (suite == "sparse") return pit::bench::run_sparse(markdown);
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pit-bench: %s\n", e.what());
    return 1;
  }
}
