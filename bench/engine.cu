// pit-bench engine: the dense-tile engines under the PIT GEMMs on their own, as a plain row-gathered
// GEMM C = A B (bf16, f32 accumulation; every row of A listed, so no sparsity), against cuBLAS in
// the same run and checked against it:
//   - the mma.sync engine (ops/pit/cuda/gemm_core.cuh with the SRead cursors and the staged
//     SWrite) under several tile configs, the first being the one the PIT kernels use now;
//   - a cp.async-fed wgmma core (ops/cuda/wgmma_ptx.cuh): 128 x 128 x 64 tiles, two warpgroups of
//     m64n128k16, A K-major and B N-major in 128-byte-swizzled shared memory, S stages.
// Shapes: 4096^3 and a ragged 1000 x 776 x 328. This measures what the PIT kernels can reach at
// density 1 and so bounds their speed-up at any density.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/compare.h"
#include "bench/cublas_peer.h"
#include "bench/report.h"
#include "bench/timer.h"
#include "core/core.h"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/wg_core.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::bench {
namespace {

namespace dev = pit::sparse::cuda::dev;
using T = BFloat16;

struct Problem {
  int m, n, k;
};

// ---- the mma.sync engine: rows of A gathered through a row table, as in the M-gather kernel ----
template <class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) mma_engine_kernel(const T* a, const T* b, T* c, Problem pr,
                                                                  int n_tiles) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 smem_raw[];
  T* smem = dev::tile_base<Cfg>(smem_raw);
  __shared__ int64_t a_off[BM];
  const int tid = threadIdx.x;
  const int mt = blockIdx.x / n_tiles, nt = blockIdx.x % n_tiles;
  const int64_t m0 = int64_t{mt} * BM, n0 = int64_t{nt} * BN;
  for (int r = tid; r < BM; r += Cfg::kThreads) a_off[r] = m0 + r < pr.m ? (m0 + r) * pr.k : -1;
  __syncthreads();
  dev::StridedReader<T, BM, BK, typename Cfg::ALayout, Cfg::kThreads, true> ra;
  ra.init(tid, [&](int r, int cc) {
    const int64_t off = a_off[r];
    return dev::Src<T>{a + (off < 0 ? 0 : off) + cc, off < 0 ? 0 : Cfg::V};
  });
  dev::StridedReader<T, BK, BN, typename Cfg::BLayout, Cfg::kThreads, false> rb;
  rb.init(tid, [&](int r, int cc) {
    return dev::Src<T>{b + int64_t{r} * pr.n + n0 + cc, dev::valid_n(pr.n - n0 - cc, Cfg::V)};
  });
  const auto load = [&](int kt, T* sa, T* sb) {
    const int kb = kt * BK;
    ra.load(sa, tid, kb, pr.k - kb, true, a);
    rb.load(sb, tid, int64_t{kb} * pr.n, pr.k - kb, true, b);
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, (pr.k + BK - 1) / BK, load, dev::NoFixup{});
  float* staged = reinterpret_cast<float*>(smem);
  acc.to_smem(staged);
  __syncthreads();
  dev::swrite_staged<T, BM, BN, Cfg::kThreads>(staged, Cfg::kEpiLd, [&](int r) {
    return m0 + r < pr.m ? dev::RowDst<T>{c + (m0 + r) * pr.n, 1.f} : dev::RowDst<T>{nullptr, 0.f};
  }, n0, pr.n, dev::EpiArgs{});
}

// ---- the wgmma core ----
constexpr int kWgBM = 128, kWgBN = 128, kWgBK = 64, kWgThreads = 256;
constexpr int kWgABytes = kWgBM * kWgBK * 2, kWgBBytes = kWgBK * kWgBN * 2, kWgStage = kWgABytes + kWgBBytes;
constexpr int kWgLd = kWgBN + 8;  // staged epilogue row stride (floats)

