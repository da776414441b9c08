// pit-bench: benchmarks on the GPU machine.
//   pit-bench dense [--markdown FILE]
//   pit-bench pit [--markdown FILE] [--tune FILE]
//   pit-bench engine [--markdown FILE]
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace pit::bench {
int run_dense_ops(const std::string& markdown_path);
int run_pit_gemm(const std::string& markdown_path, const std::string& tune_path);
int run_engine(const std::string& markdown_path);
}

int main(int argc, char** argv) {
  const std::string suite = argc > 1 ? argv[1] : "";
  std::string markdown, tune;
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--markdown") == 0) markdown = argv[i + 1];
    if (std::strcmp(argv[i], "--tune") == 0) tune = argv[i + 1];
  }
  try {
    if (suite == "dense") return pit::bench::run_dense_ops(markdown);
    if (suite == "pit") return pit::bench::run_pit_gemm(markdown, tune);
    if (suite == "engine") return pit::bench::run_engine(markdown);
    std::fprintf(stderr, "usage: pit-bench dense|pit|engine [--markdown FILE] [--tune FILE]\n"
                         "  dense   dense ops at transformer shapes (bf16) vs cuBLAS and copy bandwidth\n"
                         "  pit     PIT GEMMs vs cuBLAS, cuSPARSE CSR and Blocked-ELL; detection vs one read\n"
                         "          (--tune FILE: also the other micro-tiles, written as the planner's cost table)\n"
                         "  engine  the PIT GEMMs' dense-tile engines (mma.sync configs, wgmma core) vs cuBLAS\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pit-bench: %s\n", e.what());
    return 1;
  }
}
