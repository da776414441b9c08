// Communicator (core/comm.h): the launch environment, the single-process backend and world().
#include "core/comm.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <sstream>

#include "core/comm_backends.h"
#include "core/cuda/backend.h"
#include "core/error.h"

namespace pit {
namespace {

// The integer value of environment variable `name`, or -1 when it is not set.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  PIT_CHECK(*end == '\0' && n >= 0, "environment variable ", name, "=\"", v, "\" is not a rank or size");
  return static_cast<int>(n);
}

class SingleCommunicator final : public Communicator {
 public:
  const char* backend() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void all_reduce(Tensor& t, ReduceOp) override { PIT_CHECK(t.defined(), "all_reduce: undefined tensor"); }
  void broadcast(Tensor& t, int root) override {
    PIT_CHECK(t.defined(), "broadcast: undefined tensor");
    PIT_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a single-process run");
  }
  Tensor all_gather(const Tensor& t) override {
    comm_detail::check_rows(t, "all_gather");
    return t.clone();
  }
  Tensor reduce_scatter(const Tensor& t, ReduceOp) override {
    comm_detail::check_scatter(t, 1);
    return t.clone();
  }
  std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send, int) override { return send; }
  Tensor exchange_rows(const Tensor& t, const std::vector<int64_t>&, const std::vector<int64_t>&) override {
    return t.clone();  // all_to_all_known checked that the one rank receives what it sends
  }
  void barrier() override {}
  std::unique_ptr<Communicator> split(int color, int) override {
    PIT_CHECK(color >= 0, "split: the color must be >= 0, got ", color);
    return std::make_unique<SingleCommunicator>();
  }
};

}  // namespace

namespace comm_detail {

namespace {

// t's sizes from dim `first` on folded into one hash (FNV-1a, kept in 62 bits so that its
// negation fits an int64).
int64_t dims_hash(const Tensor& t, int64_t first) {
  uint64_t hash = 14695981039346656037ull;
  for (int64_t d = first; d < t.dim(); ++d) hash = (hash ^ static_cast<uint64_t>(t.size(d))) * 1099511628211ull;
  return static_cast<int64_t>(hash >> 2);
}

}  // namespace

std::vector<int64_t> shape_signature(const Tensor& t) {
  // The same length on every rank whatever the dims: the first 8 sizes as they are, and every
  // size folded into one hash, which tells shapes apart past the eighth dim.
  std::vector<int64_t> mine = {t.numel(), t.dim(), static_cast<int64_t>(t.dtype()), dims_hash(t, 0)};
  for (int64_t d = 0; d < t.dim() && d < 8; ++d) mine.push_back(t.size(d));
  mine.resize(4 + 8, -1);
  std::vector<int64_t> both(mine);
  for (const int64_t v : mine) both.push_back(-v);
  return both;
}

void check_same_signature(const std::vector<int64_t>& reduced, const Tensor& t, const char* what,
                          const std::string& where) {
  const size_t n = reduced.size() / 2;
  bool same = true;
  for (size_t i = 0; i < n; ++i) same &= reduced[i] == -reduced[n + i];
  PIT_CHECK(same, where, what, ": this rank passed ", shape_str(t.shape()), " ", dtype_name(t.dtype()),
            " but another rank passed a different shape or dtype; every rank must call the same collective "
            "with the same shape and dtype");
}

std::string rank_prefix(int rank, int size) {
  return "rank " + std::to_string(rank) + " of " + std::to_string(size) + ": ";
}

std::vector<int64_t> row_layout(const Tensor& t) {
  return {row_bytes_of(t), static_cast<int64_t>(t.dtype()), dims_hash(t, 1)};
}

int64_t row_bytes_of(const Tensor& t) {
  int64_t n = static_cast<int64_t>(dtype_size(t.dtype()));
  for (int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
  return n;
}

void check_rows(const Tensor& t, const char* op) {
  PIT_CHECK(t.defined() && t.dim() >= 1, op, ": the tensor must have a first dimension (rows), got ",
            shape_of(t));
}

void check_scatter(const Tensor& t, int size) {
  check_rows(t, "reduce_scatter");
  PIT_CHECK(t.size(0) % size == 0, "reduce_scatter: ", t.size(0), " rows do not split evenly over ", size, " ranks");
}

void check_send_rows(const Tensor& t, const std::vector<int64_t>& send_rows, int size) {
  check_rows(t, "all_to_all");
  PIT_CHECK(static_cast<int>(send_rows.size()) == size, "all_to_all: ", send_rows.size(),
            " send counts for ", size, " ranks; give one per rank");
  for (const int64_t n : send_rows) PIT_CHECK(n >= 0, "all_to_all: a negative send count (", n, ")");
  const int64_t total = std::accumulate(send_rows.begin(), send_rows.end(), int64_t{0});
  PIT_CHECK(total == t.size(0), "all_to_all: the send counts sum to ", total, " rows but the tensor has ", t.size(0));
}

#if !PIT_WITH_NCCL
std::unique_ptr<Communicator> make_nccl(std::unique_ptr<Communicator>) {
  PIT_THROW("pit was built without NCCL (it needs CUDA, NCCL and MPI: libnccl-dev libopenmpi-dev); CUDA tensors go "
            "through MPI, staged on the host");
}
#endif

#if !PIT_WITH_MPI
std::unique_ptr<Communicator> make_mpi(const LaunchInfo& launch) {
  PIT_THROW("this process is rank ", launch.rank, " of ", launch.size, " (launched by ", launch.launcher,
            ") but pit was built without MPI; install libopenmpi-dev openmpi-bin and rebuild (PIT_MPI=ON), or run "
            "one process");
}
#endif

}  // namespace comm_detail

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::mean: return "mean";
    case ReduceOp::max: return "max";
    default: return "min";
  }
}

