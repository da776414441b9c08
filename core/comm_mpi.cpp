// The MPI Communicator (core/comm.h): MPI_COMM_WORLD with errors returned, not fatal, so each
// becomes a pit::Error naming the rank. Reductions run in the tensor's dtype (f16 / bf16 in f32,
// converted back); the other collectives move bytes. CUDA tensors are staged through the host.
// Before each collective the ranks compare the tensor's shape and dtype (one small all_reduce),
// so that a mismatch fails with both shapes named instead of corrupting data or hanging.
// Every collective is started non-blocking and polled until it completes or the communicator's
// timeout passes (Communicator::timeout, PIT_COMM_TIMEOUT): then this rank throws, naming itself
// and the collective, instead of hanging; the abandoned operation keeps its buffers (leaked: MPI
// may still write them if the other ranks arrive later).
// The C API only: OpenMPI and MPICH would otherwise pull in their deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>
#include <numeric>
#include <string>
#include <vector>

#include "core/comm_backends.h"
#include "core/error.h"

namespace pit::comm_detail {
namespace {

// An MPI operation in flight and everything it reads or writes until it completes.
struct InFlight {
  std::vector<MPI_Request> requests;
  std::vector<Tensor> buffers;
  std::vector<std::vector<int>> counts;  // all_to_all's counts and displacements
};

// Operations abandoned by a timeout: never freed (MPI may still complete them).
void abandon(InFlight&& op) {
  static std::mutex mu;
  static std::vector<InFlight>* kept = new std::vector<InFlight>();
  const std::lock_guard<std::mutex> lock(mu);
  kept->push_back(std::move(op));
}

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
    const Timed timed(*this, "all_reduce");
    PIT_CHECK(t.defined(), where(), "all_reduce: undefined tensor");
    same_everywhere(t, "all_reduce");
    InFlight f;
    Tensor h = reducible(t);
    f.buffers.push_back(h);
    reduce_chunks(h, op, [&](void* p, int n, MPI_Datatype type, MPI_Op mop) {
      return MPI_Iallreduce(MPI_IN_PLACE, p, n, type, mop, comm_, &next(f));
    }, "all_reduce");
    complete(std::move(f), "all_reduce");
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
    req->pending.buffers.push_back(h);
    reduce_chunks(h, op, [&](void* p, int n, MPI_Datatype type, MPI_Op mop) {
      return MPI_Iallreduce(MPI_IN_PLACE, p, n, type, mop, comm_, &next(req->pending));
    }, "all_reduce_start");
    return req;
  }

  void broadcast(Tensor& t, int root) override {
    const Timed timed(*this, "broadcast");
    PIT_CHECK(t.defined(), where(), "broadcast: undefined tensor");
    PIT_CHECK(root >= 0 && root < size_, where(), "broadcast: root ", root, " is not a rank (0 .. ", size_ - 1, ")");
    same_everywhere(t, "broadcast");
    Tensor h = host(t);
    InFlight f;
    f.buffers.push_back(h);
    check(MPI_Ibcast(h.data_ptr(), byte_count(h, "broadcast"), MPI_BYTE, root, comm_, &next(f)), "broadcast");
    complete(std::move(f), "broadcast");
    t.copy_(h);
  }

