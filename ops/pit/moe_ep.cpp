#include "ops/pit/moe_ep.h"

#include <vector>

#include "ops/comm_ops.h"
#include "ops/functional.h"

namespace pit::ops {

Variable moe_ffn_expert_parallel(const Variable& x, const Tensor& expert_of, const Variable& gates,
                                 const Variable& w1_local, const Variable& w2_local, Communicator& comm,
                                 const MoeFfnOptions& options) {
  const char* op = "moe_ffn_expert_parallel";
  PIT_CHECK(x.defined() && x.dim() == 2, op, ": x must be [T, d]");
  PIT_CHECK(expert_of.defined() && expert_of.dim() == 2 && expert_of.size(0) == x.size(0), op,
            ": expert_of must be [T, k] for T = ", x.size(0));
  PIT_CHECK(gates.defined() && gates.shape() == expert_of.shape(), op, ": gates must be shaped like expert_of");
  PIT_CHECK(w1_local.defined() && w1_local.dim() == 3 && w1_local.size(0) >= 1, op,
            ": w1_local must be [E_local, ffn, d] with at least one expert");
  const int64_t t = x.size(0), k = expert_of.size(1), local = w1_local.size(0), ranks = comm.size();
  const int64_t experts = local * ranks;
  const Device dev = x.device();

  // The assignments in send order: by destination rank, then token, then slot.
  const std::vector<int64_t> ids = expert_of.to(Device::cpu(), DType::i64).contiguous().to_vector<int64_t>();
  std::vector<std::vector<int64_t>> by_rank(static_cast<size_t>(ranks));  // flat slot t * k + j
  for (int64_t s = 0; s < t * k; ++s) {
    const int64_t e = ids[static_cast<size_t>(s)];
    if (e < 0) continue;  // dropped by a capacity rule
    PIT_CHECK(e < experts, op, ": expert id ", e, " but there are ", experts, " experts (", local, " on each of ",
              ranks, " ranks)");
    by_rank[static_cast<size_t>(e / local)].push_back(s);
  }
  std::vector<int64_t> slots, token, local_id, send_rows;
  for (const auto& list : by_rank) {
    send_rows.push_back(static_cast<int64_t>(list.size()));
    for (const int64_t s : list) {
      slots.push_back(s);
      token.push_back(s / k);
      local_id.push_back(ids[static_cast<size_t>(s)] % local);
    }
  }
  const Tensor slot_index = from_vector(slots, dev), token_index = from_vector(token, dev);

  // Out: each assignment's token row and gate; the local expert id alongside (not differentiable).
  // The counts are exchanged once, with the rows; every later exchange knows them.
  std::vector<int64_t> recv_rows;
  const Variable rows = all_to_all(index_select(x, 0, token_index), send_rows, comm, &recv_rows);
  const Variable g = all_to_all(reshape(index_select(reshape(gates, {t * k}), 0, slot_index), {-1, 1}), send_rows, comm,
                                nullptr, recv_rows);
  const Tensor here =
      comm.all_to_all_known(from_vector(local_id, {static_cast<int64_t>(local_id.size()), 1}), send_rows, recv_rows);
  // The local experts on what arrived (gate-weighted), and back to where each row came from.
  const Variable out = moe_ffn(rows, here.to(dev), g, w1_local, w2_local, options);
  const Variable back = all_to_all(out, recv_rows, comm, nullptr, send_rows);
  // Sum per token.
  const Tensor where = token_index.view({-1, 1}).expand({static_cast<int64_t>(token.size()), x.size(1)}).contiguous();
  return scatter_add(Variable(zeros(x.shape(), x.dtype(), dev)), 0, where, back);
}

}  // namespace pit::ops
