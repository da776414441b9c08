// sparse::gather_entry_rows on the CPU: the cases of tests/ops/pit/entry_rows_cases.h (f32, f64,
// bf16, u8), and the errors.
#include "tests/core/expect_error.h"
#include "tests/ops/pit/entry_rows_cases.h"

using namespace pit;

TEST(EntryRowsCpu, EveryListedEntryHoldsItsRow) {
  test::run_entry_rows_cases(Device::cpu(), {DType::f32, DType::f64, DType::bf16, DType::u8});
}

TEST(EntryRowsCpu, ErrorsNameTheProblem) {
  using test::expect_error_contains;
  const Tensor src = zeros({4, 3});
  expect_error_contains([&] { sparse::gather_entry_rows(src, test::index_past_the_rows(Device::cpu())); },
                        "entry 2 names row 4 of a source with 4 rows");
  const sparse::RowSetIndex idx = sparse::rows_from_routing(from_vector(std::vector<int32_t>{0, 1, 1, 0}, {4, 1}), 2);
  EXPECT_NO_THROW(sparse::gather_entry_rows(src, idx));
  expect_error_contains([&] { sparse::gather_entry_rows(zeros({12}), idx); }, "src must be a matrix");
  sparse::RowSetIndex bare = idx;
  bare.offsets = Tensor();
  expect_error_contains([&] { sparse::gather_entry_rows(src, bare); }, "row-set index");
}
