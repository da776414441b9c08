// The MPI Communicator (core/comm.h): MPI_COMM_WORLD with errors returned, not fatal, so each
// becomes a pit::Error naming the rank. Reductions run in the tensor's dtype (f16 / bf16 in f32,
// converted back); the other collectives move bytes. CUDA tensors are staged through the host.
// Before each collective the ranks compare the tensor's shape and dtype (one small all_reduce),
// so that a mismatch fails with both shapes named instead of corrupting data or hanging.
// The C API only: OpenMPI and MPICH would otherwise pull in their deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "core/comm_backends.h"
#include "core/error.h"

namespace pit::comm_detail {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchInfo& launch) : local_rank_(launch.local_rank) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      PIT_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS, "rank ", launch.rank,
                ": MPI_Init_thread failed");
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    PIT_CHECK(rank_ == launch.rank && size_ == launch.size, "MPI says rank ", rank_, " of ", size_, " but the ",
              launch.launcher, " environment says rank ", launch.rank, " of ", launch.size,
              "; launch with the MPI that pit was built against");
  }
  // A communicator of a split (owned: freed with this object unless MPI has finalised).
  MpiCommunicator(MPI_Comm comm, int local_rank) : comm_(comm), owned_(true), local_rank_(local_rank) {
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  const char* backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  void all_reduce(Tensor& t, ReduceOp op) override {
    PIT_CHECK(t.defined(), where(), "all_reduce: undefined tensor");
    same_everywhere(t, "all_reduce");
    Tensor h = reducible(t);
    reduce_chunks(h, op, [&](void* p, int n, MPI_Datatype type, MPI_Op mop) {
      return MPI_Allreduce(MPI_IN_PLACE, p, n, type, mop, comm_);
    }, "all_reduce");
    if (op == ReduceOp::mean) divide(h, "all_reduce");
    t.copy_(h);
  }

  std::unique_ptr<Request> all_reduce_start(Tensor& t, ReduceOp op) override {
    PIT_CHECK(t.defined(), where(), "all_reduce_start: undefined tensor");
    // No shape check here (it would wait for the other ranks): callers start requests of shapes
    // fixed by construction (gradient buckets).
    auto req = std::make_unique<MpiRequest>(*this, t, op);
    Tensor& h = req->host;
    h = reducible(t);
    reduce_chunks(h, op, [&](void* p, int n, MPI_Datatype type, MPI_Op mop) {
      req->pending.emplace_back();
      return MPI_Iallreduce(MPI_IN_PLACE, p, n, type, mop, comm_, &req->pending.back());
    }, "all_reduce_start");
    return req;
  }

  void broadcast(Tensor& t, int root) override {
    PIT_CHECK(t.defined(), where(), "broadcast: undefined tensor");
    PIT_CHECK(root >= 0 && root < size_, where(), "broadcast: root ", root, " is not a rank (0 .. ", size_ - 1, ")");
    same_everywhere(t, "broadcast");
    Tensor h = host(t);
    check(MPI_Bcast(h.data_ptr(), byte_count(h, "broadcast"), MPI_BYTE, root, comm_), "broadcast");
    t.copy_(h);
  }

  Tensor all_gather(const Tensor& t) override {
    check_rows(t, "all_gather");
    same_everywhere(t, "all_gather");
    const Tensor h = host(t);
    Shape shape = t.shape();
    shape[0] *= size_;
    Tensor out = Tensor::empty(shape, t.dtype());
    const int n = byte_count(h, "all_gather");
    check(MPI_Allgather(h.data_ptr(), n, MPI_BYTE, out.data_ptr(), n, MPI_BYTE, comm_), "all_gather");
    return out.to(t.device());
  }

  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    check_scatter(t, size_);
    same_everywhere(t, "reduce_scatter");
    // The reduction of every row on every rank (all_reduce), then this rank's share: simple and
    // exact; a dedicated MPI_Reduce_scatter_block halves the traffic (to do with the NCCL backend).
    Tensor all = t.clone();
    all_reduce(all, op);
    const int64_t n = t.size(0) / size_;
    return all.slice(0, rank_ * n, (rank_ + 1) * n).clone();
  }

  std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send_rows) override {
    std::vector<int64_t> from(static_cast<size_t>(size_));
    check(MPI_Alltoall(send_rows.data(), 1, MPI_INT64_T, from.data(), 1, MPI_INT64_T, comm_), "all_to_all counts");
    return from;
  }

  Tensor exchange_rows(const Tensor& t, const std::vector<int64_t>& send_rows, const std::vector<int64_t>& from) override {
    const Tensor h = host(t);
    const int64_t row_bytes = row_bytes_of(t);
    std::vector<int> scount(static_cast<size_t>(size_)), sdispl(scount.size()), rcount(scount.size()), rdispl(scount.size());
    int64_t soff = 0, roff = 0;
    for (size_t p = 0; p < scount.size(); ++p) {
      scount[p] = as_int(send_rows[p] * row_bytes, "all_to_all");
      rcount[p] = as_int(from[p] * row_bytes, "all_to_all");
      sdispl[p] = as_int(soff, "all_to_all");
      rdispl[p] = as_int(roff, "all_to_all");
      soff += send_rows[p] * row_bytes;
      roff += from[p] * row_bytes;
    }
    Shape shape = t.shape();
    shape[0] = std::accumulate(from.begin(), from.end(), int64_t{0});
    Tensor out = Tensor::empty(shape, t.dtype());
    check(MPI_Alltoallv(h.data_ptr(), scount.data(), sdispl.data(), MPI_BYTE, out.data_ptr(), rcount.data(),
                        rdispl.data(), MPI_BYTE, comm_),
          "all_to_all");
    return out.to(t.device());
  }

  void barrier() override { check(MPI_Barrier(comm_), "barrier"); }

  std::unique_ptr<Communicator> split(int color, int key) override {
    PIT_CHECK(color >= 0, where(), "split: the color must be >= 0, got ", color);
    MPI_Comm part = MPI_COMM_NULL;
    check(MPI_Comm_split(comm_, color, key, &part), "split");
    return std::make_unique<MpiCommunicator>(part, local_rank_);
  }

 private:
  std::string where() const { return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": "; }

  void check(int err, const char* what) const {
    if (err == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    PIT_THROW(where(), "MPI ", what, " failed: ", std::string(msg, static_cast<size_t>(len)));
  }

  int as_int(int64_t n, const char* what) const {
    PIT_CHECK(n <= INT_MAX, where(), what, ": ", n, " bytes in one MPI call; at most 2^31 - 1 (split the tensor)");
    return static_cast<int>(n);
  }
  int byte_count(const Tensor& h, const char* what) const { return as_int(static_cast<int64_t>(h.nbytes()), what); }
  static int64_t row_bytes_of(const Tensor& t) {
    int64_t n = static_cast<int64_t>(dtype_size(t.dtype()));
    for (int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
    return n;
  }

  // A contiguous host tensor with t's values (t itself when it already is one).
  static Tensor host(const Tensor& t) { return t.to(Device::cpu()).contiguous(); }
  // The host tensor a reduction runs on: f16 / bf16 widened to f32 (MPI has no such type).
  static Tensor reducible(const Tensor& t) {
    const DType d = t.dtype();
    return host(d == DType::f16 || d == DType::bf16 ? t.to(DType::f32) : t).clone();
  }

  // Runs `call` over h in chunks of at most INT_MAX elements, with the MPI type and op of h.
  template <typename Call>
  void reduce_chunks(Tensor& h, ReduceOp op, Call&& call, const char* what) const {
    MPI_Datatype type = MPI_DATATYPE_NULL;
    switch (h.dtype()) {
      case DType::f32: type = MPI_FLOAT; break;
      case DType::f64: type = MPI_DOUBLE; break;
      case DType::i32: type = MPI_INT32_T; break;
      case DType::i64: type = MPI_INT64_T; break;
      case DType::u8: type = MPI_UINT8_T; break;
      default: PIT_THROW(where(), what, ": cannot reduce ", dtype_name(h.dtype()), " tensors");
    }
    const MPI_Op mop = op == ReduceOp::max ? MPI_MAX : op == ReduceOp::min ? MPI_MIN : MPI_SUM;
    auto* p = static_cast<char*>(h.data_ptr());
    const size_t elem = dtype_size(h.dtype());
    for (int64_t done = 0; done < h.numel();) {
      const int n = static_cast<int>(std::min<int64_t>(h.numel() - done, INT_MAX));
      check(call(p + static_cast<size_t>(done) * elem, n, type, mop), what);
      done += n;
    }
  }

  // h /= size, for the mean (floating tensors: f16 / bf16 were widened to f32).
  void divide(Tensor& h, const char* what) const {
    const auto scale = [&](auto* p) {
      for (int64_t i = 0; i < h.numel(); ++i) p[i] /= size_;
    };
    if (h.dtype() == DType::f32) {
      scale(h.data<float>());
    } else if (h.dtype() == DType::f64) {
      scale(h.data<double>());
    } else {
      PIT_THROW(where(), what, ": the mean of ", dtype_name(h.dtype()), " tensors; reduce with sum and divide");
    }
  }

  // Every rank must pass the same shape and dtype: compared through one small all_reduce of
  // (numel, dims, dtype) and their negations under MAX.
  void same_everywhere(const Tensor& t, const char* what) const {
    std::vector<int64_t> sig = shape_signature(t);
    check(MPI_Allreduce(MPI_IN_PLACE, sig.data(), static_cast<int>(sig.size()), MPI_INT64_T, MPI_MAX, comm_), what);
    check_same_signature(sig, t, what, where());
  }

  // A started all_reduce: the host buffer in flight, its MPI requests, and where the result goes.
  struct MpiRequest final : Request {
    MpiRequest(MpiCommunicator& c, Tensor& target, ReduceOp reduce) : comm(c), out(target), op(reduce) {}
    void wait() override {
      for (MPI_Request& r : pending) comm.check(MPI_Wait(&r, MPI_STATUS_IGNORE), "all_reduce_start wait");
      pending.clear();
      if (op == ReduceOp::mean) comm.divide(host, "all_reduce_start");
      out.copy_(host);
    }
    MpiCommunicator& comm;
    Tensor out, host;
    ReduceOp op;
    std::vector<MPI_Request> pending;
  };

  MPI_Comm comm_ = MPI_COMM_WORLD;
  bool owned_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi(const LaunchInfo& launch) { return std::make_unique<MpiCommunicator>(launch); }

}  // namespace pit::comm_detail
