#pragma once
// PIT rules: for every op the engine (or its users) computes sparsely, the axes along which the
// op is permutation invariant, and the primitive each axis needs:
//   - a reduction axis (K of a matmul, the summed axis of sum): permuting it in the inputs
//     leaves the output unchanged, so gathering micro-tiles along it needs SRead only;
//   - a free axis (M and N of a matmul, the rows of softmax): permuting it in the inputs
//     permutes the output alike, so a gather along it needs SRead in and SWrite out to restore
//     the order.
// Every declared rule is proven by tests/ops/pit/rules_test.cpp on random inputs: permute
// along the axis, compute, undo the permutation, compare with the unpermuted result.
#include <cstdint>
#include <string>
#include <vector>

namespace pit::sparse {

enum class Primitive : uint8_t { sread, sread_swrite };
const char* primitive_name(Primitive p);  // "SRead", "SRead+SWrite"

struct AxisRule {
  std::string axis;  // the op's name for it: "M", "K", "N", "rows", "cols", "classes" ...
  // The dims permuted together: (input index, dim) for every input carrying the axis.
  std::vector<std::pair<int, int64_t>> inputs;
  int64_t output_dim = -1;  // the output dim that is permuted alike; -1: reduced away (invariant)
  Primitive primitive = Primitive::sread;
  // True when the rule holds only if the whole axis is gathered (softmax and layernorm along
  // the normalised axis: a subset would change the normaliser).
  bool whole_axis = false;
};

struct OpRule {
  std::string op;  // "matmul", "relu", "sum_cols", ...
  int num_inputs = 1;
  std::vector<AxisRule> axes;
};

// The declared rules (2-D operands [rows, cols] unless the op says otherwise).
const std::vector<OpRule>& pit_rules();
// The rule of `op`; throws naming the known ops.
const OpRule& rule_for(const std::string& op);

}  // namespace pit::sparse
