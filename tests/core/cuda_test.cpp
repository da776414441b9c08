// core on a GPU: host/device copies, conversions, strided copies, fills and random numbers must
// match the CPU bit for bit; the caching allocator, device checks, streams and printing.
// Every test but the first begins with PIT_REQUIRE_CUDA().
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/core.h"
#include "tests/core/expect_error.h"
#include "tests/core/worst.h"
#include "tests/gpu.h"

using namespace pit;
using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;

namespace {

const Device kGpu = Device::cuda(0);

// The raw bytes of t's elements in row-major order, read on the host.
std::vector<uint8_t> bytes_of(const Tensor& t) {
  const Tensor host = t.to(Device::cpu()).contiguous();
  std::vector<uint8_t> out(host.nbytes());
  if (!out.empty()) std::memcpy(out.data(), host.data_ptr(), out.size());
  return out;
}

// Same dtype, shape and bits. On failure, says where the first difference is.
::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << "dtypes " << a.dtype() << " and " << b.dtype();
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes " << shape_str(a.shape()) << " and "
                                         << shape_str(b.shape());
  const std::vector<uint8_t> x = bytes_of(a), y = bytes_of(b);
  const auto diff = std::mismatch(x.begin(), x.end(), y.begin());
  if (diff.first == x.end()) return ::testing::AssertionSuccess();
  const size_t element = static_cast<size_t>(diff.first - x.begin()) / a.itemsize();
  return ::testing::AssertionFailure()
         << "first difference at element " << element << ": "
         << a.to(Device::cpu(), DType::f64).contiguous().to_vector<double>()[element] << " vs "
         << b.to(Device::cpu(), DType::f64).contiguous().to_vector<double>()[element];
}

// Values every dtype conversion handles without undefined behaviour: no NaN, and nothing that
// reaches infinity in the source dtype (a float -> integer conversion of infinity is undefined).
std::vector<double> conversion_values(DType src) {
  std::vector<double> v = {0,    -0.0,   1,  -1,      2.5,     -2.75,  0.5,    100.25, -128,
                           127,  255,    256, 1000.5, 3.14159265, -7,   65504, -65504, 1e-3,
                           0.1,  -0.9,   0.9, 12345.678};
  if (src != DType::f16) v.insert(v.end(), {1099511627779.0, -3e9, 2147483647.0, 1e15});
  return v;
}

}  // namespace

// ---- device checks (runs with and without a GPU) --------------------------------------------

TEST(CudaDeviceCheck, UnusableDeviceThrowsNamingIt) {
  if (cuda_device_count() == 0) {
    expect_error_contains_all([] { (void)zeros({2}, DType::f32, Device::cuda(0)); },
                              {"cuda:0", "use device cpu"});
    expect_error_contains([] { (void)from_vector<float>({1}).to(Device::cuda(1)); }, "cuda:1");
    expect_error_contains([] { (void)memory_stats(Device::cuda(0)); }, "cuda:0");
    expect_error_contains([] { Stream s(Device::cuda(0)); }, "cuda:0");
    EXPECT_FALSE(cuda_available());
    EXPECT_NO_THROW(empty_cache());
  } else {
    // With a GPU, the same check rejects the first index past the last device.
    const Device past = Device::cuda(cuda_device_count());
    expect_error_contains_all([&] { (void)zeros({2}, DType::f32, past); },
                              {past.str(), "out of range"});
    EXPECT_TRUE(cuda_available());
  }
}

// ---- copies between host and device ----------------------------------------------------------

