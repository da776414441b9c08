// Sharded parameters (trainer/train/shards.h, Module::shard_parameter) and the gradient averaging
// of expert shards (GradientAverager's divide_by), on whatever world() is: ctest runs it as one
// process and under `mpirun -np 2`. Rank r holds rows [2r, 2r + 2) of a whole e = [2 N, 3] whose
// element (i, j) is 10 i + j, so every rank knows the whole and checks its own share.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/comm.h"
#include "ops/operators.h"
#include "tests/core/expect_error.h"
#include "trainer/state.h"
#include "trainer/train/data_parallel.h"
#include "trainer/train/shards.h"

namespace pit::train {
namespace {

// rows [first, first + n) of the whole: (i, j) = 10 i + j.
Tensor rows_of_whole(int64_t first, int64_t n) {
  std::vector<float> v;
  for (int64_t i = first; i < first + n; ++i)
    for (int64_t j = 0; j < 3; ++j) v.push_back(static_cast<float>(10 * i + j));
  return from_vector(v, {n, 3});
}

// A replicated parameter "w" and this rank's rows of a sharded one, "block/e".
class Shard : public nn::Module {
 public:
  explicit Shard(Communicator& comm) {
    e_ = register_parameter("e", rows_of_whole(2 * comm.rank(), 2));
    shard_parameter("e", comm);
  }
  const char* type_name() const override { return "Shard"; }
  void shard_missing(Communicator& comm) { shard_parameter("missing", comm); }
  Variable e_;
};

class Model : public nn::Module {
 public:
  explicit Model(Communicator& comm) {
    w_ = register_parameter("w", full({2}, 1.0));
    block = register_module("block", std::make_shared<Shard>(comm));
  }
  const char* type_name() const override { return "Model"; }
  Variable w_;
  std::shared_ptr<Shard> block;
};

TEST(Shards, TheModelListsThemAndSplitsItsParameters) {
  Communicator& comm = world();
  Model m(comm);
  const auto shards = m.sharded_parameters();
  ASSERT_EQ(shards.size(), 1u);
  EXPECT_EQ(shards[0].first, "block/e");
  EXPECT_EQ(shards[0].second, &comm);
  const ParameterSplit split = split_parameters(m);
  ASSERT_EQ(split.replicated.size(), 1u);
  ASSERT_EQ(split.sharded.size(), 1u);
  EXPECT_EQ(split.shard_comm, &comm);
  EXPECT_EQ(split.sharded[0].shape(), (Shape{2, 3}));
  pit::test::expect_error_contains([&] { m.block->shard_missing(comm); }, "has no parameter 'missing' to shard");
}

TEST(Shards, CheckpointStateHoldsTheWholeAndGivesBackEachRanksRows) {
  Communicator& comm = world();
  Model m(comm);
  StateDict s;
  s.tensors["model/block/e"] = rows_of_whole(2 * comm.rank(), 2);
  s.tensors["optim/block/e/exp_avg"] = rows_of_whole(2 * comm.rank(), 2);
  s.tensors["optim/block/ex/exp_avg"] = full({1}, 5.0);  // another parameter's slot: left alone
  s.tensors["model/w"] = full({2}, 1.0);
  StateDict pieces = s;
  gather_shards(s, m.sharded_parameters());
  const Tensor whole = rows_of_whole(0, 2 * comm.size());
  for (const char* key : {"model/block/e", "optim/block/e/exp_avg"})
    EXPECT_EQ(s.tensors.at(key).to_vector<float>(), whole.to_vector<float>()) << key;
  // In pieces of at most 8 bytes a rank (the 24 of a shard in three), as shards past MPI's 2 GiB
  // go: the same whole.
  gather_shards(pieces, m.sharded_parameters(), 8);
  for (const char* key : {"model/block/e", "optim/block/e/exp_avg"}) {
    EXPECT_EQ(pieces.tensors.at(key).shape(), whole.shape()) << key;
    EXPECT_EQ(pieces.tensors.at(key).to_vector<float>(), whole.to_vector<float>()) << key;
  }
  EXPECT_EQ(s.tensors.at("optim/block/ex/exp_avg").numel(), 1);
  EXPECT_EQ(s.tensors.at("model/w").numel(), 2);
  take_shards(s, m.sharded_parameters(), "ckpt.h5");
  for (const char* key : {"model/block/e", "optim/block/e/exp_avg"})
    EXPECT_EQ(s.tensors.at(key).to_vector<float>(), rows_of_whole(2 * comm.rank(), 2).to_vector<float>()) << key;
  if (comm.size() > 1) {
    StateDict odd;
    odd.tensors["model/block/e"] = rows_of_whole(0, 2 * comm.size() + 1);
    pit::test::expect_error_contains([&] { take_shards(odd, m.sharded_parameters(), "ckpt.h5"); },
                                     "do not split over the " + std::to_string(comm.size()) + " ranks");
  }
  comm.barrier();
}

// The norm spans every rank's shard: sqrt(|w grad|^2 + sum over ranks of |e grad|^2).
TEST(Shards, TheGradientNormSpansEveryRanksShard) {
  Communicator& comm = world();
  Model m(comm);
  m.w_.set_grad(full({2}, 3.0));                   // 18
  m.block->e_.set_grad(full({2, 3}, comm.rank() + 1.0));  // 6 (r + 1)^2 on rank r
  double squares = 18.0;
  for (int r = 0; r < comm.size(); ++r) squares += 6.0 * (r + 1) * (r + 1);
  EXPECT_NEAR(global_grad_norm(split_parameters(m)).item<double>(), std::sqrt(squares), 1e-4);
}

// Expert shards: summed over the communicator and divided by divide_by (here 4), with no other
// rank on one process (then only the division, without a collective); a parameter that got no
// gradient gets zeros either way.
TEST(Shards, GradientAveragerDividesTheSumByDivideBy) {
  Communicator& comm = world();
  Variable p(zeros({3}), true), unused(zeros({2}), true);
  GradientAverager averager({p, unused}, comm, int64_t{1} << 22, /*divide_by=*/4);
  // d(sum((r + 1) * p))/dp = r + 1 on rank r.
  Variable y = p * static_cast<double>(comm.rank() + 1);
  y.backward(full({3}, 1.0));
  averager.finish();
  const double sum = comm.size() * (comm.size() + 1) / 2.0;
  for (const float g : p.grad().to_vector<float>()) EXPECT_NEAR(g, sum / 4.0, 1e-6);
  ASSERT_TRUE(unused.grad().defined());
  for (const float g : unused.grad().to_vector<float>()) EXPECT_EQ(g, 0.f);
}

}  // namespace
}  // namespace pit::train
