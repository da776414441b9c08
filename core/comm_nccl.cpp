// The NCCL Communicator (core/comm.h): CUDA tensors through NCCL, on the device, with no host
// staging; CPU tensors (and the small exchanges: shapes, counts, the NCCL id) through the MPI
// communicator it wraps, which bootstraps NCCL: rank 0's ncclUniqueId is broadcast over MPI and
// every rank joins with ncclCommInitRank, lazily, at the first collective on a CUDA tensor (one
// NCCL communicator per device used; all ranks reach it together, collectives being collective).
// Blocking collectives run on the device's current stream, ordered with the kernels around them.
// all_reduce_start runs on a side stream: it waits for what the current stream has queued (an
// event), and Request::wait makes the current stream wait for the reduction (another event): the
// host never blocks, and backward's kernels overlap the reduction.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "core/comm_backends.h"
#include "core/cuda/runtime.h"
#include "core/error.h"

namespace pit::comm_detail {
namespace {

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::mean: return ncclAvg;
    case ReduceOp::max: return ncclMax;
    default: return ncclMin;
  }
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    timeout_ = host_->timeout();
  }
  ~NcclCommunicator() override {
    // Unwinding from an error (this rank failing while the others may be in a collective with
    // it, or gone): nothing that waits for the device or the peers, so that the error reaches
    // pit-train's main, which ends the launch (abort_launch). Otherwise the timings are read and
    // the communicators destroyed in order.
    const bool failing = std::uncaught_exceptions() > 0;
    if (!failing) resolve_timings();
    for (auto& [device, d] : devices_) {
      cudaSetDevice(device);
      if (failing)
        ncclCommAbort(d.comm);
      else
        ncclCommDestroy(d.comm);
      cudaStreamDestroy(d.side);
    }
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  const char* backend() const override { return "nccl"; }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }

  void all_reduce(Tensor& t, ReduceOp op) override {
    PIT_CHECK(t.defined(), where(), "all_reduce: undefined tensor");
    if (!t.is_cuda()) return host_->all_reduce(t, op);
    same_everywhere(t, "all_reduce");
    Tensor c = t.contiguous();
    const Device dev = t.device();
    const cuda::DeviceGuard guard(dev.index);
    const ncclComm_t comm = on(dev).comm;  // made at the first use: not in the timing
    const DeviceTimed timed(*this, "all_reduce", stream(dev));
    check(ncclAllReduce(c.data_ptr(), c.data_ptr(), count(c), type(c, "all_reduce"), nccl_op(op), comm, stream(dev)),
          "all_reduce", dev);
    if (!t.is_contiguous()) t.copy_(c);
  }

  std::unique_ptr<Request> all_reduce_start(Tensor& t, ReduceOp op) override {
    PIT_CHECK(t.defined(), where(), "all_reduce_start: undefined tensor");
    if (!t.is_cuda()) return host_->all_reduce_start(t, op);  // MPI's own non-blocking one
    if (!t.is_contiguous()) return Communicator::all_reduce_start(t, op);  // blocking
    const Device dev = t.device();
    const cuda::DeviceGuard guard(dev.index);
    const PerDevice& d = on(dev);
    auto req = std::make_unique<NcclRequest>(stream(dev), t);
    // The side stream starts once the current stream has produced t.
    cuda_check(cudaEventRecord(req->ready, req->compute), "all_reduce_start");
    cuda_check(cudaStreamWaitEvent(d.side, req->ready, 0), "all_reduce_start");
    {
      const DeviceTimed timed(*this, "all_reduce_start", d.side);
      check(ncclAllReduce(t.data_ptr(), t.data_ptr(), count(t), type(t, "all_reduce_start"), nccl_op(op), d.comm,
                          d.side),
            "all_reduce_start", dev);
    }
    cuda_check(cudaEventRecord(req->done, d.side), "all_reduce_start");
    return req;
  }

  void broadcast(Tensor& t, int root) override {
    PIT_CHECK(t.defined(), where(), "broadcast: undefined tensor");
    PIT_CHECK(root >= 0 && root < size(), where(), "broadcast: root ", root, " is not a rank (0 .. ", size() - 1, ")");
    if (!t.is_cuda()) return host_->broadcast(t, root);
    same_everywhere(t, "broadcast");
    Tensor c = t.contiguous();
    const Device dev = t.device();
    const cuda::DeviceGuard guard(dev.index);
    const ncclComm_t comm = on(dev).comm;
    const DeviceTimed timed(*this, "broadcast", stream(dev));
    check(ncclBroadcast(c.data_ptr(), c.data_ptr(), c.nbytes(), ncclUint8, root, comm, stream(dev)), "broadcast", dev);
    if (!t.is_contiguous()) t.copy_(c);
  }

  Tensor all_gather(const Tensor& t) override {
    check_rows(t, "all_gather");
    if (!t.is_cuda()) return host_->all_gather(t);
    same_everywhere(t, "all_gather");
    const Tensor c = t.contiguous();
    Shape shape = t.shape();
    shape[0] *= size();
    const Device dev = t.device();
    const cuda::DeviceGuard guard(dev.index);
    Tensor out = Tensor::empty(shape, t.dtype(), dev);
    const ncclComm_t comm = on(dev).comm;
    const DeviceTimed timed(*this, "all_gather", stream(dev));
    check(ncclAllGather(c.data_ptr(), out.data_ptr(), c.nbytes(), ncclUint8, comm, stream(dev)), "all_gather", dev);
    return out;
  }

  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    check_scatter(t, size());
    if (!t.is_cuda()) return host_->reduce_scatter(t, op);
    same_everywhere(t, "reduce_scatter");
    const Tensor c = t.contiguous();
    Shape shape = t.shape();
    shape[0] /= size();
    const Device dev = t.device();
    const cuda::DeviceGuard guard(dev.index);
    Tensor out = Tensor::empty(shape, t.dtype(), dev);
    const ncclComm_t comm = on(dev).comm;
    const DeviceTimed timed(*this, "reduce_scatter", stream(dev));
    check(ncclReduceScatter(c.data_ptr(), out.data_ptr(), count(out), type(c, "reduce_scatter"), nccl_op(op), comm,
                            stream(dev)),
          "reduce_scatter", dev);
    return out;
  }

  void barrier() override { host_->barrier(); }
  void set_timeout(double seconds) override {
    Communicator::set_timeout(seconds);
    host_->set_timeout(seconds);
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    return std::make_unique<NcclCommunicator>(host_->split(color, key));
  }

  std::map<std::string, Time> take_times() override {
    resolve_timings();
    fold_host_times(nullptr);
    return Communicator::take_times();
  }

 protected:
  std::vector<int64_t> exchange_counts(const std::vector<int64_t>& send, int per_rank) override {
    // One row per rank each way, through MPI (the counts live on the host).
    const std::vector<int64_t> ones(static_cast<size_t>(size()), 1);
    const Tensor sent = from_vector(send, {size(), per_rank});
    return host_->all_to_all_known(sent, ones, ones).to_vector<int64_t>();
  }

  Tensor exchange_rows(const Tensor& t, const std::vector<int64_t>& send_rows,
                       const std::vector<int64_t>& recv_rows) override {
    if (!t.is_cuda()) return host_->all_to_all_known(t, send_rows, recv_rows);
    const Tensor c = t.contiguous();
    const int64_t row_bytes = row_bytes_of(t);
    Shape shape = t.shape();
    shape[0] = 0;
    for (const int64_t n : recv_rows) shape[0] += n;
    const Device dev = t.device();
    const cuda::DeviceGuard guard(dev.index);
    Tensor out = Tensor::empty(shape, t.dtype(), dev);
    const PerDevice& d = on(dev);
    const cudaStream_t s = stream(dev);
    const auto* from = static_cast<const char*>(c.data_ptr());
    auto* to = static_cast<char*>(out.data_ptr());
    const DeviceTimed timed(*this, "all_to_all", s);
    check(ncclGroupStart(), "all_to_all", dev);
    for (int p = 0; p < size(); ++p) {
      const auto sn = static_cast<size_t>(send_rows[static_cast<size_t>(p)] * row_bytes);
      const auto rn = static_cast<size_t>(recv_rows[static_cast<size_t>(p)] * row_bytes);
      if (sn > 0) check(ncclSend(from, sn, ncclUint8, p, d.comm, s), "all_to_all send", dev);
      if (rn > 0) check(ncclRecv(to, rn, ncclUint8, p, d.comm, s), "all_to_all recv", dev);
      from += sn;
      to += rn;
    }
    check(ncclGroupEnd(), "all_to_all", dev);
    return out;
  }

 private:
  // Device time of one NCCL call: events recorded around it on its stream, read at take_times.
  struct Timing {
    std::string what;
    cudaEvent_t start = nullptr, end = nullptr;
  };
  class DeviceTimed {
   public:
    DeviceTimed(NcclCommunicator& c, const char* what, cudaStream_t s) : c_(c), s_(s) {
      t_.what = what;
      cudaEventCreate(&t_.start);
      cudaEventCreate(&t_.end);
      cudaEventRecord(t_.start, s_);
    }
    ~DeviceTimed() {
      cudaEventRecord(t_.end, s_);
      c_.timings_.push_back(t_);
      if (c_.timings_.size() > 4096) c_.resolve_timings();  // not read for long: keep few events
    }
    DeviceTimed(const DeviceTimed&) = delete;
    DeviceTimed& operator=(const DeviceTimed&) = delete;

   private:
    NcclCommunicator& c_;
    cudaStream_t s_;
    Timing t_;
  };
  // Waits for the recorded calls and adds their device time.
  void resolve_timings() {
    for (Timing& t : timings_) {
      float ms = 0;
      if (cudaEventSynchronize(t.end) == cudaSuccess && cudaEventElapsedTime(&ms, t.start, t.end) == cudaSuccess)
        add_time(t.what, 1e-3 * ms);
      cudaEventDestroy(t.start);
      cudaEventDestroy(t.end);
    }
    timings_.clear();
  }

  struct PerDevice {
    ncclComm_t comm = nullptr;
    cudaStream_t side = nullptr;  // all_reduce_start's
  };

  // A started all_reduce: wait() orders the current stream after it.
  struct NcclRequest final : Request {
    NcclRequest(cudaStream_t s, const Tensor& t) : compute(s), keep(t) {
      cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
      cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
    }
    // Dropped without wait() (an exception between start and wait): the compute stream still waits
    // for the side stream, so that t's memory, freed in stream order, is not reused under NCCL.
    ~NcclRequest() override {
      if (!waited) cudaStreamWaitEvent(compute, done, 0);
      cudaEventDestroy(ready);
      cudaEventDestroy(done);
    }
    NcclRequest(const NcclRequest&) = delete;
    NcclRequest& operator=(const NcclRequest&) = delete;
    void wait() override {
      const cudaError_t e = cudaStreamWaitEvent(compute, done, 0);
      PIT_CHECK(e == cudaSuccess, "all_reduce_start wait: ", cudaGetErrorString(e));
      waited = true;
    }
    cudaStream_t compute;
    Tensor keep;  // in flight: alive until the request is
    cudaEvent_t ready = nullptr, done = nullptr;
    bool waited = false;
  };

  std::string where() const { return rank_prefix(rank(), size()); }

  void check(ncclResult_t r, const char* what, Device dev) {
    if (r == ncclSuccess) return;
    const auto it = devices_.find(dev.index);
    const char* detail = it != devices_.end() ? ncclGetLastError(it->second.comm) : ncclGetLastError(nullptr);
    PIT_THROW(where(), "NCCL ", what, " on ", dev.str(), " failed: ", ncclGetErrorString(r),
              detail && *detail ? std::string(" (") + detail + ")" : std::string(),
              r == ncclSystemError || r == ncclRemoteError
                  ? "; a rank may have died or the network failed: see that rank's output (NCCL_DEBUG=WARN says more)"
                  : "");
  }
  void cuda_check(cudaError_t e, const char* what) const {
    PIT_CHECK(e == cudaSuccess, where(), what, ": ", cudaGetErrorString(e));
  }

  static cudaStream_t stream(Device dev) { return cuda::native(current_stream(dev)); }
  static size_t count(const Tensor& t) { return static_cast<size_t>(t.numel()); }
  ncclDataType_t type(const Tensor& t, const char* what) const {
    switch (t.dtype()) {
      case DType::f32: return ncclFloat32;
      case DType::f64: return ncclFloat64;
      case DType::f16: return ncclFloat16;
      case DType::bf16: return ncclBfloat16;
      case DType::i32: return ncclInt32;
      case DType::i64: return ncclInt64;
      case DType::u8: return ncclUint8;
      default: PIT_THROW(where(), what, ": cannot reduce ", dtype_name(t.dtype()), " tensors with NCCL");
    }
  }

  // Every rank must pass the same shape and dtype: checked over MPI (a small all_reduce of a
  // host tensor, which the MPI backend checks in turn), so a mismatch fails with the shapes named.
  // Its host time is filed under "shape_check", not under the MPI all_reduce that carries it.
  void same_everywhere(const Tensor& t, const char* what) {
    const std::vector<int64_t> sig = shape_signature(t);
    Tensor h = from_vector(sig, {static_cast<int64_t>(sig.size())});
    fold_host_times(nullptr);
    host_->all_reduce(h, ReduceOp::max);
    fold_host_times("shape_check");
    check_same_signature(h.to_vector<int64_t>(), t, what, where());
  }

  // Moves the MPI side's times into this communicator's: under their own names, or all under `as`.
  void fold_host_times(const char* as) {
    for (const auto& [what, t] : host_->take_times()) add_time(as ? std::string(as) : what, t.seconds, t.calls);
  }

  // The NCCL communicator of `dev`, made at its first use on every rank together.
  const PerDevice& on(Device dev) {
    const auto it = devices_.find(dev.index);
    if (it != devices_.end()) return it->second;
    const cuda::DeviceGuard guard(dev.index);
    ncclUniqueId id{};
    if (rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId", dev);
    Tensor bytes = Tensor::empty({static_cast<int64_t>(sizeof id)}, DType::u8);
    std::memcpy(bytes.data_ptr(), &id, sizeof id);
    host_->broadcast(bytes, 0);
    std::memcpy(&id, bytes.data_ptr(), sizeof id);
    PerDevice d;
    const ncclResult_t r = ncclCommInitRank(&d.comm, size(), id, rank());
    PIT_CHECK(r == ncclSuccess, where(), "NCCL could not start on ", dev.str(), ": ", ncclGetErrorString(r), " (",
              ncclGetLastError(nullptr), "); each rank needs its own GPU (launch at most one process per GPU), and "
              "NCCL_DEBUG=WARN says more");
    cuda_check(cudaStreamCreateWithFlags(&d.side, cudaStreamNonBlocking), "NCCL side stream");
    return devices_.emplace(dev.index, d).first->second;
  }

  std::unique_ptr<Communicator> host_;
  std::map<int, PerDevice> devices_;
  std::vector<Timing> timings_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

}  // namespace pit::comm_detail