  Tensor all_gather(const Tensor& t) override {
    const Timed timed(*this, "all_gather");
    check_rows(t, "all_gather");
    same_everywhere(t, "all_gather");
    const Tensor h = host(t);
    Shape shape = t.shape();
    shape[0] *= size_;
    Tensor out = Tensor::empty(shape, t.dtype());
    const int n = byte_count(h, "all_gather");
    InFlight f;
    f.buffers = {h, out};
    check(MPI_Iallgather(h.data_ptr(), n, MPI_BYTE, out.data_ptr(), n, MPI_BYTE, comm_, &next(f)), "all_gather");
    complete(std::move(f), "all_gather");
    return out.to(t.device());
  }

  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    const Timed timed(*this, "reduce_scatter");
    check_scatter(t, size_);
    same_everywhere(t, "reduce_scatter");
    const Tensor h = reducible(t);
    Shape shape = t.shape();
    shape[0] /= size_;
    Tensor out = Tensor::empty(shape, h.dtype());
    InFlight f;
    f.buffers = {h, out};
    const int64_t n = out.numel();
    PIT_CHECK(n <= INT_MAX, where(), "reduce_scatter: ", n, " elements a rank in one MPI call; at most 2^31 - 1");
    reduce_chunks(out, op, [&](void*, int, MPI_Datatype type, MPI_Op mop) {  // one chunk: n fits
      return MPI_Ireduce_scatter_block(h.data_ptr(), out.data_ptr(), static_cast<int>(n), type, mop, comm_, &next(f));
    }, "reduce_scatter");
    complete(std::move(f), "reduce_scatter");
    if (op == ReduceOp::mean) divide(out, "reduce_scatter");
    return out.to(t.device(), t.dtype());
  }

  std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send, int per_rank) override {
    const Timed timed(*this, "all_to_all", /*calls=*/0);  // exchange_rows counts the call
    InFlight f;
    f.buffers = {from_vector(send, {static_cast<int64_t>(send.size())}),
                 Tensor::empty({static_cast<int64_t>(send.size())}, DType::i64)};
    check(MPI_Ialltoall(f.buffers[0].data_ptr(), per_rank, MPI_INT64_T, f.buffers[1].data_ptr(), per_rank, MPI_INT64_T,
                        comm_, &next(f)),
          "all_to_all counts");
    const Tensor from = f.buffers[1];
    complete(std::move(f), "all_to_all counts");
    return from.to_vector<int64_t>();
  }

  Tensor exchange_rows(const Tensor& t, const std::vector<int64_t>& send_rows, const std::vector<int64_t>& from) override {
    const Timed timed(*this, "all_to_all");
    const Tensor h = host(t);
    const int64_t row_bytes = row_bytes_of(t);
    InFlight f;
    f.counts.assign(4, std::vector<int>(static_cast<size_t>(size_)));
    std::vector<int>&scount = f.counts[0], &sdispl = f.counts[1], &rcount = f.counts[2], &rdispl = f.counts[3];
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
    f.buffers = {h, out};
    check(MPI_Ialltoallv(h.data_ptr(), scount.data(), sdispl.data(), MPI_BYTE, out.data_ptr(), rcount.data(),
                         rdispl.data(), MPI_BYTE, comm_, &next(f)),
          "all_to_all");
    complete(std::move(f), "all_to_all");
    return out.to(t.device());
  }

  void barrier() override {
    const Timed timed(*this, "barrier");
    InFlight f;
    check(MPI_Ibarrier(comm_, &next(f)), "barrier");
    complete(std::move(f), "barrier");
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    PIT_CHECK(color >= 0, where(), "split: the color must be >= 0, got ", color);
    MPI_Comm part = MPI_COMM_NULL;
    check(MPI_Comm_split(comm_, color, key, &part), "split");
    auto out = std::make_unique<MpiCommunicator>(part, local_rank_);
    out->set_timeout(timeout());
    return out;
  }

 private:
  std::string where() const { return rank_prefix(rank_, size_); }

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
    const std::vector<int64_t> mine = shape_signature(t);
    InFlight f;
    f.buffers.push_back(from_vector(mine, {static_cast<int64_t>(mine.size())}));
    const Tensor sig = f.buffers[0];
    check(MPI_Iallreduce(MPI_IN_PLACE, sig.data_ptr(), static_cast<int>(mine.size()), MPI_INT64_T, MPI_MAX, comm_,
                         &next(f)),
          what);
    complete(std::move(f), what);
    check_same_signature(sig.to_vector<int64_t>(), t, what, where());
  }

  static MPI_Request& next(InFlight& f) {
    f.requests.push_back(MPI_REQUEST_NULL);
    return f.requests.back();
  }

  // Polls f's requests until they complete; past the timeout, abandons them and throws.
  void complete(InFlight&& f, const char* what) const {
    const auto start = std::chrono::steady_clock::now();
    const double limit = timeout();
    for (int64_t polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Testall(static_cast<int>(f.requests.size()), f.requests.data(), &done, MPI_STATUSES_IGNORE), what);
      if (done) return;
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(20));  // past a short spin
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (limit > 0 && waited > limit) {
        abandon(std::move(f));
        std::ostringstream s;
        s << limit;
        PIT_THROW(where(), "MPI ", what, " did not complete within ", s.str(),
                  " s: another rank has not reached it (stuck, or it died: see the other ranks' output), or "
                  "this step is slower than that on some rank; raise PIT_COMM_TIMEOUT (seconds; 0 waits forever)");
      }
    }
  }

  // A started all_reduce: the host buffer in flight, its MPI requests, and where the result goes.
  struct MpiRequest final : Request {
    MpiRequest(MpiCommunicator& c, Tensor& target, ReduceOp reduce) : comm(c), out(target), op(reduce) {}
    // Dropped without wait() (an exception between start and wait): MPI may still write the host
    // buffer, so the operation is abandoned (kept) rather than freed.
    ~MpiRequest() override {
      if (!pending.requests.empty()) abandon(std::move(pending));
    }
    MpiRequest(const MpiRequest&) = delete;
    MpiRequest& operator=(const MpiRequest&) = delete;
    void wait() override {
      if (done) return;  // a second wait() must not divide and copy again
      const Timed timed(comm, "all_reduce_start");
      comm.complete(std::move(pending), "all_reduce_start (wait)");
      pending = InFlight();
      if (op == ReduceOp::mean) comm.divide(host, "all_reduce_start");
      out.copy_(host);
      done = true;
    }
    MpiCommunicator& comm;
    Tensor out, host;
    ReduceOp op;
    InFlight pending;
    bool done = false;
  };

  MPI_Comm comm_ = MPI_COMM_WORLD;
  bool owned_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi(const LaunchInfo& launch) { return std::make_unique<MpiCommunicator>(launch); }

}  // namespace pit::comm_detail

namespace pit {

void abort_launch(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace pit
