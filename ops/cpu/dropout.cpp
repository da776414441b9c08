// CPU dropout and its backward. One Philox block (four 32-bit lanes) gives the uniforms of four
// consecutive elements: element i uses block offset + i / 4, lane i % 4, exactly as
// philox_uniform(seed, offset, i), so the mask is the one the CUDA kernels draw.
#include "ops/cpu/dropout.h"

#include <algorithm>
#include <type_traits>

#include "core/convert.h"
#include "core/random.h"
#include "core/thread_pool.h"
#include "ops/cpu/compute_type.h"

namespace pit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;  // groups of four per parallel_for chunk

template <typename T>
void forward_typed(const DropoutArgs& a, const T* x, T* y, uint8_t* mask, uint64_t seed,
                   uint64_t offset) {
  using C = compute_t<T>;
  const C scale = static_cast<C>(a.scale);
  const int64_t groups = (a.n + 3) / 4;
  parallel_for(0, groups, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t g = lo; g < hi; ++g) {
      const Philox4x32 r = philox4x32_10(offset + static_cast<uint64_t>(g), 0, seed);
      const int64_t i0 = g * 4, count = std::min<int64_t>(4, a.n - i0);
      for (int64_t j = 0; j < count; ++j) {
        const bool keep = uniform_from_bits(r.v[j]) >= a.p;
        mask[i0 + j] = keep ? 1 : 0;
        y[i0 + j] = keep ? convert<T>(convert<C>(x[i0 + j]) * scale) : convert<T>(C(0));
      }
    }
  });
}

template <typename T>
void backward_typed(const DropoutArgs& a, const T* dy, const uint8_t* mask, T* dx) {
  using C = compute_t<T>;
  const C scale = static_cast<C>(a.scale);
  parallel_for(0, a.n, kGrain * 4, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      dx[i] = mask[i] ? convert<T>(convert<C>(dy[i]) * scale) : convert<T>(C(0));
  });
}

}  // namespace

void dropout(const DropoutArgs& a, const void* x, void* y, uint8_t* mask, uint64_t seed,
             uint64_t offset) {
  dispatch_floating(a.dtype, "dropout", [&]<typename T>() {
    forward_typed<T>(a, static_cast<const T*>(x), static_cast<T*>(y), mask, seed, offset);
  });
}

void dropout_backward(const DropoutArgs& a, const void* dy, const uint8_t* mask, void* dx) {
  dispatch_floating(a.dtype, "dropout_backward", [&]<typename T>() {
    backward_typed<T>(a, static_cast<const T*>(dy), mask, static_cast<T*>(dx));
  });
}

}  // namespace pit::cpu
