// CUDA helpers around detection: micro-tile counts for the planner (one read of the tensor at
// the finest row granularity, then a small reduction per candidate) and the scatter of an
// index's values back to a dense matrix.
#include <numeric>

#include "ops/pit/cuda/detect.h"
#include "ops/pit/cuda/detect_common.cuh"

namespace pit::sparse::cuda {
namespace {

// flags[i, c] = 1 when rows [i*g, i*g + g) of column c hold a non-zero. Threads walk columns,
// so every row segment a warp reads is contiguous.
template <typename T>
__global__ void row_group_flags_kernel(const T* __restrict__ p, int rows, int cols, int g, uint8_t* flags) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int i = blockIdx.y;
  if (c >= cols) return;
  bool any = false;
  for (int r = i * g; r < min(rows, i * g + g); ++r) any = any || nz(p[static_cast<int64_t>(r) * cols + c]);
  flags[static_cast<int64_t>(i) * cols + c] = any;
}

// Counts tiles (tr x tc, tr a multiple of g) with a flag, into *count.
__global__ void count_tiles_kernel(const uint8_t* flags, int nbg, int cols, int per, int tc, int nbr, int nbc,
                                   unsigned long long* count) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  bool any = false;
  if (t < static_cast<int64_t>(nbr) * nbc) {
    const int i = static_cast<int>(t / nbc), cg = static_cast<int>(t % nbc);
    for (int y = i * per; y < min(nbg, i * per + per) && !any; ++y)
      for (int x = cg * tc; x < min(cols, cg * tc + tc); ++x)
        if (flags[static_cast<int64_t>(y) * cols + x]) {
          any = true;
          break;
        }
  }
  const int n = __syncthreads_count(any);
  if (threadIdx.x == 0 && n > 0) atomicAdd(count, static_cast<unsigned long long>(n));
}

template <typename T>
__global__ void to_dense_kernel(const int* offsets, const int* cols, const T* values, int rows, int ncols, int tr,
                                int tc, T* out) {
  const int i = blockIdx.x;
  const int te = tr * tc;
  for (int j = offsets[i]; j < offsets[i + 1]; ++j)
    for (int e = threadIdx.x; e < te; e += blockDim.x) {
      const int r = i * tr + e / tc, c = cols[j] * tc + e % tc;
      if (r < rows && c < ncols) out[static_cast<int64_t>(r) * ncols + c] = values[static_cast<int64_t>(j) * te + e];
    }
}

}  // namespace

Tensor count_micro_tiles(const Tensor& pattern, const std::vector<MicroTile>& tiles, StreamRef stream) {
  pit::cuda::DeviceGuard guard(pattern.device().index);
  const int64_t rows = pattern.size(0), cols = pattern.size(1);
  Tensor counts = Tensor::empty({static_cast<int64_t>(tiles.size())}, DType::i64, pattern.device());
  fill_bytes(counts, 0, stream);
  if (tiles.empty() || rows == 0 || cols == 0) return counts;
  int64_t g = 0;
  for (const MicroTile& t : tiles) g = std::gcd(g, t.rows);
  const int64_t nbg = (rows + g - 1) / g;
  Tensor flags = Tensor::empty({nbg, cols}, DType::u8, pattern.device());
  dispatch(pattern.dtype(), "count_micro_tiles (CUDA)", [&]<typename T>() {
    const dim3 grid(static_cast<unsigned>((cols + 255) / 256), static_cast<unsigned>(nbg));
    row_group_flags_kernel<T><<<grid, 256, 0, native(stream)>>>(static_cast<const T*>(pattern.data_ptr()),
                                                                 static_cast<int>(rows), static_cast<int>(cols),
                                                                 static_cast<int>(g), flags.data<uint8_t>());
  });
  for (size_t q = 0; q < tiles.size(); ++q) {
    const int64_t nbr = (rows + tiles[q].rows - 1) / tiles[q].rows, nbc = (cols + tiles[q].cols - 1) / tiles[q].cols;
    const unsigned blocks = static_cast<unsigned>((nbr * nbc + 255) / 256);
    count_tiles_kernel<<<blocks, 256, 0, native(stream)>>>(
        flags.data<uint8_t>(), static_cast<int>(nbg), static_cast<int>(cols), static_cast<int>(tiles[q].rows / g),
        static_cast<int>(tiles[q].cols), static_cast<int>(nbr), static_cast<int>(nbc),
        reinterpret_cast<unsigned long long*>(counts.data<int64_t>()) + q);
  }
  PIT_CUDA_CHECK(cudaGetLastError());
  return counts;
}

Tensor tiles_to_dense(const Tensor& offsets, const Tensor& cols, const Tensor& values, int64_t rows, int64_t ncols,
                      int64_t tr, int64_t tc, StreamRef stream) {
  pit::cuda::DeviceGuard guard(values.device().index);
  Tensor out = Tensor::empty({rows, ncols}, values.dtype(), values.device());
  fill_bytes(out, 0, stream);
  const int64_t nbr = (rows + tr - 1) / tr;
  if (nbr == 0 || ncols == 0) return out;
  dispatch_floating(values.dtype(), "to_dense (CUDA)", [&]<typename T>() {
    to_dense_kernel<T><<<static_cast<unsigned>(nbr), 128, 0, native(stream)>>>(
        offsets.data<int32_t>(), cols.data<int32_t>(), static_cast<const T*>(values.data_ptr()),
        static_cast<int>(rows), static_cast<int>(ncols), static_cast<int>(tr), static_cast<int>(tc), out.data<T>());
  });
  PIT_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace pit::sparse::cuda
