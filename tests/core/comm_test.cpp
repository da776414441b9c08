// The Communicator (core/comm.h) on whatever world() is: registered once as a plain test (one
// process: the single backend) and once under `mpirun -np 2 --oversubscribe` (the MPI backend),
// so every collective is checked with one and with two ranks. Expected values are computed from
// the rank numbers, so each rank checks its own result. The CommNccl tests run the same checks on
// CUDA tensors through NCCL over the world's ranks (one GPU each): on one GPU as one rank; with
// several GPUs, `mpirun -np 2 test_core_comm --gtest_filter='CommNccl*'` (docs/DISTRIBUTED.md).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/comm.h"
#include "core/cuda/backend.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"

namespace pit {
namespace {

// [rows, 3] with element (i, j) = base + 10 * i + j, on `dev`.
Tensor rows_of(int64_t rows, double base, DType dtype = DType::f32, Device dev = Device::cpu()) {
  std::vector<float> v(static_cast<size_t>(rows * 3));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < 3; ++j) v[static_cast<size_t>(i * 3 + j)] = static_cast<float>(base + 10.0 * i + j);
  return from_vector(v, {rows, 3}).to(dev, dtype);
}

std::vector<double> values(const Tensor& t) { return t.to(Device::cpu(), DType::f64).contiguous().to_vector<double>(); }

TEST(Comm, WorldMatchesTheLaunch) {
  Communicator& c = world();
  const LaunchInfo l = launch_info();
  EXPECT_EQ(c.size(), l.size);
  EXPECT_EQ(c.rank(), l.rank);
  EXPECT_EQ(c.local_rank(), l.local_rank);
  if (l.size == 1) {
    EXPECT_STREQ(c.backend(), "single");
  } else {  // nccl when built with it and there is a GPU (PIT_COMM=mpi forces mpi)
    const char* choice = std::getenv("PIT_COMM");
    const bool nccl = nccl_built() && cuda::device_count() > 0 && (choice == nullptr || std::string(choice) != "mpi");
    EXPECT_STREQ(c.backend(), nccl ? "nccl" : "mpi");
  }
  EXPECT_NE(c.describe().find("rank " + std::to_string(c.rank()) + " of " + std::to_string(c.size())), std::string::npos);
  c.barrier();
}

void all_reduce_every_op_and_dtype(Communicator& c, Device dev) {
  const int n = c.size(), r = c.rank();
  for (const DType dt : {DType::f32, DType::f64, DType::bf16, DType::i64}) {
    for (const ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::mean}) {
      if (op == ReduceOp::mean && dt == DType::i64) continue;
      Tensor t = rows_of(4, r + 1, dt, dev);  // rank r holds base r + 1
      c.all_reduce(t, op);
      EXPECT_EQ(t.device(), dev);
      const std::vector<double> got = values(t);
      for (size_t e = 0; e < got.size(); ++e) {
        const double rest = static_cast<double>(e / 3) * 10.0 + static_cast<double>(e % 3);
        double want = 0;
        switch (op) {
          case ReduceOp::sum: want = n * rest + n * (n + 1) / 2.0; break;
          case ReduceOp::max: want = rest + n; break;
          case ReduceOp::min: want = rest + 1; break;
          case ReduceOp::mean: want = rest + (n + 1) / 2.0; break;
        }
        const double tol = dt == DType::bf16 ? 0.01 * std::abs(want) + 0.01 : 1e-6;
        EXPECT_NEAR(got[e], want, tol) << dtype_name(dt) << " " << reduce_op_name(op) << " element " << e;
      }
      EXPECT_EQ(t.dtype(), dt);
    }
  }
}

// Several reductions in flight at once, finished in order (what the gradient buckets do).
void started_all_reduces_finish_at_the_wait(Communicator& c, Device dev) {
  const int n = c.size(), r = c.rank();
  std::vector<Tensor> ts = {rows_of(3, r + 1, DType::f32, dev), rows_of(5, 2 * r, DType::bf16, dev),
                            rows_of(2, r, DType::f64, dev)};
  std::vector<std::unique_ptr<Communicator::Request>> pending;
  for (Tensor& t : ts) pending.push_back(c.all_reduce_start(t, ReduceOp::mean));
  for (int twice = 0; twice < 2; ++twice)  // a second wait() changes nothing
    for (auto& p : pending) p->wait();
  const double bases[] = {(n + 1) / 2.0, static_cast<double>(n - 1), (n - 1) / 2.0};  // the mean of each base
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::vector<double> got = values(ts[i]);
    for (size_t e = 0; e < got.size(); ++e) {
      const double want = static_cast<double>(e / 3) * 10.0 + static_cast<double>(e % 3) + bases[i];
      EXPECT_NEAR(got[e], want, 0.01 * std::abs(want) + 1e-9) << "tensor " << i << " element " << e;
    }
  }
}