template <int S>
__global__ void __launch_bounds__(kWgThreads, 1) wgmma_core_kernel(const T* a, const T* b, T* c, Problem pr,
                                                                   int n_tiles) {
  using namespace pit::cuda;
  extern __shared__ uint8_t wg_smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(wg_smem_raw) + 1023) & ~uintptr_t{1023});
  const int tid = threadIdx.x, wg = tid / 128;
  const int mt = blockIdx.x / n_tiles, nt = blockIdx.x % n_tiles;
  const int64_t m0 = int64_t{mt} * kWgBM, n0 = int64_t{nt} * kWgBN;
  const int num_k = (pr.k + kWgBK - 1) / kWgBK;
  // SRead into the swizzled layouts of wgmma_ptx.cuh; B atoms laid out [n atom][k atom].
  const auto load = [&](int kt, int buf) {
    uint8_t* sa = smem + buf * kWgStage;
    uint8_t* sb = sa + kWgABytes;
    const int kb = kt * kWgBK;
#pragma unroll
    for (int t = 0; t < 4; ++t) {  // A: 128 rows x 8 chunks
      const int i = tid + t * kWgThreads, r = i / 8, ch = i % 8;
      const bool ok = m0 + r < pr.m && kb + ch * 8 < pr.k;
      ptx::cp_async_16(sa + r * 128 + ((ch ^ (r & 7)) * 16), ok ? a + (m0 + r) * pr.k + kb + ch * 8 : a, ok ? 16 : 0);
    }
#pragma unroll
    for (int t = 0; t < 4; ++t) {  // B: 64 k rows x 16 chunks
      const int i = tid + t * kWgThreads, kr = i / 16, ch16 = i % 16;
      const int na = ch16 / 8, ch = ch16 % 8, kg = kr / 8, x = kr % 8;
      const bool ok = kb + kr < pr.k && n0 + ch16 * 8 < pr.n;
      ptx::cp_async_16(sb + na * 8192 + kg * 1024 + x * 128 + ((ch ^ x) * 16),
                       ok ? b + int64_t{kb + kr} * pr.n + n0 + ch16 * 8 : b, ok ? 16 : 0);
    }
  };
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.f;
  // Loads run S - 2 stages ahead: the buffer a stage overwrites was read by the MMA group two
  // stages back, which every warpgroup has waited for (wait<1>) before the barrier.
#pragma unroll
  for (int s = 0; s < S - 2; ++s) {
    if (s < num_k) load(s, s);
    ptx::cp_async_commit();
  }
  for (int kt = 0; kt < num_k; ++kt) {
    ptx::cp_async_wait<S - 3>();
    wgmma::fence_smem_for_async();
    __syncthreads();
    if (kt + S - 2 < num_k) load(kt + S - 2, (kt + S - 2) % S);
    ptx::cp_async_commit();
    const uint32_t sa = ptx::smem_u32(smem + (kt % S) * kWgStage) + wg * 64 * 128;
    const uint32_t sb = ptx::smem_u32(smem + (kt % S) * kWgStage + kWgABytes);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kWgBK / 16; ++kk)
      wgmma::mma_m64n128k16<false, 0, 1>(d, wgmma::desc_sw128(sa + kk * 32, 16, 1024),
                                    wgmma::desc_sw128(sb + kk * 2048, 8192, 1024), 1);
    wgmma::commit();
    wgmma::wait<1>();
  }
  wgmma::wait<0>();
  ptx::cp_async_wait<0>();
  __syncthreads();
  float* staged = reinterpret_cast<float*>(smem);
  const int lane = tid % 32, w = (tid / 32) % 4, g = lane / 4, q = lane % 4;
#pragma unroll
  for (int j = 0; j < kWgBN / 8; ++j) {
    const int r = wg * 64 + w * 16 + g, col = j * 8 + 2 * q;
    *reinterpret_cast<float2*>(staged + r * kWgLd + col) = make_float2(d[4 * j], d[4 * j + 1]);
    *reinterpret_cast<float2*>(staged + (r + 8) * kWgLd + col) = make_float2(d[4 * j + 2], d[4 * j + 3]);
  }
  __syncthreads();
  dev::swrite_staged<T, kWgBM, kWgBN, kWgThreads>(staged, kWgLd, [&](int r) {
    return m0 + r < pr.m ? dev::RowDst<T>{c + (m0 + r) * pr.n, 1.f} : dev::RowDst<T>{nullptr, 0.f};
  }, n0, pr.n, dev::EpiArgs{});
}

struct Launch {
  std::string name;
  std::function<void(const T*, const T*, T*, Problem)> run;
};

template <class Cfg>
Launch mma_engine(const std::string& name) {
  return {name, [](const T* a, const T* b, T* c, Problem pr) {
            auto* k = mma_engine_kernel<Cfg>;
            const size_t smem = Cfg::kSmemStaged + Cfg::kAlignSlack;
            PIT_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
            const int n_tiles = (pr.n + Cfg::BN - 1) / Cfg::BN, grid = (pr.m + Cfg::BM - 1) / Cfg::BM * n_tiles;
            k<<<grid, Cfg::kThreads, smem>>>(a, b, c, pr, n_tiles);
            PIT_CUDA_CHECK(cudaGetLastError());
          }};
}

template <int S>
Launch wgmma_core(const std::string& name) {
  return {name, [](const T* a, const T* b, T* c, Problem pr) {
            auto* k = wgmma_core_kernel<S>;
            const int smem = S * kWgStage + 1024;  // + alignment of the tiles to 1024 bytes
            PIT_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
            const int n_tiles = (pr.n + kWgBN - 1) / kWgBN, grid = (pr.m + kWgBM - 1) / kWgBM * n_tiles;
            k<<<grid, kWgThreads, smem>>>(a, b, c, pr, n_tiles);
            PIT_CUDA_CHECK(cudaGetLastError());
          }};
}

}  // namespace

