// core/thread_pool.h: parallel_for covers every index once, nests serially, propagates
// exceptions, and copes with several calling threads.
#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "tests/core/expect_error.h"

using namespace pit;
using pit::test::expect_error_contains;

namespace {

// Restores the thread count when the test ends.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(num_threads()) {}
  ~ThreadCountGuard() { set_num_threads(saved_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int saved_;
};

// Runs parallel_for over [begin, end) and returns "" when every index was visited exactly once
// by well-formed chunks, else a description of what went wrong.
std::string check_coverage(int64_t begin, int64_t end, int64_t grain) {
  const int64_t n = std::max<int64_t>(end - begin, 0);
  std::unique_ptr<std::atomic<int>[]> hits(new std::atomic<int>[static_cast<size_t>(n)]);
  for (int64_t i = 0; i < n; ++i) hits[i].store(0);
  std::atomic<int> bad_chunks{0};
  parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    if (lo < begin || hi > end || lo >= hi) {
      bad_chunks.fetch_add(1);
      return;
    }
    for (int64_t i = lo; i < hi; ++i) hits[i - begin].fetch_add(1);
  });
  std::string problems;
  if (bad_chunks.load() != 0) problems += std::to_string(bad_chunks.load()) + " malformed chunks; ";
  for (int64_t i = 0; i < n; ++i)
    if (hits[i].load() != 1) {
      problems += "index " + std::to_string(begin + i) + " visited " +
                  std::to_string(hits[i].load()) + " times; ";
      break;
    }
  return problems;
}

const std::vector<std::tuple<int64_t, int64_t, int64_t>> kRanges = {
    {0, 0, 1},    {5, 5, 1},      {5, 3, 1},        {0, 1, 1},      {0, 2, 1},
    {0, 7, 3},    {0, 3, 100},    {3, 1000, 1},     {0, 1000, 1000}, {0, 1001, 1000},
    {-50, 50, 7}, {0, 100000, 1}, {0, 100000, 0},   {0, 12345, 100}, {10, 20, 100},
    {0, 64, 16},  {1, 65, 16},    {0, 100000, 64},  {-3, -1, 1},     {0, 17, -5}};

}  // namespace

TEST(ThreadPool, NumThreadsIsPositive) { EXPECT_GE(num_threads(), 1); }

// By default one thread per CPU this process may run on: under mpirun's binding, srun or taskset
// that is its affinity mask, not the machine's CPUs; and with several ranks on the node at most
// its share of them. ctest runs this once more under `taskset -c 0` and once with
// OMPI_COMM_WORLD_LOCAL_SIZE set as mpirun sets it.
TEST(ThreadPool, DefaultIsTheCpusOfTheAffinityMaskAndTheRanksShare) {
  if (std::getenv("PIT_NUM_THREADS")) GTEST_SKIP() << "PIT_NUM_THREADS is set";
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  int want = CPU_COUNT(&set);
  if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"))
    want = std::max(1, std::min(want, static_cast<int>(std::thread::hardware_concurrency()) / std::atoi(local)));
  EXPECT_EQ(num_threads(), want) << "this test must run first in its process (ctest does)";
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    for (const auto& [begin, end, grain] : kRanges) {
      EXPECT_EQ(check_coverage(begin, end, grain), "")
          << "threads=" << threads << " range [" << begin << ", " << end << ") grain " << grain;
    }
  }
}