void broadcast_gather_scatter(Communicator& c, Device dev) {
  const int n = c.size(), r = c.rank();
  Tensor b = rows_of(2, 100 * r, DType::f32, dev);
  c.broadcast(b, n - 1);
  EXPECT_EQ(values(b), values(rows_of(2, 100 * (n - 1))));

  const Tensor g = c.all_gather(rows_of(2, 100 * r, DType::f32, dev));
  EXPECT_EQ(g.device(), dev);
  ASSERT_EQ(g.shape(), (Shape{2 * n, 3}));
  for (int p = 0; p < n; ++p) EXPECT_EQ(values(g.slice(0, 2 * p, 2 * p + 2)), values(rows_of(2, 100 * p))) << p;

  // Every rank holds rows_of(2n, r); the sum over ranks of rows [2 r, 2 r + 2) stays here.
  const Tensor s = c.reduce_scatter(rows_of(2 * n, r, DType::f32, dev), ReduceOp::sum);
  EXPECT_EQ(s.device(), dev);
  ASSERT_EQ(s.shape(), (Shape{2, 3}));
  const std::vector<double> got = values(s), one = values(rows_of(2 * n, 0).slice(0, 2 * r, 2 * r + 2));
  for (size_t e = 0; e < got.size(); ++e) EXPECT_DOUBLE_EQ(got[e], n * one[e] + n * (n - 1) / 2.0) << e;
}

