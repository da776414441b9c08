// core/error.h (PIT_CHECK, PIT_THROW, library errors) and Device parsing from core/device.h.
#include <gtest/gtest.h>

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/device.h"
#include "core/error.h"
#include "tests/core/expect_error.h"

using namespace pit;
using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;

namespace {

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

}  // namespace

TEST(Error, CheckMessageHasUserTextExpressionAndLocation) {
  int line = 0;
  const std::string msg = message_of([&] {
    const int answer = 41;
    line = __LINE__ + 1;
    PIT_CHECK(answer == 42, "the answer is ", answer, ", not ", 42);
  });
  EXPECT_NE(msg.find("the answer is 41, not 42"), std::string::npos) << msg;
  EXPECT_NE(msg.find("answer == 42"), std::string::npos) << msg;
  EXPECT_NE(msg.find("core/error_test.cpp:" + std::to_string(line)), std::string::npos) << msg;
  EXPECT_EQ(msg.find("/work"), std::string::npos) << "only the last two path components: " << msg;
}

TEST(Error, CheckPassesSilentlyAndBuildsNoMessage) {
  int evaluated = 0, formatted = 0;
  auto cond = [&] { ++evaluated; return true; };
  auto part = [&] { ++formatted; return "x"; };
  PIT_CHECK(cond(), "never built: ", part());
  EXPECT_EQ(evaluated, 1) << "the condition is evaluated exactly once";
  EXPECT_EQ(formatted, 0) << "message parts are evaluated only on failure";
}

TEST(Error, CheckWithoutMessage) {
  const std::string msg = message_of([] { PIT_CHECK(1 + 1 == 3); });
  EXPECT_NE(msg.find("internal check failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 + 1 == 3"), std::string::npos) << msg;
}

TEST(Error, ThrowHasMessageAndLocationButNoExpression) {
  int line = 0;
  const std::string msg = message_of([&] {
    line = __LINE__ + 1;
    PIT_THROW("bad value ", 7, " of ", std::string("x"));
  });
  EXPECT_EQ(msg.rfind("bad value 7 of x", 0), 0u) << "the message comes first: " << msg;
  EXPECT_NE(msg.find("error_test.cpp:" + std::to_string(line)), std::string::npos) << msg;
  EXPECT_EQ(msg.find("check `"), std::string::npos) << msg;
}

TEST(Error, IsARuntimeError) {
  try {
    PIT_THROW("boom");
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos);
    return;
  }
  FAIL() << "PIT_THROW did not throw a std::runtime_error";
}

TEST(Error, ShortPathKeepsTheLastTwoComponents) {
  expect_error_contains([] { detail::throw_error("/a/b/c/file.cpp", 12, "x", "m"); },
                        "[check `x` failed at c/file.cpp:12]");
  expect_error_contains([] { detail::throw_error("file.cpp", 3, nullptr, "m"); }, "m [file.cpp:3]");
  expect_error_contains([] { detail::throw_error("/file.cpp", 4, nullptr, "m"); }, "[/file.cpp:4]");
}

TEST(Error, LibraryErrorNamesLibraryCodeAndExpression) {
  expect_error_contains(
      [] {
        detail::throw_library_error("/src/core/cuda/x.cpp", 9, "cudaMalloc(&p, n)", "CUDA", 2,
                                    "cudaErrorMemoryAllocation", "out of memory");
      },
      "CUDA error 2 (cudaErrorMemoryAllocation): out of memory [in `cudaMalloc(&p, n)` at "
      "cuda/x.cpp:9]");
  expect_error_contains(
      [] { detail::throw_library_error("a/b.cpp", 1, "f()", "NCCL", 5, "", "internal error"); },
      "NCCL error 5: internal error [in `f()` at a/b.cpp:1]");
}

TEST(Error, UserMessageDropsCheckLocationsButKeepsLibraryOnes) {
  const auto user_of = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return user_message(e);
    }
    return std::string("(nothing thrown)");
  };
  const int x = 3;
  EXPECT_EQ(user_of([&] { PIT_CHECK(x < 2, "x is ", x, "; make it smaller"); }), "x is 3; make it smaller");
  EXPECT_EQ(user_of([] { PIT_THROW("no file ", "a.h5"); }), "no file a.h5");
  // A message that a caller extended after the location keeps the extension.
  EXPECT_EQ(user_message(Error("cannot open a.h5 [io/hdf5_file.cpp:55]\nrun get_data.sh")),
            "cannot open a.h5\nrun get_data.sh");
  EXPECT_EQ(user_of([] { detail::throw_library_error("a/b.cpp", 1, "f()", "NCCL", 5, "", "internal error"); }),
            "NCCL error 5: internal error [in `f()` at a/b.cpp:1]");
}

// ---- Device ----------------------------------------------------------------------------------

TEST(Device, ParseValidNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:0"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::parse("cuda:12").index, 12);
  EXPECT_TRUE(Device::parse("cuda:3").is_cuda());
  EXPECT_TRUE(Device::parse("cpu").is_cpu());
}

TEST(Device, ParseRejectsBadNamesNamingTheText) {
  expect_error_contains_all([] { (void)Device::parse("cuda:x"); }, {"'cuda:x'", "cuda:N"});
  expect_error_contains([] { (void)Device::parse("tpu"); }, "'tpu'");
  expect_error_contains([] { (void)Device::parse(""); }, "unknown device ''");
  expect_error_contains([] { (void)Device::parse("cuda:"); }, "'cuda:'");
  expect_error_contains([] { (void)Device::parse("cuda:-1"); }, "'cuda:-1'");
  expect_error_contains([] { (void)Device::parse("cuda:1x"); }, "'cuda:1x'");
  expect_error_contains([] { (void)Device::parse("cuda:99999999999"); }, "'cuda:99999999999'");
  expect_error_contains([] { (void)Device::parse("cpu:0"); }, "'cpu:0'");
}

TEST(Device, StrAndComparison) {
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cuda(3).str(), "cuda:3");
  EXPECT_EQ(Device::parse(Device::cuda(2).str()), Device::cuda(2));
  std::ostringstream os;
  os << Device::cuda(1) << "," << Device::cpu();
  EXPECT_EQ(os.str(), "cuda:1,cpu");
  EXPECT_NE(Device::cuda(0), Device::cpu());
  EXPECT_NE(Device::cuda(0), Device::cuda(1));
  EXPECT_LT(Device::cuda(0), Device::cuda(1));
  EXPECT_EQ(Device{}, Device::cpu());
}

TEST(Device, CpuIsAlwaysUsable) {
  EXPECT_NO_THROW(check_device(Device::cpu()));
  EXPECT_EQ(cuda_available(), cuda_device_count() > 0);
  const StreamRef s = current_stream(Device::cpu());
  EXPECT_EQ(s.handle, nullptr);
  EXPECT_NO_THROW(s.synchronize());
  expect_error_contains([] { Stream bad(Device::cpu()); }, "a Stream needs a CUDA device");
}
