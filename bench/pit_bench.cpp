// pit-bench: benchmarks on the GPU machine. `pit-bench dense [--markdown FILE]`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace pit::bench {
int run_dense_ops(const std::string& markdown_path);
}

int main(int argc, char** argv) {
  const std::string suite = argc > 1 ? argv[1] : "";
  std::string markdown;
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--markdown") == 0) markdown = argv[i + 1];
  try {
    if (suite == "dense") return pit::bench::run_dense_ops(markdown);
    std::fprintf(stderr, "usage: pit-bench dense [--markdown FILE]\n"
                         "  dense   dense ops at transformer shapes (bf16) vs cuBLAS and copy bandwidth\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pit-bench: %s\n", e.what());
    return 1;
  }
}
