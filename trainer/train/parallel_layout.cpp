#include "trainer/train/parallel_layout.h"

#include <map>

#include "core/error.h"

namespace pit::train {

Layout make_layout(const Config& c, Communicator& comm) {
  Layout l;
  l.expert = c.parallel.expert;
  if (l.expert == 1) return l;
  PIT_CHECK(comm.size() % l.expert == 0, "parallel.expert is ", l.expert, " but the run has ", comm.size(),
            " rank(s); launch a multiple of ", l.expert, " processes (mpirun -np ", l.expert, " ...), or set ",
            comm.size() == 1 ? std::string("parallel.expert: 1")
                             : "parallel.expert to a divisor of " + std::to_string(comm.size()));
  const int ep = static_cast<int>(l.expert), r = comm.rank();
  l.expert_comm = comm.split(r / ep, r % ep);
  l.replica_comm = comm.split(r % ep, r / ep);
  return l;
}

void print_layout(std::FILE* out, const Config& c, const Communicator& comm, const Layout& l) {
  if (comm.size() == 1) return;
  std::fprintf(out, "pit-train: %d ranks (%s): data parallel, %lld of each batch's %lld examples per rank",
               comm.size(), comm.backend(), static_cast<long long>(c.data.batch_size / comm.size()),
               static_cast<long long>(c.data.batch_size));
  if (l.expert > 1)
    std::fprintf(out, "; experts sharded over groups of %lld ranks (%lld of %lld experts per rank per MoE layer, each "
                      "expert on %d rank(s))",
                 static_cast<long long>(l.expert), static_cast<long long>(c.model.experts / l.expert),
                 static_cast<long long>(c.model.experts), comm.size() / static_cast<int>(l.expert));
  std::fprintf(out, "\n");
}

void discard_comm_times(Communicator& comm, const Layout& l) {
  for (Communicator* c : {&comm, l.expert_comm.get(), l.replica_comm.get()})
    if (c != nullptr) (void)c->take_times();
}

std::string comm_report(MetricsRecord& rec, Communicator& comm, const Layout& l, int64_t window) {
  if (comm.size() == 1) return "";
  std::map<std::string, double> ms;
  for (Communicator* c : {&comm, l.expert_comm.get(), l.replica_comm.get()})
    if (c)
      for (const auto& [what, t] : c->take_times()) ms[what] += 1e3 * t.seconds / static_cast<double>(window);
  double total = 0;
  for (const auto& [what, v] : ms) {
    total += v;
    rec.add("comm_ms/" + what, v);
  }
  rec.add("comm_ms", total);
  char text[96];
  if (l.expert > 1)
    std::snprintf(text, sizeof text, " | comm %.1f ms (all_to_all %.1f)", total, ms["all_to_all"]);
  else
    std::snprintf(text, sizeof text, " | comm %.1f ms", total);
  return text;
}

}  // namespace pit::train
