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
