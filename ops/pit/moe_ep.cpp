#include "ops/pit/moe_ep.h"

#include <vector>

#include "ops/comm_ops.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/detect.h"

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
  const int64_t experts = local * ranks, slots = t * k;
  PIT_CHECK(slots <= (int64_t{1} << 24), op, ": ", slots, " assignments (T * k) on one rank; at most 2^24 per call");
  const Device dev = x.device();

  // The dispatch index over all E experts, on x's device: entries grouped by expert, so by
  // destination rank (rank p holds experts [p E_local, (p + 1) E_local)). Each entry's weight
  // carries its flat slot t * k + j (exact in f32 below 2^24): its gate and expert id.
  const sparse::RowSetIndex idx = sparse::rows_from_routing(expert_of, experts, arange(static_cast<double>(slots), DType::f32, dev).view({t, k}));
  // The one small read: where each rank's run of entries starts.
  const Tensor bounds = kernels::index_select(idx.offsets, 0,
                                              arange(0.0, static_cast<double>(experts + 1), static_cast<double>(local), DType::i64, dev));
  const std::vector<int64_t> at = bounds.to(Device::cpu(), DType::i64).to_vector<int64_t>();  // syncs
  std::vector<int64_t> send_rows(static_cast<size_t>(ranks));
  for (int64_t p = 0; p < ranks; ++p) send_rows[static_cast<size_t>(p)] = at[static_cast<size_t>(p + 1)] - at[static_cast<size_t>(p)];
  const int64_t sent = at.back();
  const Tensor token_index = idx.rows.slice(0, 0, sent).to(DType::i64);
  const Tensor slot_index = idx.weights.slice(0, 0, sent).to(DType::i64);
  const Tensor expert_id = kernels::index_select(expert_of.reshape({slots}).to(DType::i64), 0, slot_index);

  // Out: each entry's token row and gate, and its expert id (not differentiable). The counts are
  // exchanged once, with the rows; every later exchange knows them.
  std::vector<int64_t> recv_rows;
  const Variable rows = all_to_all(index_select(x, 0, token_index), send_rows, comm, &recv_rows);
  const Variable g = all_to_all(reshape(index_select(reshape(gates, {slots}), 0, slot_index), {-1, 1}), send_rows, comm,
                                nullptr, recv_rows);
  const Tensor arrived = comm.all_to_all_known(expert_id.view({sent, 1}), send_rows, recv_rows);
  // This rank's experts are [rank E_local, ...): their local ids (in f32, exact below 2^24).
  const Tensor here = kernels::unary(UnaryOp::add_scalar, arrived.to(dev, DType::f32),
                                     -static_cast<double>(comm.rank() * local))
                          .to(DType::i64);
  // The local experts on what arrived (gate-weighted), and back to where each row came from.
  const Variable out = moe_ffn(rows, here, g, w1_local, w2_local, options);
  const Variable back = all_to_all(out, recv_rows, comm, nullptr, send_rows);
  // Sum per token.
  const Tensor where = token_index.view({-1, 1}).expand({sent, x.size(1)}).contiguous();
  return scatter_add(Variable(zeros(x.shape(), x.dtype(), dev)), 0, where, back);
}

}  // namespace pit::ops