TEST(Cuda, RoundTripOfEveryDtypeIsExact) {
  PIT_REQUIRE_CUDA();
  for (DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_name(d));
    // Every 16-bit pattern for f16/bf16 (NaNs included), every byte for u8, extremes otherwise.
    Tensor host;
    if (d == DType::f16 || d == DType::bf16) {
      std::vector<uint16_t> bits(65536);
      for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i);
      host = Tensor::empty({65536}, d);
      std::memcpy(host.data_ptr(), bits.data(), 65536 * 2);
    } else if (d == DType::u8) {
      host = arange(0, 256, 1, DType::u8);
    } else if (d == DType::boolean) {
      host = from_vector<bool>({true, false, false, true});
    } else if (d == DType::i32) {
      host = from_vector<int32_t>({0, -1, std::numeric_limits<int32_t>::min(),
                                   std::numeric_limits<int32_t>::max(), 12345});
    } else if (d == DType::i64) {
      host = from_vector<int64_t>({0, -1, std::numeric_limits<int64_t>::min(),
                                   std::numeric_limits<int64_t>::max(), int64_t{1} << 40});
    } else if (d == DType::f32) {
      host = from_vector<float>({0.0f, -0.0f, 1.5f, std::numeric_limits<float>::infinity(),
                                 std::numeric_limits<float>::quiet_NaN(),
                                 std::numeric_limits<float>::denorm_min(), -3.4e38f});
    } else {
      host = from_vector<double>({0.0, -0.0, 0.1, std::numeric_limits<double>::infinity(),
                                  std::numeric_limits<double>::quiet_NaN(),
                                  std::numeric_limits<double>::denorm_min(), -1.7e308});
    }
    const Tensor gpu = host.to(kGpu);
    EXPECT_TRUE(gpu.is_cuda());
    EXPECT_EQ(gpu.device(), kGpu);
    EXPECT_EQ(gpu.dtype(), d);
    EXPECT_FALSE(gpu.shares_storage(host));
    const Tensor back = gpu.to(Device::cpu());
    EXPECT_FALSE(back.is_cuda());
    EXPECT_EQ(bytes_of(back), bytes_of(host));
    EXPECT_TRUE(gpu.to(kGpu).shares_storage(gpu)) << "to() the same device is a no-op";
    // A copy on the device and back keeps the bits too.
    EXPECT_EQ(bytes_of(gpu.clone()), bytes_of(host));
  }
}

TEST(Cuda, FromVectorAndToVector) {
  PIT_REQUIRE_CUDA();
  const Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}, kGpu);
  EXPECT_TRUE(t.is_cuda());
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(t.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(t.select(1, 2).select(0, 1).item<float>(), 6.0f);
  EXPECT_EQ(from_vector<bool>({true, false}, kGpu).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0}));
  const Tensor empty = zeros({0, 4}, DType::f32, kGpu);
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_TRUE(empty.to_vector<float>().empty());
  EXPECT_EQ(empty.to(Device::cpu()).shape(), (Shape{0, 4}));
}

// ---- conversions -----------------------------------------------------------------------------

TEST(Cuda, ConversionsOfEveryDtypePairMatchTheCpu) {
  PIT_REQUIRE_CUDA();
  for (DType src : kAllDTypes) {
    const Tensor src_cpu = from_vector<double>(conversion_values(src)).to(src);
    const Tensor src_gpu = src_cpu.to(kGpu);
    for (DType dst : kAllDTypes) {
      SCOPED_TRACE(std::string(dtype_name(src)) + " -> " + dtype_name(dst));
      const Tensor want = src_cpu.to(dst);
      EXPECT_TRUE(same_bits(src_gpu.to(dst), want)) << "converted on the device";
      EXPECT_TRUE(same_bits(src_cpu.to(kGpu, dst), want)) << "converted on the way to the device";
      EXPECT_TRUE(same_bits(src_gpu.to(Device::cpu(), dst), want)) << "converted on the way back";
      // A strided source and destination on the device.
      const Tensor strided_src = src_gpu.view({-1, 2}).t();
      EXPECT_TRUE(same_bits(strided_src.to(dst), src_cpu.view({-1, 2}).t().to(dst)));
      Tensor dst_gpu = zeros({2, src_cpu.numel() / 2}, dst, kGpu);
      Tensor dst_view = dst_gpu.t();
      dst_view.copy_(src_gpu.view({-1, 2}));
      Tensor dst_cpu = zeros({2, src_cpu.numel() / 2}, dst);
      Tensor dst_cpu_view = dst_cpu.t();
      dst_cpu_view.copy_(src_cpu.view({-1, 2}));
      EXPECT_TRUE(same_bits(dst_gpu, dst_cpu)) << "converting copy_ into a transposed destination";
    }
  }
}

