#pragma once
// C++ operators for the arithmetic ops on Variables.
#include "ops/functional.h"

namespace pit {

inline Variable operator+(const Variable& a, const Variable& b) { return ops::add(a, b); }
inline Variable operator-(const Variable& a, const Variable& b) { return ops::sub(a, b); }
inline Variable operator*(const Variable& a, const Variable& b) { return ops::mul(a, b); }
inline Variable operator/(const Variable& a, const Variable& b) { return ops::div(a, b); }
inline Variable operator-(const Variable& a) { return ops::neg(a); }
inline Variable operator+(const Variable& a, double s) { return ops::add(a, s); }
inline Variable operator+(double s, const Variable& a) { return ops::add(a, s); }
inline Variable operator-(const Variable& a, double s) { return ops::add(a, -s); }
inline Variable operator-(double s, const Variable& a) { return ops::unary(UnaryOp::rsub_scalar, a, s); }
inline Variable operator*(const Variable& a, double s) { return ops::mul(a, s); }
inline Variable operator*(double s, const Variable& a) { return ops::mul(a, s); }
inline Variable operator/(const Variable& a, double s) { return ops::mul(a, 1.0 / s); }
inline Variable operator/(double s, const Variable& a) { return ops::unary(UnaryOp::rdiv_scalar, a, s); }

}  // namespace pit
