// The declared PIT rules (ops/pit/rules.h). Each entry is proven by tests/ops/pit/rules_test.cpp.
#include "ops/pit/rules.h"

#include "core/error.h"

namespace pit::sparse {
namespace {

constexpr Primitive kR = Primitive::sread;
constexpr Primitive kRW = Primitive::sread_swrite;

// An elementwise op on [rows, cols] inputs: every axis free.
OpRule elementwise(const std::string& op, int inputs) {
  OpRule r{op, inputs, {}};
  AxisRule rows{"rows", {}, 0, kRW, false}, cols{"cols", {}, 1, kRW, false};
  for (int i = 0; i < inputs; ++i) {
    rows.inputs.push_back({i, 0});
    cols.inputs.push_back({i, 1});
  }
  r.axes = {rows, cols};
  return r;
}

std::vector<OpRule> make_rules() {
  std::vector<OpRule> r;
  // C[M, N] = A[M, K] B[K, N]; pit_matmul (every index kind) declares the same.
  for (const char* op : {"matmul", "pit_matmul"})
    r.push_back({op, 2, {{"M", {{0, 0}}, 0, kRW}, {"K", {{0, 1}, {1, 0}}, -1, kR}, {"N", {{1, 1}}, 1, kRW}}});
  // y[T, out] = x[T, in] W[out, in]^T + b[out]: tokens free, in reduced, out free (W's rows, b).
  for (const char* op : {"linear", "pit_linear"})
    r.push_back({op, 3, {{"tokens", {{0, 0}}, 0, kRW}, {"in", {{0, 1}, {1, 1}}, -1, kR},
                         {"out", {{1, 0}, {2, 0}}, 1, kRW}}});
  for (const char* op : {"relu", "gelu", "exp", "tanh", "silu"}) r.push_back(elementwise(op, 1));
  for (const char* op : {"add", "mul", "maximum"}) r.push_back(elementwise(op, 2));
  // Reductions over cols ([rows, cols] -> [rows]): cols reduced (commutative, associative).
  for (const char* op : {"sum_cols", "max_cols"})
    r.push_back({op, 1, {{"rows", {{0, 0}}, 0, kRW}, {"cols", {{0, 1}}, -1, kR}}});
  // Softmax family along cols: rows free; cols equivariant only when gathered whole.
  for (const char* op : {"softmax", "log_softmax"})
    r.push_back({op, 1, {{"rows", {{0, 0}}, 0, kRW}, {"cols", {{0, 1}}, 1, kRW, true}}});
  // Layernorm over features with affine weight and bias [features].
  r.push_back({"layernorm", 3, {{"rows", {{0, 0}}, 0, kRW}, {"features", {{0, 1}, {1, 0}, {2, 0}}, 1, kRW, true}}});
  // Cross-entropy per row (logits [N, C], targets [N]): rows free (per-row losses), and the
  // mean over rows is invariant.
  r.push_back({"cross_entropy_rows", 2, {{"rows", {{0, 0}, {1, 0}}, 0, kRW}}});
  r.push_back({"cross_entropy_mean", 2, {{"rows", {{0, 0}, {1, 0}}, -1, kR}}});
  return r;
}

}  // namespace

const char* primitive_name(Primitive p) { return p == Primitive::sread ? "SRead" : "SRead+SWrite"; }

const std::vector<OpRule>& pit_rules() {
  static const std::vector<OpRule> rules = make_rules();
  return rules;
}

const OpRule& rule_for(const std::string& op) {
  std::string known;
  for (const OpRule& r : pit_rules()) {
    if (r.op == op) return r;
    known += (known.empty() ? "" : ", ") + r.op;
  }
  PIT_THROW("rule_for: no PIT rule for op '", op, "'; declared: ", known);
}

}  // namespace pit::sparse
