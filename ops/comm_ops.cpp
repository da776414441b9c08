#include "ops/comm_ops.h"

#include "autograd/node.h"

namespace pit::ops {

Variable all_to_all(const Variable& x, const std::vector<int64_t>& send_rows, Communicator& comm,
                    std::vector<int64_t>* recv_rows) {
  PIT_CHECK(x.defined(), "all_to_all: undefined input");
  std::vector<int64_t> received;
  const Tensor y = comm.all_to_all(x.data(), send_rows, &received);
  if (recv_rows) *recv_rows = received;
  Communicator* c = &comm;
  return record("all_to_all", {x}, y, [c, received](const Tensor& g) -> std::vector<Tensor> {
    return {c->all_to_all(g.contiguous(), received)};  // back to where each row came from
  });
}

}  // namespace pit::ops
