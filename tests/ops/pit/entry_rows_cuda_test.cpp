// sparse::gather_entry_rows on CUDA: the cases of tests/ops/pit/entry_rows_cases.h (f32, bf16,
// f16, u8; the 16-, 4-, 2- and 1-byte copies), and a row out of range reported at the next
// synchronisation. Skips without a GPU (fails with PIT_REQUIRE_GPU=1).
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/pit/entry_rows_cases.h"

using namespace pit;

TEST(EntryRowsCuda, EveryListedEntryHoldsItsRow) {
  PIT_REQUIRE_CUDA();
  test::run_entry_rows_cases(Device::cuda(), {DType::f32, DType::bf16, DType::f16, DType::u8});
}

TEST(EntryRowsCuda, ARowOutOfRangeThrowsAtTheNextSynchronisation) {
  PIT_REQUIRE_CUDA();
  const Tensor src = zeros({4, 8}, DType::bf16, Device::cuda());
  const Tensor out = sparse::gather_entry_rows(src, test::index_past_the_rows(Device::cuda()));
  test::expect_error_contains([&] { (void)out.to(Device::cpu()); }, "row 4 is out of range for gather_entry_rows");
  // Reported once: the next read is clean.
  EXPECT_NO_THROW((void)out.to(Device::cpu()));
}