// ---- strided copies --------------------------------------------------------------------------

TEST(Cuda, StridedSourcesMatchTheCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor x_cpu = arange(0, 2 * 3 * 40, 1, DType::f32).view({2, 3, 40});
  const Tensor x_gpu = x_cpu.to(kGpu);
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> views = {
      {"transpose(0, 2)", [](const Tensor& t) { return t.transpose(0, 2); }},
      {"permute(1, 2, 0)", [](const Tensor& t) { return t.permute({1, 2, 0}); }},
      {"slice(2, 1, 40, 3)", [](const Tensor& t) { return t.slice(2, 1, 40, 3); }},
      {"slice(1, 0, 3, 2)", [](const Tensor& t) { return t.slice(1, 0, 3, 2); }},
      {"select(1, 1)", [](const Tensor& t) { return t.select(1, 1); }},
      {"select(2, -1)", [](const Tensor& t) { return t.select(2, -1); }},
      {"expand", [](const Tensor& t) { return t.select(2, 5).unsqueeze(1).expand({2, 7, 3}); }},
      {"expand leading", [](const Tensor& t) { return t.expand({4, 2, 3, 40}); }},
      {"sliced transpose", [](const Tensor& t) { return t.slice(2, 10, 30).transpose(1, 2); }},
      {"0-d", [](const Tensor& t) { return t.select(0, 1).select(0, 2).select(0, 3); }},
      {"empty slice", [](const Tensor& t) { return t.slice(2, 5, 5); }},
  };
  for (const auto& [name, view] : views) {
    SCOPED_TRACE(name);
    const Tensor want = view(x_cpu).contiguous();
    const Tensor got_gpu = view(x_gpu);
    EXPECT_TRUE(got_gpu.is_cuda());
    EXPECT_TRUE(same_bits(got_gpu.contiguous(), want)) << "packed on the device";
    EXPECT_TRUE(same_bits(got_gpu.to(Device::cpu()), want)) << "downloaded directly";
    EXPECT_TRUE(same_bits(got_gpu.to(DType::f64), want.to(DType::f64))) << "with conversion";
    EXPECT_TRUE(same_bits(got_gpu.clone(), want)) << "clone";
  }
}

TEST(Cuda, LargeTransposeMatchesTheCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor x_cpu = arange(0, 300 * 700, 1, DType::i32).view({300, 700});
  const Tensor x_gpu = x_cpu.to(kGpu);
  EXPECT_TRUE(same_bits(x_gpu.t().contiguous(), x_cpu.t().contiguous()));
  EXPECT_TRUE(same_bits(x_gpu.t().to(DType::f32), x_cpu.t().to(DType::f32)));
  // The tiled transpose: ragged edges, batches, a sliced source, 2-byte elements, accumulation.
  const Tensor b_cpu = arange(0, 3 * 70 * 45, 1, DType::f32).view({3, 70, 45});
  const Tensor b_gpu = b_cpu.to(kGpu);
  EXPECT_TRUE(same_bits(b_gpu.transpose(1, 2).contiguous(), b_cpu.transpose(1, 2).contiguous()));
  EXPECT_TRUE(same_bits(b_gpu.slice(2, 3, 40).transpose(1, 2).contiguous(), b_cpu.slice(2, 3, 40).transpose(1, 2).contiguous()));
  EXPECT_TRUE(same_bits(b_gpu.to(DType::bf16).transpose(1, 2).contiguous(), b_cpu.to(DType::bf16).transpose(1, 2).contiguous()));
  // 2-byte transposes with even sizes move pairs of elements (64 x 64 tiles, ragged here); a slice
  // at an odd element offset falls back to the element kernel.
  const Tensor p_cpu = arange(0, 3 * 130 * 94, 1, DType::f32).view({3, 130, 94});
  const Tensor p_gpu = p_cpu.to(kGpu);
  for (const DType dt : {DType::bf16, DType::f16}) {
    EXPECT_TRUE(same_bits(p_gpu.to(dt).transpose(1, 2).contiguous(), p_cpu.to(dt).transpose(1, 2).contiguous()));
    EXPECT_TRUE(same_bits(p_gpu.to(dt).slice(2, 2, 40).transpose(1, 2).contiguous(),
                          p_cpu.to(dt).slice(2, 2, 40).transpose(1, 2).contiguous()));
    EXPECT_TRUE(same_bits(p_gpu.to(dt).slice(2, 3, 41).transpose(1, 2).contiguous(),
                          p_cpu.to(dt).slice(2, 3, 41).transpose(1, 2).contiguous()));
    EXPECT_TRUE(same_bits(x_gpu.to(dt).t().contiguous(), x_cpu.to(dt).t().contiguous()));
  }
  Tensor acc_gpu = ones({3, 45, 70}, DType::f32, kGpu), acc_cpu = ones({3, 45, 70});
  acc_gpu.add_(b_gpu.transpose(1, 2), 2.0);
  acc_cpu.add_(b_cpu.transpose(1, 2), 2.0);
  EXPECT_TRUE(same_bits(acc_gpu, acc_cpu));
}

