// OpenBLAS's kernels for this CPU (ops/cpu/blas_setup.h): the choice by instruction set, the
// correction of a generic "Prescott" choice, and a GEMM on whatever kernels are chosen.
#include "ops/cpu/blas_setup.h"

#include <cblas.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/gemm.h"
#include "tests/core/worst.h"

using namespace pit;

namespace {

// Read before any test runs (and so before pit can set them).
const bool g_user_coretype = std::getenv("OPENBLAS_CORETYPE") != nullptr;
const char* const g_user_timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT") ? std::getenv("OPENBLAS_THREAD_TIMEOUT")
                                                                         : std::getenv("GOTO_THREAD_TIMEOUT");
const bool g_user_threads = std::getenv("OPENBLAS_NUM_THREADS") || std::getenv("GOTO_NUM_THREADS") ||
                            std::getenv("OMP_NUM_THREADS");

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

TEST(BlasSetup, ChoiceFollowsTheWidestInstructionSet) {
  EXPECT_EQ(cpu::blas_kernels_for({.avx512 = true, .avx2_fma = true, .avx = true}), "SkylakeX");
  EXPECT_EQ(cpu::blas_kernels_for({.avx512 = false, .avx2_fma = true, .avx = true}), "Haswell");
  EXPECT_EQ(cpu::blas_kernels_for({.avx512 = false, .avx2_fma = false, .avx = true}), "Sandybridge");
  EXPECT_EQ(cpu::blas_kernels_for({}), "");
}

TEST(BlasSetup, NoGenericKernelsOnACpuWithAvx2) {
  const cpu::BlasKernels& k = cpu::blas_kernels();
  EXPECT_FALSE(k.chosen.empty());
  EXPECT_NE(k.note.find(k.chosen), std::string::npos) << k.note;
  if (!k.detected.empty()) {  // pit changed OpenBLAS's choice: only from Prescott, to another
    EXPECT_EQ(k.detected, "Prescott");
    EXPECT_NE(k.chosen, "Prescott");
    EXPECT_FALSE(g_user_coretype) << "OPENBLAS_CORETYPE was set: OpenBLAS's choice must stand";
  }
  if (!g_user_coretype && cpu_has_avx2()) {
    EXPECT_NE(k.chosen, "Prescott") << k.note;
  }
  std::printf("%s\n", k.note.c_str());
}

TEST(BlasSetup, OpenBlasFollowsTheThreadCount) {
  if (g_user_threads) GTEST_SKIP() << "OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or OMP_NUM_THREADS is set";
  const int saved = num_threads();
  for (const int n : {1, 3, saved}) {
    set_num_threads(n);
    cpu::prepare_blas();
    EXPECT_EQ(cpu::blas_threads(), n);
    {
      const cpu::SingleThreadedBlas one;
      EXPECT_EQ(cpu::blas_threads(), 1);
    }
    EXPECT_EQ(cpu::blas_threads(), n);
  }
}

// C = 2 A B + 0.5 on pit's CPU GEMM against a loop in double: the worst absolute difference.
double gemm_error(int64_t m, int64_t n, int64_t kk) {
  std::mt19937 rng(static_cast<unsigned>(m * 131 + n));
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(m * kk), b(kk * n), c(m * n, 0.5f);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  GemmArgs g;
  g.dtype = DType::f32;
  g.m = m;
  g.n = n;
  g.k = kk;
  g.a = a.data();
  g.lda = kk;
  g.b = b.data();
  g.ldb = n;
  g.c = c.data();
  g.ldc = n;
  g.alpha = 2.0;
  g.beta = 1.0;
  cpu::gemm(g);
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < kk; ++p) s += double(a[i * kk + p]) * b[p * n + j];
      worst = test::worst_of(worst, std::abs(c[i * n + j] - (2 * s + 0.5)));
    }
  return worst;
}

TEST(BlasSetup, GemmOnTheChosenKernelsMatchesALoop) {
  // Not multiples of any kernel's blocking; too small for OpenBLAS to use threads.
  EXPECT_LT(gemm_error(67, 45, 131), 1e-4) << "on " << cpu::blas_kernels().chosen;
}

// pit shortens the idle threads' spin (OpenBLAS stops its threads and starts them anew on the
// next threaded call) unless the user set the timeout; products on those threads stay exact. The
// ctest entry BlasSetup.UserThreadTimeoutStands runs this with OPENBLAS_THREAD_TIMEOUT=20.
TEST(BlasSetup, IdleThreadsSleepSoonUnlessTheUserSetsTheTimeout) {
  const int spin = cpu::blas_idle_spin_log2();
  if (spin < 0) GTEST_SKIP() << "this OpenBLAS does not say how long its threads spin";
  std::printf("OpenBLAS's idle threads spin for 2^%d cycles (0: its default, 2^28)\n", spin);
  if (g_user_timeout != nullptr) {
    EXPECT_EQ(spin, std::atoi(g_user_timeout));
  } else if (openblas_get_parallel() == 1) {
    EXPECT_EQ(spin, 16);  // blas_setup.cpp's kIdleSpinLog2
  }
  const int saved = num_threads();
  for (const int n : {3, 2}) {  // 3 threads on a 2-core machine too: the products must not care
    set_num_threads(n);
    cpu::prepare_blas();
    for (int rep = 0; rep < 3; ++rep)  // threads asleep between the calls, or just woken
      EXPECT_LT(gemm_error(301, 283, 257), 5e-4) << n << " threads, " << cpu::blas_threads() << " OpenBLAS's";
  }
  set_num_threads(saved);
}

}  // namespace
