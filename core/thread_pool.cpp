#include "core/thread_pool.h"

#ifdef __linux__
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace pit {
namespace {

thread_local bool t_inside_pool = false;

int hardware_cpus() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// The CPUs this process may run on: its affinity mask, which is what a launcher's binding
// (mpirun binds each rank to its cores, srun --cpus-per-task), taskset or a container's cpuset
// leave it; the hardware's count where the mask cannot be read.
int usable_cpus() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
  return hardware_cpus();
}

// Processes of this job on this node, as OpenMPI's or MPICH's launcher says (1 without one).
int local_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* env = std::getenv(name)) {
      const int n = std::atoi(env);
      if (n >= 1) return n;
    }
  return 1;
}

// PIT_NUM_THREADS, else one thread per CPU of the affinity mask, but no more than the node's
// share of its ranks (mpirun binds to sockets beyond two ranks, or not at all with --bind-to
// none: every rank would see the same CPUs).
int default_threads() {
  if (const char* env = std::getenv("PIT_NUM_THREADS")) {
    const int n = std::atoi(env);
    PIT_CHECK(n >= 1, "PIT_NUM_THREADS='", env, "' is not a positive integer");
    return n;
  }
  return std::max(1, std::min(usable_cpus(), hardware_cpus() / local_ranks()));
}

// One job at a time: parallel_for holds `run_mutex_` for the whole job, so concurrent callers
// from different threads queue up rather than interleave.
class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
    return *pool;
  }

  int threads() const { return threads_.load(); }
  void set_threads(int n) { threads_.store(n); }

  void run(int64_t begin, int64_t end, int64_t chunk, int workers_wanted,
           const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard run_lock(run_mutex_);
    ensure_workers(workers_wanted - 1);
    {
      std::lock_guard lock(mutex_);
      fn_ = &fn;
      end_ = end;
      chunk_ = chunk;
      next_.store(begin);
      error_ = nullptr;
      active_ = workers_wanted - 1;
      participants_ = workers_wanted - 1;
      ++generation_;
    }
    wake_.notify_all();
    work();  // the caller takes chunks too
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  Pool() : threads_(default_threads()) {}

  void ensure_workers(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      workers_.emplace_back([this, id = static_cast<int>(workers_.size())] { worker_loop(id); });
      workers_.back().detach();
    }
  }

  void worker_loop(int id) {
    t_inside_pool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (id >= participants_) continue;  // not needed for this job
      }
      work();
      std::lock_guard lock(mutex_);
      if (--active_ == 0) done_.notify_all();
    }
  }

  void work() {
    const bool was_inside = t_inside_pool;
    t_inside_pool = true;
    for (;;) {
      const int64_t lo = next_.fetch_add(chunk_);
      if (lo >= end_) break;
      const int64_t hi = std::min(end_, lo + chunk_);
      try {
        (*fn_)(lo, hi);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(end_);  // stop handing out chunks
      }
    }
    t_inside_pool = was_inside;
  }

  std::atomic<int> threads_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t end_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  int active_ = 0;        // participating workers still running the current job
  int participants_ = 0;  // workers with an id below this take part in the current job
  uint64_t generation_ = 0;
};

}  // namespace

int num_threads() { return Pool::instance().threads(); }

void set_num_threads(int n) {
  PIT_CHECK(n >= 1, "set_num_threads(", n, "): the thread count must be at least 1");
  Pool::instance().set_threads(n);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t n = end - begin;
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (threads <= 1 || t_inside_pool) {
    fn(begin, end);
    return;
  }
  // A few chunks per thread balance uneven work without much scheduling overhead.
  const int64_t chunk = std::max(grain, (n + 4 * threads - 1) / (4 * threads));
  Pool& pool = Pool::instance();
  pool.run(begin, end, chunk, threads, fn);
}

}  // namespace pit
