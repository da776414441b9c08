// CUDA detection against brute-force lists (tests/ops/pit/detect_cases.h); skips without a GPU.
#include "tests/gpu.h"
#include "tests/ops/pit/detect_cases.h"

using namespace pit;

namespace {
const Device kGpu = Device::cuda();
}

TEST(PitDetectCuda, KLists) {
  PIT_REQUIRE_CUDA();
  test::run_klist_cases(kGpu, {16, 32, 64, 128}, {DType::f32, DType::bf16, DType::f16});
}
TEST(PitDetectCuda, Blocks) {
  PIT_REQUIRE_CUDA();
  test::run_block_cases(kGpu, {16, 32, 64}, {DType::f32, DType::bf16, DType::f16});
}
TEST(PitDetectCuda, Masks) {
  PIT_REQUIRE_CUDA();
  test::run_mask_cases(kGpu, 32, 16);
  test::run_mask_cases(kGpu, 128, 64);
}
TEST(PitDetectCuda, Rows) {
  PIT_REQUIRE_CUDA();
  test::run_row_cases(kGpu, {DType::f32, DType::bf16});
}
TEST(PitDetectCuda, Routing) {
  PIT_REQUIRE_CUDA();
  test::run_routing_cases(kGpu);
}
TEST(PitDetectCuda, Counts) {
  PIT_REQUIRE_CUDA();
  test::run_count_cases(kGpu);
}
TEST(PitDetectCuda, SampledCounts) {
  PIT_REQUIRE_CUDA();
  test::run_sampled_count_cases(kGpu);
}
TEST(PitDetectCuda, ToDense) {
  PIT_REQUIRE_CUDA();
  test::run_to_dense_cases(kGpu);
}
