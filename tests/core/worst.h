#pragma once
// The worst error so far, with NaN sticking: once an error is NaN (an unwritten, poisoned or
// overflowed element), the worst stays NaN, so "worst <= tol" fails. std::max(worst, err) and
// "if (err > worst)" both drop a NaN and let the check pass.
#include <cmath>

namespace pit::test {

// Whether err replaces worst.
inline bool worse(double err, double worst) { return std::isnan(err) || (!std::isnan(worst) && err > worst); }

inline double worst_of(double worst, double err) { return worse(err, worst) ? err : worst; }

}  // namespace pit::test