LaunchInfo launch_info() {
  struct Vars {
    const char *rank, *size, *local, *name;
  };
  for (const Vars v : {Vars{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "openmpi"},
                       Vars{"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "pmi"},
                       Vars{"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "slurm"}}) {
    const int rank = env_int(v.rank), size = env_int(v.size);
    if (rank < 0 || size < 1) continue;
    PIT_CHECK(rank < size, v.rank, " = ", rank, " is not below ", v.size, " = ", size);
    int local = env_int(v.local);
    if (local < 0) local = env_int("SLURM_LOCALID");  // srun --mpi=pmi2 sets PMI_RANK but no MPI_LOCALRANKID
    return {rank, size, local < 0 ? 0 : local, v.name};
  }
  return {};
}

namespace {

class DoneRequest final : public Communicator::Request {
 public:
  void wait() override {}
};

}  // namespace

std::unique_ptr<Communicator::Request> Communicator::all_reduce_start(Tensor& t, ReduceOp op) {
  all_reduce(t, op);
  return std::make_unique<DoneRequest>();
}

Tensor Communicator::all_to_all(const Tensor& t, const std::vector<int64_t>& send_rows, std::vector<int64_t>* recv_rows) {
  comm_detail::check_send_rows(t, send_rows, size());
  // Each peer gets the rows' count and their layout (bytes, dtype, a hash of the dims after the
  // first): a rank whose rows differ would otherwise receive bytes cut to its own rows' size.
  constexpr int kPer = 4;
  const std::vector<int64_t> layout = comm_detail::row_layout(t);
  std::vector<int64_t> send;
  send.reserve(send_rows.size() * kPer);
  for (const int64_t n : send_rows) {
    send.push_back(n);
    send.insert(send.end(), layout.begin(), layout.end());
  }
  const std::vector<int64_t> got = exchange_counts(send, kPer);
  std::vector<int64_t> from(send_rows.size());
  for (size_t p = 0; p < from.size(); ++p) {
    from[p] = got[p * kPer];
    PIT_CHECK(std::equal(layout.begin(), layout.end(), got.begin() + static_cast<std::ptrdiff_t>(p * kPer + 1)),
              comm_detail::rank_prefix(rank(), size()), "all_to_all: this rank's rows are ", shape_str(t.shape()),
              " ", dtype_name(t.dtype()), " without their first dim, but rank ", p, "'s have another shape or dtype; "
              "every rank must exchange rows of the same shape and dtype");
  }
  if (recv_rows) *recv_rows = from;
  return exchange_rows(t, send_rows, from);
}

Tensor Communicator::all_to_all_known(const Tensor& t, const std::vector<int64_t>& send_rows,
                                      const std::vector<int64_t>& recv_rows) {
  comm_detail::check_send_rows(t, send_rows, size());
  PIT_CHECK(static_cast<int>(recv_rows.size()) == size(), "all_to_all: ", recv_rows.size(), " receive counts for ",
            size(), " ranks; give one per rank");
  for (const int64_t n : recv_rows) PIT_CHECK(n >= 0, "all_to_all: a negative receive count (", n, ")");
  // One rank (of any backend) receives what it sends itself.
  PIT_CHECK(size() > 1 || recv_rows[0] == send_rows[0], "all_to_all: one rank sends itself ", send_rows[0],
            " rows but expects ", recv_rows[0], "; the receive counts must be the send counts of the same exchange");
  return exchange_rows(t, send_rows, recv_rows);
}

double Communicator::default_comm_timeout() {
  const char* v = std::getenv("PIT_COMM_TIMEOUT");
  if (v == nullptr || *v == '\0') return 600.0;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  PIT_CHECK(*end == '\0' && s >= 0.0, "PIT_COMM_TIMEOUT=\"", v, "\" is not a number of seconds >= 0 (0: wait forever)");
  return s;
}

void Communicator::set_timeout(double seconds) {
  PIT_CHECK(seconds >= 0.0, "set_timeout: ", seconds, " seconds; give a number >= 0 (0: wait forever)");
  timeout_ = seconds;
}

void Communicator::add_time(const std::string& what, double seconds, int64_t calls) {
  Time& t = times_[what];
  t.seconds += seconds;
  t.calls += calls;
}

std::map<std::string, Communicator::Time> Communicator::take_times() {
  std::map<std::string, Time> out;
  out.swap(times_);
  return out;
}

std::string Communicator::describe() const {
  std::ostringstream os;
  os << backend() << ", rank " << rank() << " of " << size() << " (local " << local_rank() << ")";
  return os.str();
}

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

bool mpi_built() { return PIT_WITH_MPI != 0; }

#if !PIT_WITH_MPI
void abort_launch(int) {}  // no MPI: one process, nothing to end
#endif
bool nccl_built() { return PIT_WITH_NCCL != 0; }

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  PIT_CHECK(host != nullptr, "make_nccl_communicator: no host communicator");
  return comm_detail::make_nccl(std::move(host));
}

Communicator& world() {
  static std::once_flag once;
  static std::unique_ptr<Communicator> comm;
  std::call_once(once, [] {
    const LaunchInfo launch = launch_info();
    if (launch.size == 1) {
      comm = make_single_communicator();
      return;
    }
    comm = comm_detail::make_mpi(launch);
    const char* choice = std::getenv("PIT_COMM");
    const std::string backend = choice ? choice : "";
    PIT_CHECK(backend.empty() || backend == "nccl" || backend == "mpi", "PIT_COMM=", backend,
              " is not a backend; use nccl (CUDA tensors through NCCL) or mpi (every tensor through MPI)");
    if (backend != "mpi" && nccl_built() && cuda::device_count() > 0) comm = comm_detail::make_nccl(std::move(comm));
  });
  return *comm;
}

}  // namespace pit
