// Readable printing: "tensor(shape=[2, 3], dtype=f32, device=cpu)" and the values, with long
// dims summarised as first ... last.
#include <cstdio>
#include <ostream>
#include <sstream>

#include "core/tensor.h"

namespace pit {
namespace {

constexpr int64_t kSummarizeAbove = 1000;  // elements; bigger tensors show edges only
constexpr int64_t kEdge = 3;               // items kept at each end of a summarised dim

struct Printer {
  const Tensor& values;  // contiguous, CPU, f64 or i64
  bool floating;
  bool summarize;
  std::ostream& os;

  void element(int64_t flat) {
    char buf[32];
    if (floating)
      std::snprintf(buf, sizeof buf, "%.6g", values.data<double>()[flat]);
    else
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(values.data<int64_t>()[flat]));
    os << buf;
  }

  void dim(int64_t d, int64_t base, int indent) {
    const int64_t n = values.size(d), stride = values.stride(d);
    const bool last = d == values.dim() - 1;
    os << '[';
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 2 * kEdge && i == kEdge) {
        os << (last ? "..., " : "...,\n" + std::string(indent + 1, ' '));
        i = n - kEdge;
      }
      if (last)
        element(base + i * stride);
      else
        dim(d + 1, base + i * stride, indent + 1);
      if (i + 1 < n) os << (last ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    os << ']';
  }
};

}  // namespace

std::string Tensor::str() const {
  std::ostringstream os;
  os << *this;
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype())
     << ", device=" << t.device() << ")\n";
  const bool floating = is_floating(t.dtype());
  const Tensor values = t.to(Device::cpu(), floating ? DType::f64 : DType::i64).contiguous();
  if (t.dim() == 0) {
    Printer{values, floating, false, os}.element(0);
    return os;
  }
  Printer{values, floating, t.numel() > kSummarizeAbove, os}.dim(0, 0, 0);
  return os;
}

}  // namespace pit
