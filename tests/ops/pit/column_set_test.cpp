// Column sets and pit_matmul's K-list backward on the CPU (tests/ops/pit/column_set_cases.h).
#include "tests/core/expect_error.h"
#include "tests/ops/pit/column_set_cases.h"

using namespace pit;

TEST(ColumnSetCpu, AgainstTheHost) {
  for (const DType dt : {DType::f32, DType::bf16}) test::run_column_set_cases(Device::cpu(), dt);
}
TEST(ColumnSetCpu, PitMatmulGradients) { test::run_column_set_matmul_cases(Device::cpu(), DType::f32); }
TEST(ColumnSetCpu, Errors) {
  const Tensor a = test::sparse_tensor(8, 6, 4, 1, 0.5, 1);
  const sparse::KListIndex idx = sparse::detect_k_lists(a, 4, {.values = true});
  const sparse::ColumnSet cs = sparse::column_set(idx);
  EXPECT_THROW(sparse::rows_to_columns(zeros({5, 3}), cs), Error);                  // 5 rows for 6 columns
  EXPECT_THROW(sparse::rows_to_columns(zeros({6, 3}), cs, zeros({6, 2})), Error);   // mask not like rows
  sparse::KListIndex bare = idx;
  bare.values = Tensor();
  EXPECT_THROW(sparse::set_columns_t(bare, cs), Error);                              // no values
  EXPECT_THROW(sparse::rows_to_columns(zeros({6, 3}), sparse::ColumnSet{}), Error);  // no set
  // A set made from another index: a column this one lists is missing from it.
  const Tensor one_col = from_vector(std::vector<float>{1, 0, 0, 0, 0, 0}, {1, 6}).expand({8, 6}).contiguous();
  const sparse::ColumnSet other = sparse::column_set(sparse::detect_k_lists(one_col, 4, {.values = true}));
  test::expect_error_contains([&] { (void)sparse::set_columns_t(idx, other); }, "is not in the column set");
}
