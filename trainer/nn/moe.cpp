#include "trainer/nn/moe.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/moe.h"
#include "ops/pit/moe_ep.h"
#include "trainer/nn/init.h"

namespace pit::nn {
namespace {

UnaryOp expert_activation(Activation a) {
  switch (a) {
    case Activation::relu: return UnaryOp::relu;
    case Activation::gelu: return UnaryOp::gelu_erf;
    case Activation::gelu_tanh: return UnaryOp::gelu_tanh;
    case Activation::silu: return UnaryOp::silu;
    default: break;
  }
  PIT_CHECK(false, "MoE: the experts' activation must be relu, gelu, gelu_tanh or silu, got ", activation_name(a));
  return UnaryOp::relu;
}

// The capacity rule (moe.h) on the host: drops (sets to -1) the assignments of `ids` [t, k] past
// `cap` per expert, first choices first, each in token order; counts what each expert keeps.
int64_t apply_capacity(std::vector<int64_t>& ids, int64_t t, int64_t k, int64_t cap, std::vector<float>& kept) {
  int64_t dropped = 0;
  for (int64_t j = 0; j < k; ++j)
    for (int64_t i = 0; i < t; ++i) {
      int64_t& e = ids[static_cast<size_t>(i * k + j)];
      float& load = kept[static_cast<size_t>(e)];
      if (load < static_cast<float>(cap)) {
        load += 1.f;
      } else {
        e = -1;
        ++dropped;
      }
    }
  return dropped;
}

// The k largest entries of each row of p [T, E] (ties: the lower index), as i64 [T, k], largest
// first. Each pick is a row max; the picked entry is then pushed below every probability.
Tensor top_k(const Tensor& p, int64_t k) {
  const int64_t t = p.size(0), e = p.size(1);
  std::vector<Tensor> picks;
  Tensor work = p;
  for (int64_t j = 0; j < k; ++j) {
    const kernels::MaxResult m = kernels::max(work, 1, /*keepdim=*/true);
    picks.push_back(m.indices);
    if (j + 1 < k)
      work = kernels::binary(BinaryOp::sub, work,
                             kernels::scatter_add({t, e}, 1, m.indices, full({t, 1}, 2.0, p.dtype(), p.device())));
  }
  return kernels::cat(picks, 1);
}

// C = ceil(factor * assignments / experts) for the decimal factor the config gives: a product
// that is whole in decimals but lands just above it in binary (0.9 * 100 / 6 =
// 15.000000000000002) must not round up to one more.
int64_t expert_capacity(double factor, int64_t assignments, int64_t experts) {
  const double v = factor * static_cast<double>(assignments) / static_cast<double>(experts);
  return static_cast<int64_t>(std::ceil(v - 1e-9 * std::max(1.0, v)));
}

}  // namespace

MoE::MoE(const Options& o, Generator& gen) : opt_(o) {
  PIT_CHECK(o.dim > 0 && o.hidden > 0 && o.experts > 0, "MoE: dim, hidden and experts must be positive, got ", o.dim,
            ", ", o.hidden, ", ", o.experts);
  PIT_CHECK(o.top_k >= 1 && o.top_k <= o.experts, "MoE: top_k must be between 1 and the number of experts (",
            o.experts, "), got ", o.top_k);
  PIT_CHECK(o.jitter >= 0.0 && o.jitter < 1.0, "MoE: jitter must be in [0, 1), got ", o.jitter);
  PIT_CHECK(o.capacity_factor >= 0.0, "MoE: capacity_factor must be >= 0 (0: dropless), got ", o.capacity_factor);
  expert_activation(o.activation);  // rejects tanh here rather than at the first forward
  const int ranks = o.expert_comm ? o.expert_comm->size() : 1;
  PIT_CHECK(o.experts % ranks == 0, "MoE: ", o.experts, " experts do not shard evenly over ", ranks,
            " expert-parallel ranks; make the number of experts a multiple of the ranks");
  router_ = register_parameter("router", init::normal({o.experts, o.dim}, 0.0, o.router_std, gen));
  // The whole is drawn on every rank (the same generator state), so that a seed gives the same
  // experts for any number of ranks; each keeps its rows.
  const Tensor w1 = init::normal({o.experts, o.hidden, o.dim}, 0.0, o.fc_std, gen);
  const Tensor w2 = init::normal({o.experts, o.dim, o.hidden}, 0.0, o.proj_std, gen);
  const int64_t local = o.experts / ranks, first = ranks > 1 ? o.expert_comm->rank() * local : 0;
  w1_ = register_parameter("w1", w1.slice(0, first, first + local).contiguous());
  w2_ = register_parameter("w2", w2.slice(0, first, first + local).contiguous());
  if (ranks > 1) {
    shard_parameter("w1", *o.expert_comm);
    shard_parameter("w2", *o.expert_comm);
  }
}

Variable MoE::forward(const Variable& x) {
  PIT_CHECK(x.dim() >= 1 && x.size(-1) == opt_.dim, "MoE: input of shape ", shape_str(x.shape()), " must end in ",
            opt_.dim);
  const Shape shape = x.shape();
  const Variable x2 = ops::reshape(x, {-1, opt_.dim});
  const int64_t t = x2.size(0), k = opt_.top_k, experts = opt_.experts;
  const Device dev = x.device();

  // Router, in f32.
  Variable xr = ops::cast(x2, DType::f32);
  if (is_training() && opt_.jitter > 0.0) {
    const Tensor u = rand({t, opt_.dim}, DType::f32, dev);  // U(0, 1) -> U(1 - jitter, 1 + jitter)
    const Tensor noise = kernels::unary(UnaryOp::add_scalar, kernels::unary(UnaryOp::mul_scalar, u, 2.0 * opt_.jitter),
                                        1.0 - opt_.jitter);
    xr = ops::mul(xr, Variable(noise));
  }
  const Variable logits = ops::linear(xr, router_);
  const Variable probs = ops::softmax(logits, 1);
  const Tensor ids = top_k(probs.data(), k);
  Variable gates = ops::gather(probs, 1, ids);
  if (k > 1 && opt_.normalize_top_k) gates = ops::div(gates, ops::sum(gates, {1}, /*keepdim=*/true));

  // Losses and counts of this routing.
  const Tensor counts = kernels::scatter_add({experts}, 0, ids.reshape({t * k}), full({t * k}, 1.0, DType::f32, dev));
  const Tensor f = kernels::unary(UnaryOp::mul_scalar, counts, 1.0 / static_cast<double>(std::max<int64_t>(t * k, 1)));
  if (t > 0) {
    last_.aux_loss = ops::mul(ops::sum(ops::mul(ops::mean(probs, {0}), Variable(f))), static_cast<double>(experts));
    const Variable lse = ops::slice(ops::sub(logits, ops::log_softmax(logits, 1)), 1, 0, 1);
    last_.z_loss = ops::mean(ops::mul(lse, lse));
  } else {  // no token (a mean over none would be NaN): no loss
    last_.aux_loss = Variable(zeros({}, DType::f32, dev));
    last_.z_loss = Variable(zeros({}, DType::f32, dev));
  }
  last_.expert_of = ids;
  last_.gates = gates;
  last_.tokens_per_expert = counts;
  last_.routed = ids;
  last_.dropped = 0;
  if (opt_.capacity_factor > 0.0) {
    const int64_t cap = expert_capacity(opt_.capacity_factor, t * k, experts);
    std::vector<int64_t> routed = ids.to(Device::cpu()).to_vector<int64_t>();  // syncs
    std::vector<float> kept(static_cast<size_t>(experts), 0.f);
    last_.dropped = apply_capacity(routed, t, k, cap, kept);
    last_.routed = from_vector(routed, {t, k}, dev);
    last_.tokens_per_expert = from_vector(kept, dev);
  }

  const ops::MoeFfnOptions ffn{.activation = expert_activation(opt_.activation)};
  Variable y = opt_.expert_comm && opt_.expert_comm->size() > 1
                   ? ops::moe_ffn_expert_parallel(to_compute(x2), last_.routed, gates, to_compute(w1_), to_compute(w2_),
                                                  *opt_.expert_comm, ffn)
                   : ops::moe_ffn(to_compute(x2), last_.routed, gates, to_compute(w1_), to_compute(w2_), ffn);
  Shape out = shape;
  y = ops::reshape(y, out);
  return ops::dropout(y, opt_.dropout, is_training());
}

}  // namespace pit::nn
