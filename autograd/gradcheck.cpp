#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "core/random.h"

namespace pit {
namespace {

double project(const Tensor& out, const std::vector<double>& v) {
  const Tensor o = out.contiguous();
  const double* p = o.data<double>();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * p[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  std::vector<Variable> vars;
  for (size_t i = 0; i < inputs.size(); ++i)
    vars.emplace_back(inputs[i].to(Device::cpu(), DType::f64).clone(), true,
                      "input" + std::to_string(i));

  const Variable out = fn(vars);
  PIT_CHECK(out.defined() && out.dtype() == DType::f64 && out.device().is_cpu(),
            "gradcheck: fn must return an f64 CPU Variable computed from its inputs");
  PIT_CHECK(out.requires_grad(), "gradcheck: fn's output does not depend on any input");

  // A fixed random projection; signs vary so that errors cannot cancel by symmetry.
  std::vector<double> v(static_cast<size_t>(out.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = philox_normal(opt.seed, 0, i);
  out.backward(from_vector(v, out.shape()).to(DType::f64));

  GradcheckResult result;
  NoGradGuard no_grad;
  for (size_t k = 0; k < vars.size(); ++k) {
    const Tensor analytic = vars[k].grad().defined()
                                ? vars[k].grad().contiguous()
                                : zeros(vars[k].shape(), DType::f64);
    double* x = vars[k].data().data<double>();
    const double* a = analytic.data<double>();
    for (int64_t j = 0; j < vars[k].numel(); ++j) {
      const double saved = x[j];
      x[j] = saved + opt.eps;
      const double plus = project(fn(vars).data(), v);
      x[j] = saved - opt.eps;
      const double minus = project(fn(vars).data(), v);
      x[j] = saved;
      const double numeric = (plus - minus) / (2.0 * opt.eps);
      const double abs_err = std::abs(a[j] - numeric);
      const double rel_err = abs_err / std::max(std::abs(numeric), 1e-12);
      const bool bad = !(abs_err <= opt.atol + opt.rtol * std::abs(numeric));  // NaN fails too
      if (abs_err > result.max_abs_error || (bad && result.ok)) {
        std::ostringstream os;
        os << "input " << k << " (shape " << shape_str(vars[k].shape()) << ") element " << j
           << ": backward " << a[j] << ", finite difference " << numeric << ", abs error "
           << abs_err << ", rel error " << rel_err;
        if (bad || result.ok) result.report = os.str();
      }
      result.max_abs_error = std::max(result.max_abs_error, abs_err);
      result.max_rel_error = std::max(result.max_rel_error, std::isfinite(rel_err) ? rel_err : 0.0);
      if (bad) result.ok = false;
    }
  }
  result.report = (result.ok ? "gradcheck passed; largest error at " : "gradcheck FAILED at ") +
                  result.report;
  return result;
}

}  // namespace pit
