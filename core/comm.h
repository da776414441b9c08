#pragma once
// Communicator: the collectives of multi-process training, one process per GPU (or CPU
// processes), launched with `mpirun -np N ...` or a cluster's `srun ...`. Backends:
//   single  one process: every collective leaves the data as it is;
//   mpi     MPI (OpenMPI, MPICH): CPU tensors directly, CUDA tensors staged through the host;
//   nccl    CUDA tensors through NCCL on the device (bootstrapped by MPI), CPU tensors through
//           MPI: what world() gives a multi-process run when pit has CUDA + NCCL and the machine
//           a GPU (PIT_COMM=mpi forces mpi).
//
// Every rank calls the same collectives in the same order with tensors of the same shape and
// dtype (checked: a mismatch throws on every rank, each naming the shape it passed). A failure throws
// pit::Error naming the rank ("rank 1 of 4: MPI all_reduce failed: ..."). Calls are blocking.
//
//   Communicator& c = world();          // MPI under mpirun/srun, single otherwise
//   c.all_reduce(grad, ReduceOp::mean);
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pit {

enum class ReduceOp { sum, mean, max, min };
const char* reduce_op_name(ReduceOp op);

// Where this process sits in the launch, from the launcher's environment: OpenMPI's
// OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK}, PMI_{RANK,SIZE} (MPICH, Slurm's PMI; the local rank
// from MPI_LOCALRANKID, else SLURM_LOCALID, which srun --mpi=pmi2 sets instead), or Slurm's
// SLURM_{PROCID,NTASKS,LOCALID}; rank 0 of 1 when none is set.
struct LaunchInfo {
  int rank = 0, size = 1, local_rank = 0;
  std::string launcher;  // "openmpi", "pmi", "slurm", or "" (not launched by one)
};
LaunchInfo launch_info();

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual const char* backend() const = 0;  // "single", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // on its node: which GPU this rank binds

  // In place: t becomes the reduction over ranks of every rank's t (mean: the sum / size).
  virtual void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  // all_reduce started now and finished by the request's wait() (t holds the result only then);
  // meanwhile t must stay alive and untouched. Every rank starts its requests in the same order.
  // The base implementation reduces at once (wait() does nothing); MPI overlaps (MPI_Iallreduce).
  // A second wait() does nothing.
  class Request {
   public:
    virtual ~Request() = default;
    virtual void wait() = 0;
  };
  virtual std::unique_ptr<Request> all_reduce_start(Tensor& t, ReduceOp op = ReduceOp::sum);
  // In place: t becomes root's t.
  virtual void broadcast(Tensor& t, int root = 0) = 0;
  // Every rank's t ([n, ...]) concatenated along dim 0 in rank order: [size * n, ...].
  virtual Tensor all_gather(const Tensor& t) = 0;
  // t [size * n, ...] reduced over ranks; rank r keeps rows [r n, (r + 1) n): [n, ...].
  virtual Tensor reduce_scatter(const Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  // Rows of t ([rows, ...]) go out in runs: send_rows[p] rows to rank p, in rank order (the sum
  // of send_rows must be t's rows). Returns the rows every rank sent here, in rank order, and how
  // many came from each in *recv_rows (when given). One small exchange of the counts first.
  Tensor all_to_all(const Tensor& t, const std::vector<int64_t>& send_rows, std::vector<int64_t>* recv_rows = nullptr);
  // The same when the counts coming in are known already (recv_rows[p] rows from rank p: the
  // reverse of an earlier exchange, or a second tensor with the same routing): no count exchange.
  Tensor all_to_all_known(const Tensor& t, const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows);
  virtual void barrier() = 0;
  // A communicator of the ranks that pass the same color (>= 0), ranked by key (ties: by rank
  // here); they keep their local rank. Every rank calls it (a collective). Expert parallelism
  // uses one for the ranks sharing the experts and one for the replicas of each shard.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  std::string describe() const;  // "mpi, rank 1 of 4 (local 1)"

  // Seconds a collective waits for the other ranks before it throws naming this rank and the
  // collective (0: forever). Default: PIT_COMM_TIMEOUT, else 600. MPI enforces it on every call
  // (and so on what NCCL does through MPI); NCCL's own device work is not timed.
  double timeout() const { return timeout_; }
  virtual void set_timeout(double seconds);

  // Time this rank spent in each kind of collective ("all_reduce", "all_to_all", ...) since the
  // last call, and how many calls; resets them. MPI: the host time of each call (waiting for the
  // other ranks included; a started all_reduce counts at its wait); NCCL: the device time of its
  // kernels between CUDA events (reading them waits for them), the MPI side's host time added
  // (its check that every rank passed the same shape, before each collective, as "shape_check").
  // Splits keep their own. The single backend spends none.
  struct Time {
    double seconds = 0;
    int64_t calls = 0;
  };
  virtual std::map<std::string, Time> take_times();

 protected:
  double timeout_ = default_comm_timeout();
  static double default_comm_timeout();
  void add_time(const std::string& what, double seconds, int64_t calls = 1);
  // Adds the host time from its construction to its end to `what`, as `calls` calls (0: a part of
  // a call counted elsewhere, as all_to_all's exchange of counts before its rows).
  class Timed {
   public:
    Timed(Communicator& c, const char* what, int64_t calls = 1)
        : c_(c), what_(what), calls_(calls), start_(std::chrono::steady_clock::now()) {}
    ~Timed() {
      c_.add_time(what_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(), calls_);
    }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;

   private:
    Communicator& c_;
    const char* what_;
    int64_t calls_;
    std::chrono::steady_clock::time_point start_;
  };
  std::map<std::string, Time> times_;

  // One small all-to-all of int64s: send[p * per_rank ..] go to rank p; returns what each rank
  // sent here, rank p's at [p * per_rank ..]. all_to_all sends its counts and its rows' layout.
  virtual std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send, int per_rank) = 0;
  // Moves the rows once both sides' counts are known (checked by the callers).
  virtual Tensor exchange_rows(const Tensor& t, const std::vector<int64_t>& send_rows,
                               const std::vector<int64_t>& recv_rows) = 0;
};

// The communicator of this process, made on first use: MPI when the launch has more than one
// process (and pit was built with MPI: otherwise an error saying how to build it), single
// otherwise. MPI is initialised then and finalised at exit.
Communicator& world();

// After this process of a multi-process launch failed: ends every process of the launch
// (MPI_Abort with `code`), so that none waits for it in a collective, or in the MPI_Finalize at
// exit, which is collective too. Does nothing when MPI was not initialised (one process).
void abort_launch(int code);

std::unique_ptr<Communicator> make_single_communicator();
// NCCL for the CUDA tensors of `host`'s ranks, `host` for the rest (and the bootstrap). The NCCL
// communicator of a device is made at the first collective on it, by every rank together.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);
// Whether this build has the MPI / the NCCL backend.
bool mpi_built();
bool nccl_built();

}  // namespace pit
