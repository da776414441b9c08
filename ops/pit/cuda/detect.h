#pragma once
// CUDA detection (ops/pit/cuda/detect.cu): the same contract as ops/pit/cpu/detect.h, on the
// device, on `stream`, without host synchronisation. Inputs validated by ops/pit/detect.cpp.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "ops/pit/cpu/detect.h"
#include "ops/pit/index.h"

namespace pit::sparse::cuda {

// tr x tc in {16, 32, 64, 128} x {1} (K lists) or b x b with b in {16, 32, 64} (blocks).
cpu::TileLists detect_tiles(const Tensor& a, const Tensor& mask, int64_t tr, int64_t tc,
                            bool values, bool transposed, StreamRef stream);
RowSetIndex detect_rows(const Tensor& pattern, int64_t cols, int64_t w, StreamRef stream);
// expert_of i32 [T, k] contiguous; gates f32 [T, k] contiguous or undefined.
RowSetIndex rows_from_routing(const Tensor& expert_of, int64_t num_experts, const Tensor& gates,
                              StreamRef stream);
Tensor count_micro_tiles(const Tensor& pattern, const std::vector<MicroTile>& tiles,
                         StreamRef stream);
// The planner's counts: 1 / stride of the operand's regions looked at, stride chosen so that about
// sample_bytes are read (0: all of it, exact). The host waits by spinning on host-mapped memory
// that the kernel's last block writes (no copy, no stream synchronisation): one launch in all.
TileCounts count_for_planner(const Tensor& pattern, const std::vector<MicroTile>& tiles,
                             int64_t sample_bytes, StreamRef stream);
// The same in two steps, for a planner that does not wait (ops/pit/planner.h PlanSite): counts
// launched into `slots` (made for one device; launches of one CountSlots on one stream), then
// picked up. planner_counts_back with `wait` returns the latest launch's counts, spinning until
// they are back; without, the launch before it, if its counts are back (else nullopt). A launch
// that could not be counted in one kernel was counted exactly, synchronously, when launched.
struct CountSlots;
std::shared_ptr<CountSlots> make_count_slots(int device);
void launch_planner_counts(CountSlots& slots, const Tensor& pattern, const std::vector<MicroTile>& tiles,
                           int64_t sample_bytes, StreamRef stream);
std::optional<TileCounts> planner_counts_back(CountSlots& slots, bool wait, StreamRef stream);
// An i64 tensor of the device read back through a per-thread pinned buffer (one DMA, then a
// synchronisation of `stream`).
std::vector<int64_t> read_back_i64(const Tensor& t, StreamRef stream);
Tensor tiles_to_dense(const Tensor& offsets, const Tensor& cols, const Tensor& values,
                      int64_t rows, int64_t ncols, int64_t tr, int64_t tc, StreamRef stream);

}  // namespace pit::sparse::cuda
