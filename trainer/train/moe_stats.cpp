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

MoeStats::MoeStats(const nn::Module& model) {
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
  const double aux = aux_sum_.item<double>() / n, z = z_sum_.item<double>() / n;  // syncs
  double lo = 0, hi = 0;
  bool first = true;
  int64_t dropped = 0;
  for (const auto& layer : layers_) {
    dropped += layer->last_routing().dropped;
    const std::vector<float> counts = layer->last_routing().tokens_per_expert.to(Device::cpu()).to_vector<float>();
    for (const float c : counts) {
      lo = first ? c : std::min<double>(lo, c);
      hi = first ? c : std::max<double>(hi, c);
      first = false;
    }
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
