#pragma once
// The Communicator backends behind world() (core/comm.h), and the argument checks they share.
#include <memory>
#include <vector>

#include "core/comm.h"

namespace pit::comm_detail {

// Built with MPI only (core/comm_mpi.cpp); initialises MPI.
std::unique_ptr<Communicator> make_mpi(const LaunchInfo& launch);

// Throws unless t is defined and has a first dimension (all_gather, reduce_scatter, all_to_all).
void check_rows(const Tensor& t, const char* op);
// reduce_scatter: t's rows must split evenly over `size` ranks.
void check_scatter(const Tensor& t, int size);
// all_to_all: one count per rank, none negative, summing to t's rows.
void check_send_rows(const Tensor& t, const std::vector<int64_t>& send_rows, int size);

}  // namespace pit::comm_detail