TEST(Cuda, StridedDestinationsMatchTheCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor src_cpu = arange(0, 24, 1, DType::f32).view({2, 3, 4});
  const Tensor src_gpu = src_cpu.to(kGpu);
  // Each case: make a destination on a device, take a view of it, copy into the view.
  struct Case {
    const char* name;
    Shape base;
    std::function<Tensor(Tensor&)> view;
  };
  const std::vector<Case> cases = {
      {"permuted", {4, 3, 2}, [](Tensor& t) { return t.permute({2, 1, 0}); }},
      {"sliced", {2, 3, 9}, [](Tensor& t) { return t.slice(2, 1, 9, 2); }},
      {"selected", {2, 5, 3, 4}, [](Tensor& t) { return t.select(1, 3); }},
      {"transposed then sliced", {4, 6, 2}, [](Tensor& t) { return t.transpose(0, 2).slice(1, 2, 5); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor want = zeros(c.base);
    Tensor want_view = c.view(want);
    want_view.copy_(src_cpu);
    // device <- device, device <- host, host <- device
    Tensor d1 = zeros(c.base, DType::f32, kGpu);
    Tensor v1 = c.view(d1);
    v1.copy_(src_gpu);
    EXPECT_TRUE(same_bits(d1, want)) << "device source";
    Tensor d2 = zeros(c.base, DType::f32, kGpu);
    Tensor v2 = c.view(d2);
    v2.copy_(src_cpu);
    EXPECT_TRUE(same_bits(d2, want)) << "host source";
    Tensor d3 = zeros(c.base);
    Tensor v3 = c.view(d3);
    v3.copy_(src_gpu);
    EXPECT_TRUE(same_bits(d3, want)) << "device source into a host destination";
  }
}

TEST(Cuda, BroadcastingCopiesMatchTheCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor row_cpu = from_vector<float>({1, 2, 3, 4});
  Tensor want = zeros({3, 4});
  want.copy_(row_cpu);
  Tensor a = zeros({3, 4}, DType::f32, kGpu);
  a.copy_(row_cpu.to(kGpu));
  EXPECT_TRUE(same_bits(a, want)) << "device source";
  Tensor b = zeros({3, 4}, DType::f32, kGpu);
  b.copy_(row_cpu);
  EXPECT_TRUE(same_bits(b, want)) << "host source";
  Tensor c = zeros({3, 4});
  c.copy_(row_cpu.to(kGpu));
  EXPECT_TRUE(same_bits(c, want)) << "device source, host destination";
  Tensor d = zeros({4, 3}, DType::f64, kGpu);
  Tensor dt = d.t();
  dt.copy_(full({}, 2.5, DType::f32, kGpu));
  EXPECT_EQ(d.to_vector<double>(), std::vector<double>(12, 2.5)) << "0-d into a transposed view";
}

TEST(Cuda, OverlappingCopyAndFillOnViews) {
  PIT_REQUIRE_CUDA();
  Tensor x = arange(0, 5, 1, DType::f32, kGpu);
  Tensor tail = x.slice(0, 1, 5);
  tail.copy_(x.slice(0, 0, 4));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 0, 1, 2, 3}));
  Tensor m = zeros({3, 4}, DType::i32, kGpu);
  Tensor cols = m.slice(1, 0, 4, 2);
  cols.fill_(7);
  EXPECT_EQ(m.to_vector<int32_t>(), (std::vector<int32_t>{7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0}));
  Tensor row = m.select(0, 1);
  row.zero_();
  EXPECT_EQ(m.to_vector<int32_t>(), (std::vector<int32_t>{7, 0, 7, 0, 0, 0, 0, 0, 7, 0, 7, 0}));
}

