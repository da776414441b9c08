#pragma once
// The Communicator backends behind world() (core/comm.h), and the argument checks they share.
#include <memory>
#include <string>
#include <vector>

#include "core/comm.h"

namespace pit::comm_detail {

// Built with MPI only (core/comm_mpi.cpp); initialises MPI.
std::unique_ptr<Communicator> make_mpi(const LaunchInfo& launch);
// Built with CUDA, NCCL and MPI only (core/comm_nccl.cpp): CUDA tensors through NCCL, the rest
// through `host`, which bootstraps it.
std::unique_ptr<Communicator> make_nccl(std::unique_ptr<Communicator> host);

// The shape check before a collective: every rank max-reduces its tensor's signature (numel,
// dims, dtype, sizes, and their negations), then each compares the result with its own (any
// difference shows as max != -max) and throws naming its shape.
std::vector<int64_t> shape_signature(const Tensor& t);
void check_same_signature(const std::vector<int64_t>& reduced, const Tensor& t, const char* what,
                          const std::string& where);

// "rank R of N: ", the start of every backend's error messages.
std::string rank_prefix(int rank, int size);
// What all_to_all's ranks must agree on about their rows: their bytes, dtype and a hash of the
// dims after the first.
std::vector<int64_t> row_layout(const Tensor& t);
// Bytes of one row (the first dimension's element) of t: all_to_all moves whole rows.
int64_t row_bytes_of(const Tensor& t);

// Throws unless t is defined and has a first dimension (all_gather, reduce_scatter, all_to_all).
void check_rows(const Tensor& t, const char* op);
// reduce_scatter: t's rows must split evenly over `size` ranks.
void check_scatter(const Tensor& t, int size);
// all_to_all: one count per rank, none negative, summing to t's rows.
void check_send_rows(const Tensor& t, const std::vector<int64_t>& send_rows, int size);

}  // namespace pit::comm_detail
