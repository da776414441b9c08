// Which GPUs a build's CMAKE_CUDA_ARCHITECTURES covers (core/cuda_arch.h), and the message for one
// it does not.
#include "core/cuda_arch.h"

#include <gtest/gtest.h>

namespace pit {
namespace {

// Architecture-specific code (90a) runs on its own capability only; machine code (-real) on its
// major version from its minor on; family code (100f) likewise.
TEST(CudaArch, SpecificFamilyAndRealEntries) {
  EXPECT_TRUE(cuda_archs_cover("90a", 9, 0));  // the default: H100/H200
  EXPECT_FALSE(cuda_archs_cover("90a", 8, 0));
  EXPECT_FALSE(cuda_archs_cover("90a", 10, 0));  // sm_90a code runs on nothing but sm_90
  EXPECT_FALSE(cuda_archs_cover("90a", 8, 9));
  EXPECT_TRUE(cuda_archs_cover("80-real", 8, 0));
  EXPECT_TRUE(cuda_archs_cover("80-real", 8, 6));  // an A10 runs sm_80 machine code
  EXPECT_TRUE(cuda_archs_cover("80-real", 8, 9));
  EXPECT_FALSE(cuda_archs_cover("80-real", 9, 0));  // another major version needs PTX
  EXPECT_FALSE(cuda_archs_cover("86-real", 8, 0));
  EXPECT_TRUE(cuda_archs_cover("90a-real", 9, 0));
  EXPECT_TRUE(cuda_archs_cover("100f", 10, 3));
  EXPECT_FALSE(cuda_archs_cover("100f", 12, 0));
}

TEST(CudaArch, PlainAndVirtualEntriesCoverLaterCapabilitiesThroughPtx) {
  EXPECT_TRUE(cuda_archs_cover("80", 8, 0));
  EXPECT_TRUE(cuda_archs_cover("80", 9, 0));
  EXPECT_FALSE(cuda_archs_cover("80", 7, 5));
  EXPECT_TRUE(cuda_archs_cover("90-virtual", 10, 0));
  EXPECT_FALSE(cuda_archs_cover("90-virtual", 8, 9));
}

TEST(CudaArch, ListsCoverWhatAnyEntryCovers) {
  EXPECT_TRUE(cuda_archs_cover("80-real,90a", 9, 0));
  EXPECT_TRUE(cuda_archs_cover("80-real;90a", 8, 0));
  EXPECT_FALSE(cuda_archs_cover("86-real,90a", 8, 0));
  EXPECT_TRUE(cuda_archs_cover(",90a,", 9, 0));
}

TEST(CudaArch, ChoicesLeftToTheBuildCoverEverything) {
  for (const char* archs : {"native", "all", "all-major", "", "90a,native"}) {
    EXPECT_TRUE(cuda_archs_cover(archs, 8, 6)) << archs;
  }
  EXPECT_FALSE(cuda_archs_cover("sm_90", 9, 0));  // not a CMake architecture: it covers nothing
}

TEST(CudaArch, TheMessageNamesTheGpuTheBuildAndTheWayOut) {
  const std::string m = cuda_arch_mismatch("NVIDIA A100-SXM4-80GB", 8, 0, "90a");
  for (const char* part : {"NVIDIA A100-SXM4-80GB", "compute capability 8.0", "CMAKE_CUDA_ARCHITECTURES=90a",
                           "-DCMAKE_CUDA_ARCHITECTURES=80", "Hopper", "run.device: cpu"}) {
    EXPECT_NE(m.find(part), std::string::npos) << part << " in: " << m;
  }
}

}  // namespace
}  // namespace pit