TEST(Cuda, AddMatchesTheCpuOnExactValues) {
  PIT_REQUIRE_CUDA();
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    SCOPED_TRACE(dtype_name(d));
    Tensor want = arange(0, 12, 1, d).view({3, 4});
    want.add_(from_vector<int32_t>({1, 2, 3, 4}), 2.0);
    Tensor got = arange(0, 12, 1, d, kGpu).view({3, 4});
    got.add_(from_vector<int32_t>({1, 2, 3, 4}, kGpu), 2.0);
    EXPECT_TRUE(same_bits(got, want));
    Tensor gt = got.t();
    gt.add_(ones({4, 3}, DType::f64, kGpu).slice(1, 0, 1), -1.0);  // broadcast, strided
    Tensor wt = want.t();
    wt.add_(ones({4, 3}, DType::f64).slice(1, 0, 1), -1.0);
    EXPECT_TRUE(same_bits(got, want));
  }
}

// ---- fills -----------------------------------------------------------------------------------

TEST(Cuda, FillsMatchTheCpuForEveryDtype) {
  PIT_REQUIRE_CUDA();
  for (DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_name(d));
    EXPECT_TRUE(same_bits(zeros({1000}, d, kGpu), zeros({1000}, d)));
    EXPECT_TRUE(same_bits(ones({3, 5}, d, kGpu), ones({3, 5}, d)));
    for (double v : {2.5, -3.75, 0.1, 1.0 / 3.0, 70000.5, -0.0, 255.0, 1e10}) {
      EXPECT_TRUE(same_bits(full({7}, v, d, kGpu), full({7}, v, d))) << "full " << v;
    }
    EXPECT_TRUE(same_bits(full({}, 4.0, d, kGpu), full({}, 4.0, d)));
    EXPECT_EQ(zeros({0}, d, kGpu).numel(), 0);
  }
}

TEST(Cuda, ArangeMatchesTheCpuForEveryDtype) {
  PIT_REQUIRE_CUDA();
  struct Range {
    double start, end, step;
  };
  const std::vector<Range> ranges = {{0, 300, 1},     {5, -5, -1},        {0, 1, 0.1},
                                     {-3, 3, 0.25},   {0.1, 1.7, 0.1},    {10, 0, -0.75},
                                     {0.3, 77.7, 0.7}, {1e3, 1e3 + 1, 1e-2}, {0, 100000, 1}};
  for (DType d : kAllDTypes) {
    for (const Range& r : ranges) {
      SCOPED_TRACE(std::string(dtype_name(d)) + " arange(" + std::to_string(r.start) + ", " +
                   std::to_string(r.end) + ", " + std::to_string(r.step) + ")");
      EXPECT_TRUE(same_bits(arange(r.start, r.end, r.step, d, kGpu), arange(r.start, r.end, r.step, d)));
    }
  }
}

