// Deferred device-side errors (core/device_error.h), host side: the message, taking a record
// out of a slot (clears it, frees the claim for the next epoch, exactly one taker), and
// check_device_errors without any recorded error. A slot in ordinary memory stands in for the
// mapped one, written the way record_device_error (core/cuda/device_error.cuh) writes it. The
// GPU paths are exercised by tests/ops/index_kernels_test.cpp and loss_dropout_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/device.h"
#include "core/device_error.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

int32_t gather_like_kind() {
  static const int32_t kind = [] {
    DeviceErrorKind k;
    k.op = "test_gather";
    k.position = "index element";
    k.from_end = true;
    k.fix = "fix the index";
    return register_device_error_kind(k);
  }();
  return kind;
}

// What a winning device thread leaves in the slot (claim aside, which lives on the device).
void record(DeviceErrorSlot& slot, int32_t kind, int32_t dim, int64_t value, int64_t size,
            int64_t position) {
  slot.kind = kind;
  slot.dim = dim;
  slot.value = value;
  slot.size = size;
  slot.position = position;
  slot.ready = 1;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST(DeviceError, EmptySlotReportsNothing) {
  DeviceErrorSlot slot{};
  EXPECT_FALSE(detail::take_device_error(slot, Device::cuda(0)).has_value());
  EXPECT_EQ(slot.epoch, 0u);  // nothing taken, the claim stays where it is
}

TEST(DeviceError, TakeFormatsClearsAndAdvancesTheEpoch) {
  DeviceErrorSlot slot{};
  record(slot, gather_like_kind(), 0, 1000, 777, 5);
  const auto message = detail::take_device_error(slot, Device::cuda(1));
  ASSERT_TRUE(message.has_value());
  for (const char* part :
       {"index 1000 is out of range for test_gather along dim 0 of size 777", "valid: [-777, 777)",
        "at index element 5", "detected on cuda:1 by a kernel queued earlier",
        "surfaces at the next host read", "; fix the index"})
    EXPECT_TRUE(contains(*message, part)) << "missing \"" << part << "\" in: " << *message;
  EXPECT_EQ(slot.ready, 0u);
  EXPECT_EQ(slot.epoch, 1u);  // the device's claim (now 1) matches it again: recording resumes
  EXPECT_FALSE(detail::take_device_error(slot, Device::cuda(1)).has_value());  // no stale error

  // The next epoch's error is reported in turn.
  record(slot, gather_like_kind(), 2, -900, 777, 0);
  const auto next = detail::take_device_error(slot, Device::cuda(1));
  ASSERT_TRUE(next.has_value());
  EXPECT_TRUE(contains(*next, "index -900 is out of range for test_gather along dim 2")) << *next;
  EXPECT_EQ(slot.epoch, 2u);
}

TEST(DeviceError, KindWordingAndUnknownKinds) {
  DeviceErrorKind ce;
  ce.op = "test_ce";
  ce.value = "target";
  ce.axis = "the class dim";
  ce.position = "row";
  ce.valid_extra = " or ignore_index";
  const int32_t target = register_device_error_kind(ce);
  DeviceErrorSlot rec{};
  record(rec, target, -1, 10, 10, 1);
  const std::string m = detail::format_device_error(rec, Device::cuda(0));
  EXPECT_TRUE(contains(m, "target 10 is out of range for test_ce along the class dim of size 10 "
                          "(valid: [0, 10) or ignore_index; at row 1;"))
      << m;
  EXPECT_FALSE(contains(m, "; fix")) << m;  // no fix text registered: no dangling separator

  record(rec, 1 << 30, 0, 3, 2, 0);  // never registered: still a message, naming the id
  EXPECT_TRUE(contains(detail::format_device_error(rec, Device::cuda(0)), "unknown device error kind"));
}

TEST(DeviceError, ExactlyOneHostThreadTakesARecord) {
  for (int round = 0; round < 50; ++round) {
    DeviceErrorSlot slot{};
    slot.epoch = static_cast<uint32_t>(round);
    record(slot, gather_like_kind(), 0, 7, 3, 0);
    std::atomic<int> taken{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        if (detail::take_device_error(slot, Device::cuda(0))) taken.fetch_add(1);
      });
    for (auto& t : threads) t.join();
    ASSERT_EQ(taken.load(), 1) << "round " << round;
    ASSERT_EQ(slot.epoch, static_cast<uint32_t>(round + 1));
  }
}

TEST(DeviceError, CheckWithoutRecordedErrorsIsANoOp) {
  EXPECT_NO_THROW(check_device_errors(Device::cpu()));
  // Without a GPU (or without CUDA) there is no slot: nothing to report, nothing to throw.
  if (!cuda_available()) {
    EXPECT_NO_THROW(check_device_errors(Device::cuda(0)));
  }
}

TEST(DeviceErrorCuda, CleanDeviceDoesNotThrow) {
  PIT_REQUIRE_CUDA();
  EXPECT_NO_THROW(check_device_errors(Device::cuda(0)));
  current_stream(Device::cuda(0)).synchronize();  // checks too
}
