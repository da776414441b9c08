#pragma once
// PIT_REQUIRE_CUDA(): the first line of a test that needs a GPU. Without one the test is
// skipped with the reason; with PIT_REQUIRE_GPU=1 in the environment (scripts/gpu-check.sh sets
// it on the GPU machine) a missing GPU fails the test instead, so GPU runs cannot pass by
// skipping.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "core/device.h"

namespace pit::test {
inline bool gpu_required() {
  const char* v = std::getenv("PIT_REQUIRE_GPU");
  return v && std::strcmp(v, "0") != 0 && *v != '\0';
}
}  // namespace pit::test

#define PIT_REQUIRE_CUDA()                                                                   \
  do {                                                                                       \
    if (!::pit::cuda_available()) {                                                          \
      if (::pit::test::gpu_required()) FAIL() << "PIT_REQUIRE_GPU=1 but no CUDA device is available"; \
      GTEST_SKIP() << (PIT_WITH_CUDA ? "no CUDA device on this machine"                      \
                                     : "pit was built without CUDA");                        \
    }                                                                                        \
  } while (0)

// PIT_REQUIRE_BUILT(cond, "what is missing"): the second line of a GPU test that also needs an
// optional part of the build (the CUDA PIT GEMMs, NCCL). Skipped with the reason where cond is
// false, but failed under PIT_REQUIRE_GPU=1 like a missing GPU: a GPU run must not pass by
// skipping a whole family of tests because a build option went off.
#define PIT_REQUIRE_BUILT(cond, what)                                                        \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      if (::pit::test::gpu_required()) FAIL() << "PIT_REQUIRE_GPU=1 but " << (what);          \
      GTEST_SKIP() << (what);                                                                \
    }                                                                                        \
  } while (0)