// ---- random numbers --------------------------------------------------------------------------

TEST(Cuda, RandIsBitIdenticalToTheCpu) {
  PIT_REQUIRE_CUDA();
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    SCOPED_TRACE(dtype_name(d));
    manual_seed(1234);
    const Tensor warmup = rand({3});  // a draw at a non-zero offset follows
    const Tensor cpu = rand({100003}, d);
    const uint64_t cpu_offset = default_generator().offset();
    manual_seed(1234);
    const Tensor warmup_gpu = rand({3}, DType::f32, kGpu);
    const Tensor gpu = rand({100003}, d, kGpu);
    EXPECT_EQ(default_generator().offset(), cpu_offset) << "both devices reserve the same blocks";
    EXPECT_TRUE(same_bits(warmup_gpu, warmup));
    EXPECT_TRUE(same_bits(gpu, cpu));
    const std::vector<double> v = gpu.to_vector<double>();
    EXPECT_LT(*std::max_element(v.begin(), v.end()), 1.0);
    EXPECT_GE(*std::min_element(v.begin(), v.end()), 0.0);
  }
}

TEST(Cuda, RandnAgreesWithTheCpu) {
  PIT_REQUIRE_CUDA();
  // Box-Muller runs through the host's and the device's libm, which may differ by an ulp in
  // double; rounded to f32 that almost never shows.
  manual_seed(4321);
  const std::vector<float> cpu = randn({100003}).to_vector<float>();
  manual_seed(4321);
  const std::vector<float> gpu = randn({100003}, DType::f32, kGpu).to_vector<float>();
  ASSERT_EQ(cpu.size(), gpu.size());
  double worst = 0;
  size_t worst_at = 0, differing = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (cpu[i] == gpu[i]) continue;
    ++differing;
    const double rel = std::fabs(static_cast<double>(cpu[i]) - gpu[i]) /
                       std::max(std::fabs(static_cast<double>(cpu[i])), 1e-30);
    if (test::worse(rel, worst)) {
      worst = rel;
      worst_at = i;
    }
  }
  std::printf("randn f32 cpu vs cuda:0: %zu of %zu differ; worst relative difference %.3g at %zu\n",
              differing, cpu.size(), worst, worst_at);
  EXPECT_LE(worst, 1e-6) << "element " << worst_at << ": " << cpu[worst_at] << " vs " << gpu[worst_at];

  // f64 holds the same f32 draws; f16 and bf16 round them, at most one ulp apart.
  for (DType d : {DType::f64, DType::f16, DType::bf16}) {
    manual_seed(4321);
    const std::vector<double> c = randn({100003}, d).to_vector<double>();
    manual_seed(4321);
    const std::vector<double> g = randn({100003}, d, kGpu).to_vector<double>();
    const double tol = d == DType::f64 ? 1e-6 : d == DType::f16 ? 0x1p-10 : 0x1p-7;
    size_t bad = 0;
    for (size_t i = 0; i < c.size(); ++i)
      if (std::fabs(c[i] - g[i]) > tol * std::max(std::fabs(c[i]), 1e-3)) ++bad;
    EXPECT_EQ(bad, 0u) << dtype_name(d);
  }
}

// ---- caching allocator -----------------------------------------------------------------------

