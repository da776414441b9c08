#include "trainer/train/moe_stats.h"

#include <algorithm>
#include <cstdio>

#include "ops/functional.h"
#include "ops/kernels.h"
#include "trainer/nn/transformer.h"

namespace pit::train {
namespace {

Tensor accumulate(const Tensor& sum, const Tensor& v) {
  return sum.defined() ? kernels::binary(BinaryOp::add, sum, v) : v.clone();
}

}  // namespace

MoeStats::MoeStats(const nn::Module& model, Communicator* comm) : comm_(comm) {
  if (const auto* lm = dynamic_cast<const nn::TransformerLM*>(&model)) layers_ = lm->moe_layers();
}

Variable MoeStats::objective(const Variable& loss, double aux_coef, double z_coef) {
  if (!active()) return loss;
  Variable aux, z;
  for (const auto& layer : layers_) {
    const nn::MoE::Routing& r = layer->last_routing();
    aux = aux.defined() ? ops::add(aux, r.aux_loss) : r.aux_loss;
    z = z.defined() ? ops::add(z, r.z_loss) : r.z_loss;
  }
  aux_sum_ = accumulate(aux_sum_, aux.data());
  z_sum_ = accumulate(z_sum_, z.data());
  Variable out = ops::cast(loss, DType::f32);
  if (aux_coef > 0) out = ops::add(out, ops::mul(aux, aux_coef));
  if (z_coef > 0) out = ops::add(out, ops::mul(z, z_coef));
  return out;
}

std::string MoeStats::flush(MetricsRecord& rec, int64_t window) {
  if (!active() || !aux_sum_.defined()) return "";
  const double n = static_cast<double>(std::max<int64_t>(window, 1));
  // One host vector: the two window losses, the drops, then every layer's tokens per expert.
  std::vector<double> v = {aux_sum_.item<double>() / n, z_sum_.item<double>() / n, 0.0};  // syncs
  for (const auto& layer : layers_) {
    v[2] += static_cast<double>(layer->last_routing().dropped);
    for (const float c : layer->last_routing().tokens_per_expert.to(Device::cpu()).to_vector<float>()) v.push_back(c);
  }
  if (comm_ && comm_->size() > 1) {
    Tensor all = from_vector(v, {static_cast<int64_t>(v.size())});
    comm_->all_reduce(all, ReduceOp::sum);
    v = all.to_vector<double>();
    v[0] /= comm_->size();
    v[1] /= comm_->size();
  }
  const double aux = v[0], z = v[1];
  const auto dropped = static_cast<int64_t>(v[2]);
  double lo = 0, hi = 0;
  for (size_t i = 3; i < v.size(); ++i) {
    lo = i == 3 ? v[i] : std::min(lo, v[i]);
    hi = i == 3 ? v[i] : std::max(hi, v[i]);
  }
  rec.add("moe_aux_loss", aux).add("moe_z_loss", z);
  rec.add("tokens_per_expert_min", static_cast<int64_t>(lo)).add("tokens_per_expert_max", static_cast<int64_t>(hi));
  rec.add("dropped_tokens", dropped);
  aux_sum_ = Tensor();
  z_sum_ = Tensor();
  char text[128];
  std::snprintf(text, sizeof text, " | aux %.3f | z %.3f | tokens/expert %lld-%lld%s", aux, z, static_cast<long long>(lo),
                static_cast<long long>(hi), dropped > 0 ? (" | dropped " + std::to_string(dropped)).c_str() : "");
  return text;
}

}  // namespace pit::train
