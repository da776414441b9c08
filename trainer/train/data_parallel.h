#pragma once
// Data parallelism in the training loop: every rank holds the whole model, trains on its share
// of each global batch, and the gradients are averaged over the ranks before the optimizer step,
// so every rank takes the same step (and, sparse layers included, makes the same mask choices).
//
// GradientAverager overlaps the averaging with backward: parameters are grouped in buckets, last
// layers first (the order backward finishes them); a gradient hook marks each parameter's
// gradient final, and a bucket whose gradients are all final is flattened into one buffer and its
// all-reduce started at once (Communicator::all_reduce_start), buckets strictly in order so that
// every rank starts the same collectives in the same order. finish() starts what is left (a
// parameter without a gradient this step counts as zeros), waits, and writes the averages into
// the gradients. With MPI on CPUs the reduction mostly progresses at the wait; under NCCL it runs
// on a side stream while backward goes on (core/comm_nccl.cpp). The gradients must be zeroed
// before each backward (a hook sees only that backward's gradient).
//
// Expert parallelism: the experts' shards are summed over the ranks holding the same shard (the
// replicas) and divided by all the ranks (divide_by), since their gradients already sum the
// tokens of every rank of their expert group.
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "core/comm.h"

namespace pit::train {

class GradientAverager {
 public:
  // Registers a hook on every parameter (leaves that require grad). finish() leaves each gradient
  // as its sum over the ranks of comm divided by divide_by (0: comm.size(), the mean); inactive
  // when that changes nothing (one rank, divide_by 0 or 1). With one rank and divide_by > 1 it
  // only scales the gradients (no hooks, no buffers, no collective).
  GradientAverager(const std::vector<Variable>& params, Communicator& comm, int64_t bucket_elements = 1 << 22,
                   int divide_by = 0);
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;
  // After backward: every parameter's gradient is its sum over the ranks divided by divide_by.
  void finish();
  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, in launch order
    Tensor buffer;               // the flattened gradients in flight
    std::unique_ptr<Communicator::Request> request;
  };
  void ready(size_t param);
  void start(Bucket& b);  // flattens and starts the bucket's all-reduce

  std::vector<Variable> params_;
  Communicator& comm_;
  double scale_;  // 1 / divide_by
  bool active_;
  bool mean_;     // divide_by is comm's size: the backend's mean, no scaling pass of our own
  bool alone_;    // comm has one rank (an expert shard without replicas): scale in place only
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<uint8_t> final_;       // per parameter: its gradient of this backward is final
  std::vector<Tensor> grads_;        // per parameter: that gradient (shares the .grad storage)
  size_t next_ = 0;                  // the first bucket not started
  std::shared_ptr<bool> alive_;      // hooks outlive this object; they check it
};

}  // namespace pit::train
