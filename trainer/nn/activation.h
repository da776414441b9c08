#pragma once
// Activation and normalisation choices of the layers, with the names configs use.
#include <string_view>

#include "autograd/variable.h"

namespace pit::nn {

enum class Activation { relu, gelu, gelu_tanh, silu, tanh };
// "relu", "gelu" (exact erf form), "gelu_tanh", "silu", "tanh"; anything else throws naming
// the allowed names.
Activation parse_activation(std::string_view name);
const char* activation_name(Activation a);
Variable activate(Activation a, const Variable& x);

enum class NormKind { layernorm, rmsnorm };
NormKind parse_norm(std::string_view name);  // "layernorm", "rmsnorm"
const char* norm_name(NormKind kind);

}  // namespace pit::nn
