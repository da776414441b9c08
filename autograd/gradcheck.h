#pragma once
// gradcheck: backward() against central finite differences, in f64 on the CPU.
//
// The check projects the output on a fixed random direction v (L = <v, fn(x)>), so one backward
// (seeded with v) gives dL/dx for every input element, and two evaluations of fn per element
// give its finite difference. An element passes when |analytic - numeric| <= atol + rtol*|numeric|.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace pit {

struct GradcheckOptions {
  double eps = 1e-6;   // f64 central differences: truncation ~eps^2, rounding ~1e-16/eps
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 1234;  // of the projection direction v
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;
  std::string report;  // the worst element: input, index, analytic and numeric values
  explicit operator bool() const { return ok; }
};

// `inputs` are copied to f64 CPU leaves that require grad and passed to fn in order.
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace pit
