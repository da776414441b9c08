// Tensor copies between dtypes and devices: copy_, contiguous, clone, to.
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "core/cpu_copy.h"
#include "core/cuda/backend.h"
#include "core/tensor.h"

namespace pit {
namespace {

bool dense(const Tensor& t) { return t.is_contiguous(); }

// Kernel descriptors of dst and src (one shape) with the dims both walk alike merged and dims of
// size 1 dropped (the same logical order of elements): tensors of more than kMaxDims dims copy
// where their layouts merge into kMaxDims (a gradient's contiguous bookkeeping always does).
std::pair<StridedDesc, StridedDesc> pair_descs(const Tensor& dst, const Tensor& src) {
  std::vector<int64_t> sizes = dst.shape(), sd = dst.strides(), ss = src.strides();
  const int n = coalesce_pair(static_cast<int>(sizes.size()), sizes.data(), sd.data(), ss.data());
  PIT_CHECK(n <= kMaxDims, "copying tensors of shape ", shape_str(dst.shape()), " (strides ", shape_str(dst.strides()),
            " and ", shape_str(src.strides()), "): kernels take up to ", kMaxDims,
            " dims, and these layouts merge into no fewer than ", n, "; copy a tensor of at most ", kMaxDims,
            " dims (a reshape of a contiguous one) instead");
  std::pair<StridedDesc, StridedDesc> d;
  for (auto [desc, t, strides] : {std::tuple{&d.first, &dst, &sd}, std::tuple{&d.second, &src, &ss}}) {
    desc->data = t->numel() > 0 ? t->data_ptr() : nullptr;
    desc->dtype = t->dtype();
    desc->ndim = n;
    for (int i = 0; i < n; ++i) {
      desc->sizes[i] = sizes[static_cast<size_t>(i)];
      desc->strides[i] = (*strides)[static_cast<size_t>(i)];
    }
  }
  return d;
}

void copy_strided(const Tensor& dst, const Tensor& src, std::optional<StreamRef> stream) {
  const auto [d, s] = pair_descs(dst, src);
  if (stream) cuda::copy_strided(d, s, *stream);
  else cpu::copy_strided(d, s);
}

// dst (CUDA) <- src (CPU): convert and pack on the host, then one upload.
void copy_host_to_device(Tensor& dst, const Tensor& src) {
  const Tensor host = src.to(dst.dtype()).contiguous();
  const StreamRef stream = current_stream(dst.device());
  if (dense(dst)) {
    cuda::memcpy_h2d(dst.data_ptr(), host.data_ptr(), dst.nbytes(), stream);
    return;
  }
  const Tensor staged = Tensor::empty(dst.shape(), dst.dtype(), dst.device());
  cuda::memcpy_h2d(staged.data_ptr(), host.data_ptr(), staged.nbytes(), stream);
  copy_strided(dst, staged, stream);
}

// dst (CPU) <- src (CUDA): convert and pack on the device, then one download (which waits).
void copy_device_to_host(Tensor& dst, const Tensor& src) {
  const Tensor packed = src.to(dst.dtype()).contiguous();
  const StreamRef stream = current_stream(src.device());
  if (dense(dst)) {
    cuda::memcpy_d2h(dst.data_ptr(), packed.data_ptr(), dst.nbytes(), stream);
    return;
  }
  const Tensor staged = Tensor::empty(dst.shape(), dst.dtype(), Device::cpu());
  cuda::memcpy_d2h(staged.data_ptr(), packed.data_ptr(), staged.nbytes(), stream);
  copy_strided(dst, staged, std::nullopt);
}

// dst and src on different GPUs: pack on the source, wait for it, copy peer to peer, then
// convert/scatter on the destination.
void copy_device_to_device(Tensor& dst, const Tensor& src) {
  const Tensor packed = src.contiguous();
  current_stream(src.device()).synchronize();
  const Tensor staged = Tensor::empty(dst.shape(), src.dtype(), dst.device());
  const StreamRef stream = current_stream(dst.device());
  cuda::memcpy_d2d(staged.data_ptr(), dst.device().index, packed.data_ptr(), src.device().index,
                   staged.nbytes(), stream);
  // packed (a temporary when src was packed, or src itself) returns to the source GPU's pool when
  // it dies: the peer copy, queued on the destination's stream, must have read it by then.
  stream.synchronize();
  copy_strided(dst, staged, stream);
}

// Whether a tensor of shape `from` expands to `to` (numpy broadcasting, `from` not widened).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 1; i <= from.size(); ++i)
    if (from[from.size() - i] != to[to.size() - i] && from[from.size() - i] != 1) return false;
  return true;
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& src_in) {
  PIT_CHECK(defined() && src_in.defined(), "copy_: both tensors must be defined");
  PIT_CHECK(src_in.numel() == 1 || !has_shared_elements(), "copy_: this tensor (shape ", shape_str(shape_),
            ", strides ", shape_str(strides_), ") is a broadcast view whose elements share memory, so several "
            "values would land in one element; copy into a contiguous() tensor");
  PIT_CHECK(broadcasts_to(src_in.shape(), shape_), "copy_: a source of shape ",
            shape_str(src_in.shape()), " does not broadcast to this tensor's shape ", shape_str(shape_));
  Tensor src = src_in.shape() == shape_ ? src_in : src_in.expand(shape_);
  if (numel() == 0) return *this;
  if (shares_storage(src)) src = src.clone();  // overlapping source and destination
  const Device dd = device(), sd = src.device();
  if (dd.is_cpu() && sd.is_cpu()) {
    copy_strided(*this, src, std::nullopt);
  } else if (dd.is_cuda() && sd.is_cpu()) {
    copy_host_to_device(*this, src);
  } else if (dd.is_cpu() && sd.is_cuda()) {
    copy_device_to_host(*this, src);
  } else if (dd == sd) {
    copy_strided(*this, src, current_stream(dd));
  } else {
    copy_device_to_device(*this, src);
  }
  return *this;
}

Tensor Tensor::contiguous() const {
  PIT_CHECK(defined(), "contiguous() of an undefined tensor");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  PIT_CHECK(defined(), "clone() of an undefined tensor");
  Tensor out = empty(shape_, dtype_, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device device) const { return to(device, dtype_); }
Tensor Tensor::to(DType dtype) const { return to(device(), dtype); }

Tensor Tensor::to(Device target, DType dtype) const {
  PIT_CHECK(defined(), "to() of an undefined tensor");
  if (target == device() && dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype, target);
  out.copy_(*this);
  return out;
}

Tensor& Tensor::fill_(double value) {
  PIT_CHECK(defined(), "fill_() of an undefined tensor");
  if (numel() == 0) return *this;
  if (!is_contiguous()) return copy_(full({}, value, dtype_, device()));
  if (device().is_cpu())
    cpu::fill(data_ptr(), numel(), dtype_, value);
  else
    cuda::fill(data_ptr(), numel(), dtype_, value, current_stream(device()));
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  PIT_CHECK(defined() && other.defined(), "add_: both tensors must be defined");
  PIT_CHECK(device() == other.device(), "add_: tensors on ", device(), " and ", other.device(),
            "; move one with to(device) first");
  PIT_CHECK(!has_shared_elements(), "add_: this tensor (shape ", shape_str(shape_), ", strides ",
            shape_str(strides_), ") is a broadcast view whose elements share memory, so adding "
            "into it would add several values into one element; add into a contiguous() copy");
  Tensor src = other.shape() == shape_ ? other : other.expand(shape_);
  if (numel() == 0) return *this;
  if (shares_storage(src)) src = src.clone();
  const auto [d, s] = pair_descs(*this, src);
  if (device().is_cpu())
    cpu::add_strided(d, s, alpha);
  else
    cuda::add_strided(d, s, alpha, current_stream(device()));
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

}  // namespace pit
