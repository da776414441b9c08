// sparse_linear on CUDA against dense autograd (tests/ops/pit/sparse_linear_cases.h); skips
// without a GPU.
#include "ops/pit/gemm.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/pit/sparse_linear_cases.h"

using namespace pit;

TEST(SparseLinearCuda, AgainstDenseAutograd) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  test::run_sparse_linear_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16});
}

TEST(SparseLinearCuda, NoTokens) {
  PIT_REQUIRE_CUDA();
  PIT_REQUIRE_BUILT(sparse::cuda_gemm_built(), "the CUDA PIT GEMMs are not built");
  for (const DType dt : {DType::f32, DType::bf16}) test::run_sparse_linear_empty_batch(Device::cuda(), dt);
}

// A layout made on one device and values on the other are refused by name, not handed to a
// kernel as foreign pointers (to_dense's check, under compact_to_dense; the GEMMs check their
// index themselves, sparse_linear its layout).
TEST(SparseLinearCuda, LayoutAndValuesOnDifferentDevicesAreRefused) {
  PIT_REQUIRE_CUDA();
  for (const sparse::MicroTile tile : {sparse::MicroTile{32, 1}, sparse::MicroTile{16, 16}}) {
    const Tensor mask = test::compact_case_mask({tile, false}, 64, 48, 0.5, 3, Device::cpu());
    const sparse::CompactLayout on_cpu = sparse::compact_layout(mask, tile, false);
    const Tensor on_gpu = zeros(on_cpu.values_shape(), DType::f32, Device::cuda());
    test::expect_error_contains([&] { sparse::compact_to_dense(on_cpu, on_gpu); },
                                "the index is on cpu but its values on cuda:0");
    const sparse::CompactLayout on_cuda = sparse::compact_layout(mask.to(Device::cuda()), tile, false);
    test::expect_error_contains([&] { sparse::compact_to_dense(on_cuda, zeros(on_cuda.values_shape())); },
                                "the index is on cuda:0 but its values on cpu");
  }
}
