#pragma once
// A small fork-join pool for CPU kernels. parallel_for splits [begin, end) into chunks of at
// least `grain` iterations and runs them on the pool's workers and the calling thread. Nested
// calls (from inside a chunk) run serially. The first exception thrown by a chunk is rethrown
// in the caller after every chunk has finished.
#include <cstdint>
#include <functional>

namespace pit {

// Threads used by parallel_for: PIT_NUM_THREADS if set, else the CPUs this process may run on
// (its affinity mask: under mpirun or srun, the cores bound to the rank), at most the machine's
// CPUs over the job's processes on it (OMPI_COMM_WORLD_LOCAL_SIZE or MPI_LOCALNRANKS).
int num_threads();
void set_num_threads(int n);  // takes effect for the next parallel_for; n >= 1

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace pit