int run_engine(const std::string& markdown_path) {
  check_device(Device::cuda());
  cudaDeviceProp prop{};
  PIT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const CublasPeer peer;  // pit's math mode
  cublasHandle_t h = peer.h;
  // Configs: the PIT kernels' current one first (M-gather; K-condense uses it at 128-row micro-tiles).
  const std::vector<Launch> engines = {
      mma_engine<dev::TileCfg<T, 128, 128, 2, 4, false, true, 4>>("mma.sync 128x128x32, 8 warps 64x32, 4 st"),
      mma_engine<dev::TileCfg<T, 128, 128, 2, 4, false, true, 3, 64>>("mma.sync 128x128x64, 8 warps 64x32, 3 st"),
      mma_engine<dev::TileCfg<T, 128, 128, 2, 2, false, true, 3, 64>>("mma.sync 128x128x64, 4 warps 64x64, 3 st"),
      mma_engine<dev::TileCfg<T, 128, 256, 2, 4, false, true, 3, 64>>("mma.sync 128x256x64, 8 warps 64x64, 3 st"),
      mma_engine<dev::WgCfg<T, false, true, 4>>("wgmma engine (wg_core.cuh), 4 st"),
      mma_engine<dev::WgCfg<T, false, true, 3>>("wgmma engine (wg_core.cuh), 3 st, 2 blocks/SM"),
      mma_engine<dev::WgCfg<T, false, true, 3, true>>("wgmma engine, 3 st, 2 blocks/SM, loads 2 ahead (drain)"),
      mma_engine<dev::WgCfg<T, false, true, 4, true>>("wgmma engine, 4 st, loads 3 ahead (drain)"),
      wgmma_core<4>("wgmma 128x128x64, 2 warpgroups, 4 st"),
      wgmma_core<5>("wgmma 128x128x64, 2 warpgroups, 5 st"),
  };
  Report report;
  std::printf("GPU: %s\n", prop.name);
  Report::print_header();
  int bad = 0;
  for (const Problem pr : {Problem{4096, 4096, 4096}, Problem{1000, 776, 328}}) {
    const Tensor a = randn({pr.m, pr.k}, DType::bf16, Device::cuda());
    const Tensor b = randn({pr.k, pr.n}, DType::bf16, Device::cuda());
    Tensor c = Tensor::empty({pr.m, pr.n}, DType::bf16, Device::cuda());
    Tensor ref = Tensor::empty({pr.m, pr.n}, DType::bf16, Device::cuda());
    const float one = 1.f, zero = 0.f;
    const auto cublas = [&](int) {
      PIT_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, pr.n, pr.m, pr.k, &one, b.data_ptr(), CUDA_R_16BF,
                                    pr.n, a.data_ptr(), CUDA_R_16BF, pr.k, &zero, ref.data_ptr(), CUDA_R_16BF, pr.n,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    const Timing tc = time_gpu(cublas, 5, 30);
    const std::string shape = std::to_string(pr.m) + "x" + std::to_string(pr.n) + "x" + std::to_string(pr.k);
    const double flops = 2.0 * pr.m * pr.n * pr.k;
    report.add({"cuBLAS (cublasGemmEx)", shape, tc.median_ms, flops, true, flops / (tc.median_ms * 1e-3), "", 0});
    for (const Launch& e : engines) {
      PIT_CUDA_CHECK(cudaMemset(c.data_ptr(), 0xff, c.nbytes()));  // NaN: unwritten outputs fail
      e.run(a.data<T>(), b.data<T>(), c.data<T>(), pr);
      PIT_CUDA_CHECK(cudaDeviceSynchronize());
      const double err = rel_err(c, ref);
      // Timed alternately with cuBLAS (time_gpu_pair): the ratio is against the cuBLAS timings of
      // the same pairs, not the one before every engine (timings drift with what ran before).
      const auto [cp, t] =
          time_gpu_pair(cublas, [&](int) { e.run(a.data<T>(), b.data<T>(), c.data<T>(), pr); }, 5, 30);
      report.add({e.name, shape, t.median_ms, flops, true, flops / (cp.median_ms * 1e-3), "cuBLAS", cp.median_ms});
      if (!(err <= 1e-2)) {
        std::printf("  %s %s: relative error %.3g against cuBLAS\n", e.name.c_str(), shape.c_str(), err);
        ++bad;
      }
    }
  }
  // The roofline column is the rate relative to cuBLAS's on the same shape.
  if (!markdown_path.empty() &&
      !report.write_markdown(markdown_path, std::string("Dense-tile engines, bf16 (") + prop.name +
                                                "; roofline = cuBLAS's rate on the same shape)"))
    std::fprintf(stderr, "pit-bench engine: cannot write %s\n", markdown_path.c_str());
  return bad ? 1 : 0;
}

}  // namespace pit::bench
