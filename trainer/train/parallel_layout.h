#pragma once
// How the ranks of a multi-process run share the work (config section `parallel`,
// docs/DISTRIBUTED.md): data parallel over every rank, and with parallel.expert = G > 1 expert
// groups of G consecutive ranks, each holding every MoE expert once (expert_comm), with the
// replicas of each shard across the groups (replica_comm). Also what pit-train prints of it.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/comm.h"
#include "trainer/config/config.h"
#include "trainer/train/metrics.h"

namespace pit::train {

struct Layout {
  int64_t expert = 1;
  std::unique_ptr<Communicator> expert_comm, replica_comm;  // both null without expert parallelism
};

// Splits `comm` (every rank calls it); throws when parallel.expert does not divide the ranks.
Layout make_layout(const Config& c, Communicator& comm);

// The start-up line describing the layout (nothing for one rank).
void print_layout(std::FILE* out, const Config& c, const Communicator& comm, const Layout& l);

// The window's time in collectives per step (ms), by kind, over the run's communicators, into
// `rec` (comm_ms, comm_ms/<kind>); returns " | comm X ms" (and the all_to_all share with expert
// parallelism) for the progress line. Nothing for one rank. With NCCL the gradients' all-reduce
// runs beside backward, so the times are not a part of the step to subtract.
std::string comm_report(MetricsRecord& rec, Communicator& comm, const Layout& l, int64_t window);
// Drops the collectives' times so far (set-up, an evaluation, a checkpoint): not a window's steps.
void discard_comm_times(Communicator& comm, const Layout& l);

}  // namespace pit::train
