// Compiled with -fno-math-errno (ops/CMakeLists.txt): erff, expf and tanhf then have no side
// effect, and with the declarations below GCC calls libmvec's 4-wide (SSE) variants.
#include "ops/cpu/activation_rows.h"

#include <cmath>

#if PIT_HAVE_LIBMVEC
extern "C" {
float erff(float) __attribute__((simd("notinbranch")));
float expf(float) __attribute__((simd("notinbranch")));
float tanhf(float) __attribute__((simd("notinbranch")));
}
#endif

namespace pit::cpu {
namespace {

constexpr float kRsqrt2 = 0.7071067811865476f;       // 1 / sqrt(2)
constexpr float kRsqrt2Pi = 0.3989422804014327f;     // 1 / sqrt(2 pi)
const float kGeluK0 = gelu_k0<float>(), kGeluK1 = gelu_k1<float>();

}  // namespace

void activate_f32(UnaryOp act, float* v, int64_t n) {
  switch (act) {
    case UnaryOp::relu:
      for (int64_t i = 0; i < n; ++i) v[i] = v[i] <= 0.0f ? 0.0f : v[i];  // NaN stays NaN
      return;
    case UnaryOp::gelu_erf:
      for (int64_t i = 0; i < n; ++i) v[i] = 0.5f * v[i] * (1.0f + erff(v[i] * kRsqrt2));
      return;
    case UnaryOp::gelu_tanh:
      for (int64_t i = 0; i < n; ++i) {
        const float x = v[i];
        v[i] = 0.5f * x * (1.0f + tanhf(kGeluK0 * (x + kGeluK1 * x * x * x)));
      }
      return;
    case UnaryOp::silu:
      for (int64_t i = 0; i < n; ++i) v[i] = v[i] / (1.0f + expf(-v[i]));
      return;
    default:
      for (int64_t i = 0; i < n; ++i) v[i] = apply_unary<float>(act, v[i], 0.0f);
  }
}

void activation_derivative_f32(UnaryOp act, const float* x, const float* y, float* d, int64_t n) {
  switch (act) {
    case UnaryOp::relu:
      for (int64_t i = 0; i < n; ++i) d[i] = x[i] > 0.0f ? 1.0f : 0.0f;
      return;
    case UnaryOp::gelu_erf:
      for (int64_t i = 0; i < n; ++i)
        d[i] = 0.5f * (1.0f + erff(x[i] * kRsqrt2)) + x[i] * expf(-0.5f * x[i] * x[i]) * kRsqrt2Pi;
      return;
    case UnaryOp::gelu_tanh:
      for (int64_t i = 0; i < n; ++i) {
        const float z = x[i], t = tanhf(kGeluK0 * (z + kGeluK1 * z * z * z));
        const float dinner = kGeluK0 * (1.0f + 3.0f * kGeluK1 * z * z);
        d[i] = 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * dinner;
      }
      return;
    case UnaryOp::silu:
      for (int64_t i = 0; i < n; ++i) {
        const float s = 1.0f / (1.0f + expf(-x[i]));
        d[i] = s * (1.0f + x[i] * (1.0f - s));
      }
      return;
    default:
      for (int64_t i = 0; i < n; ++i) d[i] = unary_derivative<float>(act, x[i], y[i], 0.0f);
  }
}

}  // namespace pit::cpu
