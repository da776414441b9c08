// CPU detection against brute-force lists (tests/ops/pit/detect_cases.h).
#include "tests/ops/pit/detect_cases.h"

using namespace pit;

namespace {
const Device kCpu = Device::cpu();
}

TEST(PitDetectCpu, KLists) { test::run_klist_cases(kCpu, {1, 3, 16, 32, 64, 128}, {DType::f32, DType::bf16, DType::f16, DType::f64}); }
TEST(PitDetectCpu, Blocks) { test::run_block_cases(kCpu, {1, 16, 32, 64}, {DType::f32, DType::bf16}); }
TEST(PitDetectCpu, Masks) { test::run_mask_cases(kCpu, 32, 16); }
TEST(PitDetectCpu, Rows) { test::run_row_cases(kCpu, {DType::f32, DType::f16}); }
TEST(PitDetectCpu, Routing) { test::run_routing_cases(kCpu); }
TEST(PitDetectCpu, Counts) { test::run_count_cases(kCpu); }
TEST(PitDetectCpu, ToDense) { test::run_to_dense_cases(kCpu); }

TEST(PitDetectCpu, ErrorsNameTheProblem) {
  const Tensor a = zeros({4, 4});
  EXPECT_THROW(sparse::detect_k_lists(a, 0), Error);
  EXPECT_THROW(sparse::detect_rows(a, -1), Error);
  EXPECT_THROW(sparse::detect_k_lists(a, 16, {.mask = zeros({3, 4})}), Error);
  EXPECT_THROW(sparse::rows_from_routing(from_vector(std::vector<int64_t>{0, 5}, {2, 1}), 4), Error);
  try {
    sparse::detect_k_lists(zeros({4, 4}, DType::i32), 16);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("values = false"), std::string::npos) << e.what();
  }
}

TEST(PitDetectCpu, CountsCalls) {
  const uint64_t before = sparse::detection_calls();
  sparse::detect_k_lists(ones({4, 4}), 2);
  sparse::detect_rows(ones({4, 4}));
  EXPECT_EQ(sparse::detection_calls(), before + 2);
}

TEST(PitDetectCpu, Str) {
  const sparse::KListIndex idx = sparse::detect_k_lists(ones({40, 8}), 16, {.transposed = true});
  EXPECT_EQ(idx.str(), "KListIndex(40x8, micro-tile 16x1, 3 row blocks, values f32, transposed, cpu)");
  EXPECT_EQ(idx.view().capacity, 24);
  EXPECT_EQ(sparse::read_count(idx), 24);
}