void all_to_all_with_uneven_counts(Communicator& c, Device dev) {
  const int n = c.size(), r = c.rank();
  // Rank r sends p + r + 1 rows to rank p, except that rank 0 sends none to the last rank (an
  // empty run).
  std::vector<int64_t> send(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) send[static_cast<size_t>(p)] = (r == 0 && p == n - 1 && n > 1) ? 0 : p + r + 1;
  std::vector<float> v;
  for (int p = 0; p < n; ++p)
    for (int64_t i = 0; i < send[static_cast<size_t>(p)]; ++i)
      for (int j = 0; j < 3; ++j) v.push_back(static_cast<float>(1000 * r + 100 * p + 10 * i + j));  // from r, to p
  const Tensor t = from_vector(v, {static_cast<int64_t>(v.size() / 3), 3}).to(dev);
  std::vector<int64_t> recv;
  const Tensor got = c.all_to_all(t, send, &recv);
  EXPECT_EQ(got.device(), dev);
  ASSERT_EQ(static_cast<int>(recv.size()), n);
  std::vector<double> want;
  for (int q = 0; q < n; ++q) {
    const int64_t rows = (q == 0 && r == n - 1 && n > 1) ? 0 : r + q + 1;  // what q sends here
    EXPECT_EQ(recv[static_cast<size_t>(q)], rows) << "from " << q;
    for (int64_t i = 0; i < rows; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(1000.0 * q + 100.0 * r + 10.0 * i + j);
  }
  EXPECT_EQ(values(got), want);
  // With the incoming counts known (no count exchange): the same rows; and back where they came from.
  EXPECT_EQ(values(c.all_to_all_known(t, send, recv)), want);
  EXPECT_EQ(values(c.all_to_all_known(got, recv, send)), values(t));
  // Bad counts are refused on the calling rank, before any exchange.
  std::vector<int64_t> negative = recv;
  negative[0] = -1;
  test::expect_error_contains([&] { (void)c.all_to_all_known(t, send, negative); }, "negative receive count");
  if (n == 1)  // one rank receives what it sends itself: other counts are a mistake
    test::expect_error_contains([&] { (void)c.all_to_all_known(t, send, {send[0] + 2}); }, "expects");
  // Rows of another shape on one rank: every rank is told, none receives bytes cut to its rows.
  if (n > 1) {
    const Tensor rows = zeros({n, r == 0 ? 4 : 3}, DType::f32, dev);
    const std::vector<int64_t> one_each(static_cast<size_t>(n), 1);
    test::expect_error_contains([&] { (void)c.all_to_all(rows, one_each); }, "have another shape or dtype");
  }
}

// Split by parity of the rank, ranked in reverse: each part reduces only its own ranks' values.
void split_forms_communicators_of_the_same_color(Communicator& c, Device dev) {
  const int n = c.size(), r = c.rank();
  const std::unique_ptr<Communicator> part = c.split(r % 2, -r);
  std::vector<int> members;
  for (int q = 0; q < n; ++q)
    if (q % 2 == r % 2) members.push_back(q);
  ASSERT_EQ(part->size(), static_cast<int>(members.size()));
  EXPECT_EQ(part->local_rank(), c.local_rank());
  // Ranked by key -r: the highest world rank of the part is its rank 0.
  int above = 0;
  for (const int q : members) above += q > r ? 1 : 0;
  EXPECT_EQ(part->rank(), above);
  Tensor t = rows_of(1, r, DType::f32, dev);
  part->all_reduce(t, ReduceOp::sum);
  double sum = 0;
  for (const int q : members) sum += q;
  const std::vector<double> got = values(t);
  EXPECT_DOUBLE_EQ(got[0], sum);
  EXPECT_DOUBLE_EQ(got[2], sum + static_cast<double>(members.size()) * 2.0);
  test::expect_error_contains([&] { c.split(-1, 0); }, "the color must be >= 0");
  c.barrier();
}

// Each backend counts the time of its collectives (the single one spends none).
void times_are_counted(Communicator& c, Device dev) {
  c.take_times();
  Tensor t = rows_of(4, 1, DType::f32, dev);
  c.all_reduce(t);
  const std::vector<int64_t> one(static_cast<size_t>(c.size()), 1);
  (void)c.all_to_all(rows_of(c.size(), 0, DType::f32, dev), one);
  const std::map<std::string, Communicator::Time> times = c.take_times();
  if (std::string(c.backend()) == "single") {
    EXPECT_TRUE(times.empty());
  } else {
    for (const char* what : {"all_reduce", "all_to_all"}) {
      ASSERT_TRUE(times.count(what)) << what;
      // One call each through MPI (NCCL adds its host-side shape check to all_reduce's).
      if (std::string(c.backend()) == "mpi") {
        EXPECT_EQ(times.at(what).calls, 1) << what;
      }
      EXPECT_GE(times.at(what).calls, 1) << what;
      EXPECT_GT(times.at(what).seconds, 0.0) << what;
    }
  }
  EXPECT_TRUE(c.take_times().empty()) << "take_times resets";
}

TEST(Comm, AllReduceEveryOpAndDtype) { all_reduce_every_op_and_dtype(world(), Device::cpu()); }
TEST(Comm, TimesAreCounted) { times_are_counted(world(), Device::cpu()); }
TEST(Comm, StartedAllReducesFinishAtTheWait) { started_all_reduces_finish_at_the_wait(world(), Device::cpu()); }
TEST(Comm, BroadcastGatherScatter) { broadcast_gather_scatter(world(), Device::cpu()); }
TEST(Comm, AllToAllWithUnevenCounts) { all_to_all_with_uneven_counts(world(), Device::cpu()); }
TEST(Comm, SplitFormsCommunicatorsOfTheSameColor) { split_forms_communicators_of_the_same_color(world(), Device::cpu()); }

// NCCL over the world's ranks, each on the GPU of its local rank.
class CommNccl : public ::testing::Test {
 protected:
  void SetUp() override {
    PIT_REQUIRE_CUDA();
    // NCCL is built only with CUDA and MPI (core/CMakeLists.txt): a CUDA build without MPI has none.
    PIT_REQUIRE_BUILT(nccl_built(), "pit was built without the NCCL backend (it needs CUDA and MPI)");
    nccl_ = make_nccl_communicator(world().split(0, world().rank()));
    dev_ = Device::cuda(world().local_rank() % cuda::device_count());
  }
  std::unique_ptr<Communicator> nccl_;
  Device dev_ = Device::cpu();
};

TEST_F(CommNccl, AllReduceEveryOpAndDtype) { all_reduce_every_op_and_dtype(*nccl_, dev_); }
TEST_F(CommNccl, TimesAreCounted) { times_are_counted(*nccl_, dev_); }
TEST_F(CommNccl, StartedAllReducesFinishAtTheWait) { started_all_reduces_finish_at_the_wait(*nccl_, dev_); }
TEST_F(CommNccl, BroadcastGatherScatter) { broadcast_gather_scatter(*nccl_, dev_); }
TEST_F(CommNccl, AllToAllWithUnevenCounts) { all_to_all_with_uneven_counts(*nccl_, dev_); }
TEST_F(CommNccl, SplitFormsCommunicatorsOfTheSameColor) { split_forms_communicators_of_the_same_color(*nccl_, dev_); }
TEST_F(CommNccl, CpuTensorsGoThroughTheHostCommunicator) {
  EXPECT_STREQ(nccl_->backend(), "nccl");
  all_reduce_every_op_and_dtype(*nccl_, Device::cpu());
  started_all_reduces_finish_at_the_wait(*nccl_, Device::cpu());  // the host's non-blocking one
  all_to_all_with_uneven_counts(*nccl_, Device::cpu());
}

// Under ctest's mpirun (PIT_COMM=mpi) the MPI backend stages CUDA tensors through the host; as
// one process (the single backend) this checks only that the collectives leave them as they are.
TEST(Comm, CudaTensorsThroughTheWorld) {
  PIT_REQUIRE_CUDA();
  const Device dev = Device::cuda(world().local_rank() % cuda::device_count());
  all_reduce_every_op_and_dtype(world(), dev);
  started_all_reduces_finish_at_the_wait(world(), dev);
  broadcast_gather_scatter(world(), dev);
  all_to_all_with_uneven_counts(world(), dev);
}

// Rank 0 waits at a barrier that rank 1 reaches only after the timeout: rank 0 throws naming
// itself and the collective; rank 1's late barrier completes the one rank 0 abandoned, and the
// ranks go on in step. (Two ranks or more: registered only under mpirun.)
TEST(CommRanksTest, ATimeoutNamesTheRankAndTheCollective) {
  Communicator& c = world();
  ASSERT_GT(c.size(), 1) << "registered to run under mpirun";
  c.barrier();
  const double before = c.timeout();
  c.set_timeout(0.5);
  if (c.rank() == 0) {
    test::expect_error_contains([&] { c.barrier(); },
                                "rank 0 of " + std::to_string(c.size()) + ": MPI barrier did not complete within 0.5 s");
  } else {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    c.barrier();
  }
  c.set_timeout(before);
  c.barrier();
  Tensor t = rows_of(1, c.rank());
  c.all_reduce(t, ReduceOp::sum);  // still in step
  EXPECT_EQ(values(t)[0], c.size() * (c.size() - 1) / 2.0);
  test::expect_error_contains([&] { c.set_timeout(-1); }, "give a number >= 0");
}

TEST(Comm, ErrorsNameTheProblem) {
  Communicator& c = world();
  const int n = c.size();
  test::expect_error_contains([&] { c.all_to_all(rows_of(3, 0), std::vector<int64_t>(static_cast<size_t>(n + 1), 0)); },
                              "give one per rank");
  test::expect_error_contains([&] { c.all_to_all(rows_of(n + 1, 0), std::vector<int64_t>(static_cast<size_t>(n), 1)); },
                              "the send counts sum to");
  if (n > 1) {
    test::expect_error_contains([&] { c.reduce_scatter(rows_of(2 * n + 1, 0)); }, "do not split evenly");
    // Ranks passing different shapes: every rank learns it, with its own shape named.
    Tensor t = rows_of(c.rank() + 1, 0);
    test::expect_error_contains([&] { c.all_reduce(t); }, "rank " + std::to_string(c.rank()) + " of " + std::to_string(n));
    // Past the eighth dim too: [1 x 8, 2, 3] against [1 x 8, 3, 2], the same numel.
    Shape nine(8, 1);
    nine.push_back(c.rank() == 0 ? 2 : 3);
    nine.push_back(c.rank() == 0 ? 3 : 2);
    Tensor u = zeros(nine);
    test::expect_error_contains([&] { c.all_reduce(u); }, "another rank passed a different shape");
  }
  c.barrier();
}

}  // namespace
}  // namespace pit
