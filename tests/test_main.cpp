// main() of every pit test binary: runs the tests (GPU tests skip themselves without a GPU, or
// fail under PIT_REQUIRE_GPU=1: tests/gpu.h).
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
