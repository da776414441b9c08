// Under `mpirun -np 2` (tests/core/CMakeLists.txt): rank 1 fails and calls abort_launch, as
// pit-train's main does; rank 0 waits for it in a barrier without a timeout. The launch must end
// with a non-zero status at once (the test's timeout catches a hang: rank 0 waiting for ever, or
// rank 1 blocked in MPI_Finalize at exit).
#include <cstdio>
#include <stdexcept>

#include "core/comm.h"

int main() {
  pit::Communicator& comm = pit::world();
  try {
    if (comm.size() < 2) {
      std::fprintf(stderr, "abort_launch test: run me on two ranks\n");
      return 2;
    }
    if (comm.rank() == 1) throw std::runtime_error("rank 1 fails");
    comm.set_timeout(0);
    comm.barrier();  // never completes: rank 1 is gone
    std::fprintf(stderr, "abort_launch test: rank 0 passed the barrier\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "abort_launch test: rank %d: %s; aborting the launch\n", comm.rank(), e.what());
    pit::abort_launch(3);
    return 3;
  }
}