TEST(Cuda, CachingAllocatorReusesFreedBlocks) {
  PIT_REQUIRE_CUDA();
  empty_cache();
  const MemoryStats s0 = memory_stats(kGpu);
  EXPECT_EQ(s0.cached, 0u) << "empty_cache() frees every cached block";
  EXPECT_EQ(s0.reserved, s0.allocated);
  constexpr size_t kBytes = 1 << 16;  // 64 KiB
  void* first = nullptr;
  size_t block = 0;
  MemoryStats s1;
  {
    const Tensor a = Tensor::empty({kBytes / 4}, DType::f32, kGpu);
    first = a.data_ptr();
    s1 = memory_stats(kGpu);
    EXPECT_EQ(s1.device_mallocs, s0.device_mallocs + 1) << "nothing cached: a cudaMalloc";
    EXPECT_EQ(s1.allocations, s0.allocations + 1);
    block = s1.allocated - s0.allocated;
    EXPECT_GE(block, kBytes);
    EXPECT_EQ(s1.reserved, s0.reserved + block);
    EXPECT_EQ(s1.cached, 0u);
    EXPECT_GE(s1.peak_allocated, s1.allocated);
  }
  const MemoryStats s2 = memory_stats(kGpu);
  EXPECT_EQ(s2.allocated, s0.allocated) << "freed";
  EXPECT_EQ(s2.cached, block) << "kept for reuse";
  EXPECT_EQ(s2.reserved, s1.reserved) << "still held from the driver";
  EXPECT_EQ(s2.peak_allocated, s1.peak_allocated);
  {
    const Tensor b = Tensor::empty({kBytes / 4}, DType::f32, kGpu);
    const MemoryStats s3 = memory_stats(kGpu);
    EXPECT_EQ(s3.device_mallocs, s1.device_mallocs) << "the cached block was reused";
    EXPECT_EQ(s3.allocations, s1.allocations + 1);
    EXPECT_EQ(b.data_ptr(), first);
    EXPECT_EQ(s3.allocated, s1.allocated);
    EXPECT_EQ(s3.cached, 0u);
    EXPECT_EQ(s3.reserved, s1.reserved);
  }
  empty_cache();
  const MemoryStats s4 = memory_stats(kGpu);
  EXPECT_EQ(s4.cached, 0u);
  EXPECT_EQ(s4.reserved, s0.reserved) << "empty_cache() gives the block back";
  EXPECT_EQ(s4.allocated, s0.allocated);
}

TEST(Cuda, PeakMemoryAndReset) {
  PIT_REQUIRE_CUDA();
  empty_cache();
  reset_peak_memory(kGpu);
  const MemoryStats s0 = memory_stats(kGpu);
  EXPECT_EQ(s0.peak_allocated, s0.allocated);
  size_t both = 0;
  {
    const Tensor a = Tensor::empty({1 << 20}, DType::u8, kGpu);
    const Tensor b = Tensor::empty({1 << 20}, DType::u8, kGpu);
    both = memory_stats(kGpu).allocated - s0.allocated;
    EXPECT_GE(both, size_t{2} << 20);
    EXPECT_EQ(memory_stats(kGpu).peak_allocated, s0.allocated + both);
  }
  EXPECT_EQ(memory_stats(kGpu).peak_allocated, s0.allocated + both) << "the peak survives frees";
  reset_peak_memory(kGpu);
  EXPECT_EQ(memory_stats(kGpu).peak_allocated, memory_stats(kGpu).allocated);
  empty_cache();
}

TEST(Cuda, FreedBlocksAreReusedOnlyOnTheirStream) {
  PIT_REQUIRE_CUDA();
  empty_cache();
  Stream stream(kGpu);
  {
    StreamGuard guard(stream);
    const Tensor a = Tensor::empty({4096}, DType::f32, kGpu);
  }
  const MemoryStats s0 = memory_stats(kGpu);
  EXPECT_GT(s0.cached, 0u);
  {
    const Tensor b = Tensor::empty({4096}, DType::f32, kGpu);  // the default stream
    EXPECT_EQ(memory_stats(kGpu).device_mallocs, s0.device_mallocs + 1)
        << "a block freed on another stream is not handed to the default stream";
  }
  stream.synchronize();
  empty_cache();
  EXPECT_EQ(memory_stats(kGpu).cached, 0u);
}

// ---- devices and streams ---------------------------------------------------------------------

