// CUDA detection against brute-force lists (tests/ops/pit/detect_cases.h); skips without a GPU.
#if PIT_WITH_CUDA
#include <cuda_runtime.h>
#endif
#include <cstdio>

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
TEST(PitDetectCuda, ToDense) {
  PIT_REQUIRE_CUDA();
  test::run_to_dense_cases(kGpu);
}

// Not a benchmark (pit-bench times detection): a printout of detection time against one clone
// (one read + one write) of the same tensor, to catch a kernel that is far off bandwidth.
TEST(PitDetectCuda, TimingPrintout) {
  PIT_REQUIRE_CUDA();
  const Tensor a = test::sparse_tensor(4096, 4096, 32, 1, 0.1, 99, DType::bf16, kGpu);
  // Device time per call from CUDA events around kIters back-to-back calls (host overheads of
  // allocation and launch overlap with the previous call's kernels).
  const auto time_us = [&](auto&& fn) {
    for (int i = 0; i < 3; ++i) fn();
    constexpr int kIters = 50;
#if PIT_WITH_CUDA
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0, static_cast<cudaStream_t>(current_stream(kGpu).handle));
    for (int i = 0; i < kIters; ++i) fn();
    cudaEventRecord(e1, static_cast<cudaStream_t>(current_stream(kGpu).handle));
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 1000.0 * ms / kIters;
#else
    return 0.0 * kIters;
#endif
  };
  const double copy = time_us([&] { (void)a.clone(); });
  const double klist = time_us([&] { (void)sparse::detect_k_lists(a, 32); });
  const double klist_t = time_us([&] { (void)sparse::detect_k_lists(a, 32, {.values = true, .transposed = true}); });
  const double blocks = time_us([&] { (void)sparse::detect_blocks(a, 32); });
  const double rows = time_us([&] { (void)sparse::detect_rows(a); });
  const double count = time_us([&] { (void)sparse::count_micro_tiles(a, {{16, 1}, {32, 1}, {64, 1}, {128, 1}}); });
  std::printf("4096x4096 bf16, 10%% of 32x1 tiles: clone (read+write) %.1f us; k-lists r=32 %.1f us, "
              "+transposed %.1f us; blocks 32 %.1f us; rows %.1f us; count 4 covers %.1f us\n",
              copy, klist, klist_t, blocks, rows, count);
}
