#include "ops/comm_ops.h"

#include "autograd/node.h"

namespace pit::ops {

Variable all_to_all(const Variable& x, const std::vector<int64_t>& send_rows, Communicator& comm,
                    std::vector<int64_t>* recv_rows, const std::vector<int64_t>& known_recv) {
  PIT_CHECK(x.defined(), "all_to_all: undefined input");
  std::vector<int64_t> received = known_recv;
  const Tensor y = known_recv.empty() ? comm.all_to_all(x.data(), send_rows, &received)
                                      : comm.all_to_all_known(x.data(), send_rows, known_recv);
  if (recv_rows) *recv_rows = received;
  Communicator* c = &comm;
  return record("all_to_all", {x}, y, [c, received, send_rows](const Tensor& g) -> std::vector<Tensor> {
    return {c->all_to_all_known(g.contiguous(), received, send_rows)};  // back where each row came from
  });
}

}  // namespace pit::ops
