#pragma once
// OpenBLAS's set-up for pit's CPU kernels: which of its kernel sets it runs (with the fix for a
// known mis-detection) and how many threads it uses.
//
// Kernels. OpenBLAS built with DYNAMIC_ARCH (Debian's and Ubuntu's packages) picks its kernels from
// the CPU's model number. Up to 0.3.24 an x86 model it does not know gets the generic SSE3 kernels,
// "Prescott" (OpenBLAS issue #4267, fixed in 0.3.25): on Debian 12's 0.3.21 an Emerald Rapids Xeon
// (model 207) runs its GEMMs without AVX, and pit-train's CPU run of configs/moe.yaml takes 1.7x as
// long. blas_kernels() checks once: where OpenBLAS chose Prescott on a CPU with AVX2 or AVX-512 and
// OPENBLAS_CORETYPE is not set, it sets OPENBLAS_CORETYPE to the kernels the CPU runs (SkylakeX,
// Haswell or Sandybridge) and has OpenBLAS choose again. A set OPENBLAS_CORETYPE always decides.
//
// Threads. OpenBLAS uses as many threads as pit's CPU backend (num_threads(): run.threads,
// PIT_NUM_THREADS or all cores), unless OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or OMP_NUM_THREADS
// is set (then OpenBLAS's own reading of them stands). Its idle threads sleep after ~2^16 cycles
// instead of spinning for its default 2^28 (~0.1 s) while pit's own threads work, unless
// OPENBLAS_THREAD_TIMEOUT or GOTO_THREAD_TIMEOUT is set.
#include <string>

namespace pit::cpu {

struct BlasKernels {
  std::string chosen;    // OpenBLAS's kernels now, as it names them ("SkylakeX"); "" if unknown
  std::string detected;  // what OpenBLAS chose by itself when pit changed it ("Prescott"); else ""
  std::string note;      // one line for a user: the kernels and, if changed, why
};

// Checks (and corrects) OpenBLAS's choice on the first call; thread-safe. It swaps OpenBLAS's
// kernel table, so it must come before any BLAS call that could run at the same time: every CPU
// GEMM of pit calls prepare_blas() first.
const BlasKernels& blas_kernels();

// The kernels for a CPU with these instruction sets (OpenBLAS's names): SkylakeX for AVX-512
// (F, CD, BW, DQ, VL), Haswell for AVX2 with FMA, Sandybridge for AVX, "" for none of them.
struct CpuFeatures {
  bool avx512 = false, avx2_fma = false, avx = false;
};
std::string blas_kernels_for(const CpuFeatures& cpu);

// Before a BLAS call: blas_kernels(), and OpenBLAS's thread count set to num_threads() when that
// changed (see above). Call it from the thread that orders the work, not from pool workers.
void prepare_blas();

int blas_threads();  // OpenBLAS's thread count now

// How long OpenBLAS's idle threads spin before they sleep, as OpenBLAS reads it (log2 of cycles;
// 0: its default, 2^28), after pit's setting (see above); -1 where this OpenBLAS does not say.
int blas_idle_spin_log2();

// OpenBLAS single-threaded for a scope (process-wide): products that pool workers run one each
// instead of competing for OpenBLAS's threads.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

}  // namespace pit::cpu