TEST(Cuda, OutOfRangeDeviceThrowsNamingIt) {
  PIT_REQUIRE_CUDA();
  expect_error_contains_all([] { (void)zeros({2}, DType::f32, Device::cuda(99)); },
                            {"cuda:99", "out of range"});
  expect_error_contains([] { (void)from_vector<float>({1}).to(Device::cuda(99)); }, "cuda:99");
  expect_error_contains([] { (void)memory_stats(Device::cuda(99)); }, "cuda:99");
  expect_error_contains([] { Stream s(Device::cuda(99)); }, "cuda:99");
  EXPECT_NO_THROW(check_device(kGpu));
  EXPECT_GE(cuda_device_count(), 1);
}

TEST(Cuda, StreamGuardSetsTheCurrentStream) {
  PIT_REQUIRE_CUDA();
  Stream s1(kGpu), s2(kGpu);
  EXPECT_NE(s1.ref().handle, nullptr);
  EXPECT_NE(s1.ref().handle, s2.ref().handle);
  EXPECT_EQ(s1.ref().device, kGpu);
  EXPECT_EQ(current_stream(kGpu).handle, nullptr) << "the legacy default stream";
  {
    StreamGuard g1(s1);
    EXPECT_EQ(current_stream(kGpu).handle, s1.ref().handle);
    {
      StreamGuard g2(s2);
      EXPECT_EQ(current_stream(kGpu).handle, s2.ref().handle);
    }
    EXPECT_EQ(current_stream(kGpu).handle, s1.ref().handle);
  }
  EXPECT_EQ(current_stream(kGpu).handle, nullptr);
  Stream moved = std::move(s1);
  EXPECT_NE(moved.ref().handle, nullptr);
  moved.synchronize();
}

TEST(Cuda, WorkUnderAStreamGuardIsCorrectAfterSynchronize) {
  PIT_REQUIRE_CUDA();
  Stream stream(kGpu);
  Tensor result;
  std::vector<float> read_inside;
  {
    StreamGuard guard(stream);
    const Tensor x = arange(0, 100000, 1, DType::f32, kGpu);
    Tensor y = x.view({1000, 100}).t().contiguous();  // y[j][i] = 100 i + j
    y.add_(ones({100, 1000}, DType::f32, kGpu), 1.0);
    result = y.to(DType::f64);
    read_inside = y.slice(0, 0, 2).to_vector<float>();  // waits for the guarded stream
  }
  stream.synchronize();  // the default stream does not wait for a non-blocking one
  const std::vector<double> v = result.to_vector<double>();
  ASSERT_EQ(v.size(), 100000u);
  size_t wrong = 0;
  for (size_t j = 0; j < 100; ++j)
    for (size_t i = 0; i < 1000; ++i)
      if (v[j * 1000 + i] != static_cast<double>(100 * i + j + 1)) ++wrong;
  EXPECT_EQ(wrong, 0u);
  ASSERT_EQ(read_inside.size(), 2000u);
  EXPECT_EQ(read_inside[0], 1.0f);
  EXPECT_EQ(read_inside[1], 101.0f);
  EXPECT_EQ(read_inside[1000], 2.0f);
}

TEST(Cuda, RandomDrawUnderAStreamGuard) {
  PIT_REQUIRE_CUDA();
  Stream stream(kGpu);
  manual_seed(77);
  const Tensor want = rand({5000});
  manual_seed(77);
  Tensor got;
  {
    StreamGuard guard(stream);
    got = rand({5000}, DType::f32, kGpu);
  }
  stream.synchronize();
  EXPECT_TRUE(same_bits(got, want));
}

// ---- printing --------------------------------------------------------------------------------

TEST(Cuda, PrintingACudaTensor) {
  PIT_REQUIRE_CUDA();
  const Tensor t = arange(0, 6, 1, DType::f32, kGpu).view({2, 3});
  EXPECT_EQ(t.str(), "tensor(shape=[2, 3], dtype=f32, device=cuda:0)\n[[0, 1, 2],\n [3, 4, 5]]");
  const std::string big = arange(0, 5000, 1, DType::bf16, kGpu).str();
  EXPECT_NE(big.find("device=cuda:0"), std::string::npos) << big;
  EXPECT_NE(big.find("..."), std::string::npos) << big;
}
