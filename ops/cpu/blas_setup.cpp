#include "ops/cpu/blas_setup.h"

#include <cblas.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <strings.h>

#include "core/thread_pool.h"

extern "C" {  // OpenBLAS's own functions (declared here too: not every cblas.h has them)
char* openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);  // 0 sequential, 1 its own threads, 2 OpenMP
}

namespace pit::cpu {
namespace {

CpuFeatures this_cpu() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // libgcc's checks include the OS's support (XGETBV) for the registers
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx = __builtin_cpu_supports("avx");
#endif
  return f;
}

std::string corename() {
  const char* name = openblas_get_corename();
  return name ? name : "";
}

// "OpenBLAS 0.3.21" (the header's " OpenBLAS 0.3.21 ", trimmed).
std::string version() {
#ifdef OPENBLAS_VERSION
  std::string v = OPENBLAS_VERSION;
  const size_t first = v.find_first_not_of(' '), last = v.find_last_not_of(' ');
  return first == std::string::npos ? "OpenBLAS" : v.substr(first, last - first + 1);
#else
  return "OpenBLAS";
#endif
}

// OpenBLAS's own entry points of the DYNAMIC_ARCH build: quit forgets the kernel table, init
// chooses one again (reading OPENBLAS_CORETYPE). Looked up at run time: a build for one target
// has neither, and then nothing is changed.
using Hook = void (*)();
Hook hook(const char* name) { return reinterpret_cast<Hook>(dlsym(RTLD_DEFAULT, name)); }

BlasKernels select() {
  BlasKernels k;
  k.chosen = corename();
  const std::string best = blas_kernels_for(this_cpu());
  const Hook quit = hook("gotoblas_dynamic_quit"), init = hook("gotoblas_dynamic_init");
  const bool generic = strcasecmp(k.chosen.c_str(), "prescott") == 0 && !best.empty();
  const bool dynamic = quit && init;  // else one kernel set, which OPENBLAS_CORETYPE does not change
  if (generic && dynamic && std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    setenv("OPENBLAS_CORETYPE", best.c_str(), 0);
    quit();
    init();
    k.detected = k.chosen;
    k.chosen = corename();
  }
  k.note = "OpenBLAS kernels " + (k.chosen.empty() ? std::string("(unknown)") : k.chosen);
  if (!k.detected.empty())
    k.note += " (" + version() + " does not know this CPU and chose its generic " + k.detected +
              " kernels; OPENBLAS_CORETYPE overrides pit's choice)";
  else if (generic && dynamic)
    k.note += " (this CPU can run " + best + ": OPENBLAS_CORETYPE=" + best + " is faster)";
  else if (generic)
    k.note += " (an OpenBLAS built for Prescott alone; one built with DYNAMIC_ARCH, as Debian's, runs " + best +
              "'s on this CPU)";
  return k;
}

// OpenBLAS's idle threads (its own thread server, not OpenMP's) spin on sched_yield for
// 2^OPENBLAS_THREAD_TIMEOUT cycles (default 2^28, ~0.1 s) after each threaded call before they
// sleep. pit's GEMMs alternate with work on pit's own pool, so a spinning worker takes a core from
// it: on 2 cores configs/moe.yaml's CPU run took ~18% more CPU time (a quarter of its perf
// samples in sched_yield's kernel path) for the same wall time. Where the
// user has not set the timeout, pit sets kIdleSpinLog2 and has OpenBLAS read its environment again
// and stop its threads, as it does around fork(): the next threaded call starts them anew with
// the short timeout. Returns the timeout OpenBLAS now uses (log2 cycles), or -1 when unknown.
constexpr int kIdleSpinLog2 = 16;  // ~25 us at 2.5 GHz: spans back-to-back GEMMs, no more

int settle_idle_threads() {
  using ReadInt = int (*)();
  const auto timeout = reinterpret_cast<ReadInt>(dlsym(RTLD_DEFAULT, "openblas_thread_timeout"));
  const auto read_env = hook("openblas_read_env");
  const auto shutdown = reinterpret_cast<ReadInt>(dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"));
  const bool user = std::getenv("OPENBLAS_THREAD_TIMEOUT") || std::getenv("GOTO_THREAD_TIMEOUT");
  if (!user && timeout && read_env && shutdown && openblas_get_parallel() == 1) {
    setenv("OPENBLAS_THREAD_TIMEOUT", std::to_string(kIdleSpinLog2).c_str(), 0);
    read_env();
    shutdown();
  }
  return timeout ? timeout() : -1;
}

}  // namespace

std::string blas_kernels_for(const CpuFeatures& cpu) {
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  if (cpu.avx) return "Sandybridge";
  return "";
}

const BlasKernels& blas_kernels() {
  static const BlasKernels kernels = select();
  return kernels;
}

int blas_idle_spin_log2() {
  blas_kernels();
  static const int log2 = settle_idle_threads();
  return log2;
}

void prepare_blas() {
  blas_idle_spin_log2();
  static const bool user_threads = std::getenv("OPENBLAS_NUM_THREADS") || std::getenv("GOTO_NUM_THREADS") ||
                                   std::getenv("OMP_NUM_THREADS");
  static std::atomic<int> applied{0};
  const int n = num_threads();
  if (user_threads || applied.load(std::memory_order_relaxed) == n) return;
  openblas_set_num_threads(n);
  applied.store(n, std::memory_order_relaxed);
}

int blas_threads() { return openblas_get_num_threads(); }

SingleThreadedBlas::SingleThreadedBlas() {
  prepare_blas();  // first: it must not change the count later, inside the scope
  saved_ = openblas_get_num_threads();
  openblas_set_num_threads(1);
}

SingleThreadedBlas::~SingleThreadedBlas() { openblas_set_num_threads(saved_); }

}  // namespace pit::cpu
