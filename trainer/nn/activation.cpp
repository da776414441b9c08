#include "trainer/nn/activation.h"

#include <string>

#include "core/error.h"
#include "ops/functional.h"

namespace pit::nn {
namespace {

constexpr Activation kActivations[] = {Activation::relu, Activation::gelu, Activation::gelu_tanh,
                                       Activation::silu, Activation::tanh};
constexpr NormKind kNorms[] = {NormKind::layernorm, NormKind::rmsnorm};

}  // namespace

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
    case Activation::silu: return "silu";
    case Activation::tanh: return "tanh";
  }
  return "?";
}

Activation parse_activation(std::string_view name) {
  std::string allowed;
  for (const Activation a : kActivations) {
    if (name == activation_name(a)) return a;
    allowed += (allowed.empty() ? "" : ", ") + std::string(activation_name(a));
  }
  PIT_THROW("unknown activation '", name, "'; allowed: ", allowed);
}

Variable activate(Activation a, const Variable& x) {
  switch (a) {
    case Activation::relu: return ops::relu(x);
    case Activation::gelu: return ops::gelu(x, ops::GeluApprox::none);
    case Activation::gelu_tanh: return ops::gelu(x, ops::GeluApprox::tanh);
    case Activation::silu: return ops::silu(x);
    case Activation::tanh: return ops::tanh(x);
  }
  PIT_THROW("activate: invalid Activation value ", static_cast<int>(a));
}

const char* norm_name(NormKind kind) {
  switch (kind) {
    case NormKind::layernorm: return "layernorm";
    case NormKind::rmsnorm: return "rmsnorm";
  }
  return "?";
}

NormKind parse_norm(std::string_view name) {
  std::string allowed;
  for (const NormKind k : kNorms) {
    if (name == norm_name(k)) return k;
    allowed += (allowed.empty() ? "" : ", ") + std::string(norm_name(k));
  }
  PIT_THROW("unknown norm '", name, "'; allowed: ", allowed);
}

}  // namespace pit::nn
