// pit-bench roofline: how fast a PIT GEMM at 4096^3 bf16 could be on this GPU, from rates measured
// in the same run: DRAM (a large device-to-device copy), L2 (re-reading a buffer that fits in it,
// bypassing L1) and the tensor cores (cuBLAS bf16 at 8192^3). For each micro-tile and density it
// counts what the kernels as built must compute and move (not what an ideal kernel would):
//   - FLOPs: 2 m n k d;
//   - DRAM: A's listed values, B once, C written;
//   - L2: every output tile re-reads its share of B's listed rows and of A's listed values, in
//     tiles of kTileM x kTileN (the K-condense and block kernels: a row block of r rows with its own
//     k list reads d k rows of B for every kTileN columns; the block list likewise with b rows);
// and prints the bound max(FLOPs / tensor rate, DRAM bytes / copy rate, L2 bytes / L2 rate)
// beside cuBLAS at 4096^3, i.e. the most any kernel of that shape of work can gain. The bounds are
// a model fed by measured rates, printed as such; the measured PIT times are `pit-bench pit`'s.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "bench/copy_rate.h"
#include "bench/cublas_peer.h"
#include "bench/timer.h"
#include "core/core.h"

namespace pit::bench {
namespace {

constexpr int64_t kTileN = 128;  // output columns a tile of the PIT kernels covers

// Sums 16-byte words of buf[0, n16) `passes` times over with L2-only loads; one value a thread
// goes to sink (never all zero in practice), so the loads cannot be dropped.
__global__ void l2_read_kernel(const uint4* __restrict__ buf, int64_t n16, int passes, unsigned* sink) {
  unsigned acc = 0;
  const int64_t stride = int64_t{gridDim.x} * blockDim.x, total = n16 * passes;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += stride) {
    const uint4 v = __ldcg(buf + i % n16);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;  // practically never: keeps acc alive
}

double l2_read_rate(int64_t l2_bytes, int sms) {  // bytes read per second
  const int64_t bytes = std::max<int64_t>(int64_t{1} << 20, l2_bytes / 2 / 16 * 16);  // half of L2
  const int passes = static_cast<int>(std::max<int64_t>(1, (int64_t{1} << 30) / bytes));
  Tensor buf = randn({bytes / 2}, DType::bf16, Device::cuda());
  Tensor sink = zeros({1}, DType::i32, Device::cuda());
  const auto run = [&](int) {
    l2_read_kernel<<<static_cast<unsigned>(sms * 8), 256>>>(static_cast<const uint4*>(buf.data_ptr()), bytes / 16,
                                                            passes, reinterpret_cast<unsigned*>(sink.data_ptr()));
    PIT_CUDA_CHECK(cudaGetLastError());
  };
  const Timing t = time_gpu(run, 3, 20);
  return static_cast<double>(bytes) * passes / (t.median_ms * 1e-3);
}

// Milliseconds of cuBLAS bf16 C = A B (f32 accumulation) at n^3.
double cublas_ms(cublasHandle_t h, int n) {
  Tensor a = randn({n, n}, DType::bf16, Device::cuda()), b = randn({n, n}, DType::bf16, Device::cuda());
  Tensor c = zeros({n, n}, DType::bf16, Device::cuda());
  const float one = 1.f, zero = 0.f;
  const Timing t = time_gpu([&](int) {
    PIT_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.data_ptr(), CUDA_R_16BF, n,
                                  a.data_ptr(), CUDA_R_16BF, n, &zero, c.data_ptr(), CUDA_R_16BF, n,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  });
  return t.median_ms;
}

}  // namespace

int run_roofline() {
  check_device(Device::cuda());
  int dev = 0, sms = 0, l2 = 0;
  PIT_CUDA_CHECK(cudaGetDevice(&dev));
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  cudaDeviceProp prop{};
  PIT_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  const CublasPeer peer;  // pit's math mode
  cublasHandle_t h = peer.h;
  // cuBLAS at 4096^3 first, on a cool GPU: timed after the 8192^3 runs it measured 0.2075 ms on an
  // H200 where `pit-bench pit` and `engine` measure 0.16-0.18 ms.
  const int64_t n = 4096;
  const double dense_ms = cublas_ms(h, static_cast<int>(n));
  const double copy = copy_bandwidth(int64_t{1} << 30), l2_rate = l2_read_rate(l2, sms);
  const double big = 8192, tc = 2 * big * big * big / (cublas_ms(h, 8192) * 1e-3);
  std::printf("GPU: %s, %d SMs, L2 %d MiB\n", prop.name, sms, l2 >> 20);
  std::printf("measured: DRAM copy %.0f GB/s (read + write), L2 reads %.0f GB/s, cuBLAS bf16 8192^3 %.0f TFLOP/s, "
              "4096^3 %.4f ms\n\n",
              copy / 1e9, l2_rate / 1e9, tc / 1e12, dense_ms);
  std::printf("%-12s %8s %10s %10s %10s %10s %10s %10s\n", "micro-tile", "sparsity", "FLOP ms", "DRAM ms", "L2 ms",
              "bound ms", "bounded by", "max vs cuB");
  struct Tile {
    const char* name;
    int64_t rows;  // rows sharing one list of k (K lists: r; blocks: b)
  };
  const Tile tiles[] = {{"128x1", 128}, {"64x1", 64}, {"32x1", 32}, {"32x32", 32}};
  const double e = 2;  // bytes of a bf16 element
  const double m = static_cast<double>(n), k = m, nn = m;
  for (const Tile& t : tiles)
    for (const double d : {0.5, 0.1, 0.05, 0.01}) {
      const double flops = 2 * m * nn * k * d;
      const double dram = d * m * k * e + k * nn * e + m * nn * e;  // A listed, B once, C
      // Each of the m / rows row blocks reads its d k rows of B in full; each of the nn / kTileN
      // column tiles re-reads A's listed values.
      const double l2_bytes = (m / static_cast<double>(t.rows)) * d * k * nn * e + (nn / kTileN) * d * m * k * e;
      const double f_ms = flops / tc * 1e3, d_ms = dram / copy * 1e3, l_ms = l2_bytes / l2_rate * 1e3;
      const double bound = std::max({f_ms, d_ms, l_ms});
      const char* by = bound == f_ms ? "tensor" : bound == d_ms ? "DRAM" : "L2";
      std::printf("%-12s %7.0f%% %10.4f %10.4f %10.4f %10.4f %10s %9.2fx\n", t.name, 100 * (1 - d), f_ms, d_ms, l_ms,
                  bound, by, dense_ms / bound);
    }
  return 0;
}

}  // namespace pit::bench
