// The wgmma engine (ops/pit/cuda/wg_core.cuh: WgCfg, Acc, mainloop, and the 128-byte-swizzled
// SRead layouts of sread.cuh) on its own, against a host loop: A K-major and M-major, B N-major and
// K-major, bf16 and f16, ragged shapes (not multiples of the 128 x 128 x 64 tile) and shapes whose
// rows are not 16-byte aligned (the element path of SRead). Outputs are poisoned first.
// Inputs are multiples of 1/64 in [-2, 2), exact in bf16 and f16; products accumulate in f32, so
// the only error is the final rounding to the output type (2^-8 relative for bf16).
#include <cuda_runtime.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "ops/pit/cuda/swrite.cuh"
#include "ops/pit/cuda/wg_core.cuh"
#include "tests/core/worst.h"
#include "tests/gpu.h"

using namespace pit;
namespace dev = pit::sparse::cuda::dev;

namespace {

// A given as [M, K] (aKM: k-major tile rows are m) or as A^T [K, M] (tile rows are k).
template <typename T, bool kAK, bool kBK>
__global__ void __launch_bounds__(256, 1) kern(const T* a, const T* b, T* c, int m, int n, int k, int n_tiles) {
  using Cfg = dev::WgCfg<T, kAK, kBK, 4>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 raw[];
  T* smem = dev::tile_base<Cfg>(raw);
  const int tid = threadIdx.x, mt = blockIdx.x / n_tiles, nt = blockIdx.x % n_tiles;
  const int64_t m0 = int64_t(mt) * BM, n0 = int64_t(nt) * BN;
  using AR = std::conditional_t<kAK, dev::StridedReader<T, BK, BM, typename Cfg::ALayout, 256, false>,
                                dev::StridedReader<T, BM, BK, typename Cfg::ALayout, 256, true>>;
  using BR = std::conditional_t<kBK, dev::StridedReader<T, BK, BN, typename Cfg::BLayout, 256, false>,
                                dev::StridedReader<T, BN, BK, typename Cfg::BLayout, 256, true>>;
  AR ra; BR rb;
  ra.init(tid, [&](int r, int cc) {
    if constexpr (kAK) return dev::Src<T>{a + int64_t(r) * m + m0 + cc, dev::valid_n(m - m0 - cc, 8)};
    else return dev::Src<T>{a + (m0 + r) * k + cc, m0 + r < m ? 8 : 0};
  });
  rb.init(tid, [&](int r, int cc) {
    if constexpr (kBK) return dev::Src<T>{b + int64_t(r) * n + n0 + cc, dev::valid_n(n - n0 - cc, 8)};
    else return dev::Src<T>{b + (n0 + r) * k + cc, n0 + r < n ? 8 : 0};
  });
  const bool fa = (kAK ? m : k) % 8 == 0, fb = (kBK ? n : k) % 8 == 0;
  const auto load = [&](int kt, T* sa, T* sb) {
    const int kb = kt * BK;
    ra.load(sa, tid, kAK ? int64_t(kb) * m : kb, k - kb, fa, a);
    rb.load(sb, tid, kBK ? int64_t(kb) * n : kb, k - kb, fb, b);
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, (k + BK - 1) / BK, load, dev::NoFixup{});
  float* st = reinterpret_cast<float*>(smem);
  acc.to_smem(st);
  __syncthreads();
  dev::swrite_staged<T, BM, BN, 256>(st, Cfg::kEpiLd, [&](int r) {
    return m0 + r < m ? dev::RowDst<T>{c + (m0 + r) * n, 1.f} : dev::RowDst<T>{nullptr, 0.f};
  }, n0, n, dev::EpiArgs{});
}

template <typename T, bool kAK, bool kBK>
void check(int m, int n, int k) {
  const std::string what = std::string(std::is_same_v<T, Half> ? "f16" : "bf16") + (kAK ? " A M-major" : " A K-major") +
                           (kBK ? " B N-major " : " B K-major ") + std::to_string(m) + "x" + std::to_string(n) + "x" +
                           std::to_string(k);
  std::vector<T> A(size_t(m) * k), B(size_t(k) * n), At(size_t(k) * m), Bt(size_t(n) * k);
  uint32_t s = 7 + m + n + k;
  const auto rnd = [&]() {
    s = s * 1664525u + 1013904223u;
    return T(static_cast<float>((s >> 9) & 0xff) / 64.f - 2.f);
  };
  for (int i = 0; i < m; ++i)
    for (int x = 0; x < k; ++x) At[size_t(x) * m + i] = A[size_t(i) * k + x] = rnd();
  for (int x = 0; x < k; ++x)
    for (int j = 0; j < n; ++j) Bt[size_t(j) * k + x] = B[size_t(x) * n + j] = rnd();
  T *da = nullptr, *db = nullptr, *dc = nullptr;
  ASSERT_EQ(cudaMalloc(&da, A.size() * sizeof(T)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&db, B.size() * sizeof(T)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dc, size_t(m) * n * sizeof(T)), cudaSuccess);
  cudaMemcpy(da, kAK ? At.data() : A.data(), A.size() * sizeof(T), cudaMemcpyHostToDevice);
  cudaMemcpy(db, kBK ? B.data() : Bt.data(), B.size() * sizeof(T), cudaMemcpyHostToDevice);
  cudaMemset(dc, 0xff, size_t(m) * n * sizeof(T));  // NaN: unwritten outputs fail
  using Cfg = dev::WgCfg<T, kAK, kBK, 4>;
  const int smem = static_cast<int>(Cfg::kSmemStaged + Cfg::kAlignSlack);
  ASSERT_EQ(cudaFuncSetAttribute(kern<T, kAK, kBK>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), cudaSuccess);
  const int n_tiles = (n + Cfg::BN - 1) / Cfg::BN;
  kern<T, kAK, kBK><<<(m + Cfg::BM - 1) / Cfg::BM * n_tiles, Cfg::kThreads, smem>>>(da, db, dc, m, n, k, n_tiles);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
  std::vector<T> C(size_t(m) * n);
  cudaMemcpy(C.data(), dc, C.size() * sizeof(T), cudaMemcpyDeviceToHost);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  double worst = 0;
  int64_t wi = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double ref = 0;
      for (int x = 0; x < k; ++x) ref += double(float(A[size_t(i) * k + x])) * float(B[size_t(x) * n + j]);
      const double err = std::fabs(double(float(C[size_t(i) * n + j])) - ref) / (1 + std::fabs(ref));
      if (pit::test::worse(err, worst)) worst = err, wi = int64_t(i) * n + j;  // NaN sticks
    }
  const double tol = std::is_same_v<T, Half> ? 2e-3 : 8e-3;
  EXPECT_LE(worst, tol)
      << what << ": worst relative error at (" << wi / n << ", " << wi % n << ")";
}

}  // namespace

TEST(PitWgmmaEngineCuda, EveryLayoutAgainstTheHost) {
  PIT_REQUIRE_CUDA();
  for (const std::array<int, 3>& s : {std::array<int, 3>{256, 256, 256}, {200, 136, 328}, {130, 264, 72}}) {
    const int m = s[0], n = s[1], k = s[2];
    check<BFloat16, false, true>(m, n, k);
    check<BFloat16, true, true>(m, n, k);
    check<BFloat16, false, false>(m, n, k);
    check<Half, false, true>(m, n, k);
    check<Half, true, true>(m, n, k);
    check<Half, false, false>(m, n, k);
  }
}

TEST(PitWgmmaEngineCuda, UnalignedRowsTakeTheElementPath) {
  PIT_REQUIRE_CUDA();
  check<BFloat16, false, true>(97, 50, 77);
  check<BFloat16, true, false>(61, 44, 93);
}