TEST(ThreadPool, EmptyRangeNeverCallsTheFunction) {
  int calls = 0;
  parallel_for(0, 0, 1, [&](int64_t, int64_t) { ++calls; });
  parallel_for(10, 2, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, ChunksRespectTheGrain) {
  ThreadCountGuard guard;
  set_num_threads(4);
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  parallel_for(0, 1000, 100, [&](int64_t lo, int64_t hi) {
    std::lock_guard lock(mutex);
    chunks.emplace_back(lo, hi);
  });
  int64_t total = 0;
  for (const auto& [lo, hi] : chunks) {
    total += hi - lo;
    if (hi != 1000) {
      EXPECT_GE(hi - lo, 100) << "only the last chunk may be shorter than the grain";
    }
  }
  EXPECT_EQ(total, 1000);
}

TEST(ThreadPool, SingleThreadRunsOneChunkOnTheCaller) {
  ThreadCountGuard guard;
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  int calls = 0;
  std::thread::id where;
  parallel_for(3, 100000, 1, [&](int64_t lo, int64_t hi) {
    ++calls;
    where = std::this_thread::get_id();
    EXPECT_EQ(lo, 3);
    EXPECT_EQ(hi, 100000);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(where, std::this_thread::get_id());
}

TEST(ThreadPool, SetNumThreadsRejectsZero) {
  ThreadCountGuard guard;
  expect_error_contains([] { set_num_threads(0); }, "at least 1");
  expect_error_contains([] { set_num_threads(-2); }, "at least 1");
}

TEST(ThreadPool, NestedCallsRunSeriallyAndCorrectly) {
  ThreadCountGuard guard;
  set_num_threads(4);
  constexpr int64_t kOuter = 64, kInner = 100;
  std::vector<std::atomic<int>> hits(kOuter * kInner);
  std::atomic<int> inner_calls{0}, wrong_thread{0}, wrong_range{0};
  parallel_for(0, kOuter, 1, [&](int64_t lo, int64_t hi) {
    const std::thread::id outer_thread = std::this_thread::get_id();
    for (int64_t i = lo; i < hi; ++i) {
      parallel_for(0, kInner, 1, [&](int64_t a, int64_t b) {
        inner_calls.fetch_add(1);
        if (std::this_thread::get_id() != outer_thread) wrong_thread.fetch_add(1);
        if (a != 0 || b != kInner) wrong_range.fetch_add(1);
        for (int64_t j = a; j < b; ++j) hits[i * kInner + j].fetch_add(1);
      });
    }
  });
  EXPECT_EQ(inner_calls.load(), kOuter) << "each nested call runs as one serial chunk";
  EXPECT_EQ(wrong_thread.load(), 0) << "nested calls run on the calling thread";
  EXPECT_EQ(wrong_range.load(), 0);
  for (size_t k = 0; k < hits.size(); ++k) ASSERT_EQ(hits[k].load(), 1) << "element " << k;
}

TEST(ThreadPool, ExceptionPropagatesAndPoolStaysUsable) {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 4}) {
    set_num_threads(threads);
    std::atomic<int> running{0};
    expect_error_contains(
        [&] {
          parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) {
            running.fetch_add(1);
            struct Leave {
              std::atomic<int>& r;
              ~Leave() { r.fetch_sub(1); }
            } leave{running};
            if (lo <= 500 && 500 < hi) PIT_THROW("chunk with 500 failed");
          });
        },
        "chunk with 500 failed");
    EXPECT_EQ(running.load(), 0) << "every chunk has finished when the exception arrives";
    EXPECT_EQ(check_coverage(0, 10000, 10), "") << "the pool works after an exception";
  }
}

TEST(ThreadPool, ExceptionTypeIsPreserved) {
  ThreadCountGuard guard;
  set_num_threads(3);
  EXPECT_THROW(parallel_for(0, 100, 1, [](int64_t, int64_t) { throw std::out_of_range("x"); }),
               std::out_of_range);
  // Every chunk throws: exactly one exception reaches the caller.
  int caught = 0;
  try {
    parallel_for(0, 1000, 1, [](int64_t lo, int64_t) { throw std::runtime_error(std::to_string(lo)); });
  } catch (const std::runtime_error&) {
    ++caught;
  }
  EXPECT_EQ(caught, 1);
  EXPECT_EQ(check_coverage(0, 5000, 1), "");
}

TEST(ThreadPool, ConcurrentCallersBothComplete) {
  ThreadCountGuard guard;
  set_num_threads(4);
  std::atomic<int> failures{0};
  auto caller = [&](int64_t offset) {
    for (int round = 0; round < 50; ++round) {
      const int64_t begin = offset + round, end = begin + 5000 + 37 * round;
      if (!check_coverage(begin, end, 10).empty()) failures.fetch_add(1);
    }
  };
  std::thread t1(caller, 0), t2(caller, 1000000);
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ThreadPool, ConcurrentCallersWithNestingAndErrors) {
  ThreadCountGuard guard;
  set_num_threads(3);
  std::atomic<int64_t> sum{0};
  std::atomic<int> caught{0};
  auto caller = [&](bool throws) {
    for (int round = 0; round < 20; ++round) {
      try {
        parallel_for(0, 100, 5, [&](int64_t lo, int64_t hi) {
          parallel_for(lo, hi, 1, [&](int64_t a, int64_t b) {
            for (int64_t i = a; i < b; ++i) sum.fetch_add(i);
          });
          if (throws && lo == 0) throw std::runtime_error("x");
        });
      } catch (const std::runtime_error&) {
        caught.fetch_add(1);
      }
    }
  };
  std::thread t1(caller, false), t2(caller, true);
  t1.join();
  t2.join();
  EXPECT_EQ(caught.load(), 20);
  // Chunks after a failure may be skipped, so only the non-throwing caller's share is exact.
  EXPECT_GE(sum.load(), 20 * 4950);
}
