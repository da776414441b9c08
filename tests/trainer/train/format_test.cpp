#include <gtest/gtest.h>

#include <cmath>

#include "trainer/train/format.h"
#include "trainer/train/metrics.h"

namespace pit::train {
namespace {

TEST(TrainFormat, Durations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(2 * 3600 + 7 * 60 + 5), "2h07m");
  EXPECT_EQ(format_duration(86400 + 4 * 3600), "1d04h");
  EXPECT_EQ(format_duration(NAN), "?");
}

TEST(TrainFormat, RatesAndBytes) {
  EXPECT_EQ(format_rate(950), "950");
  EXPECT_EQ(format_rate(1234), "1.23k");
  EXPECT_EQ(format_rate(12345), "12.3k");
  EXPECT_EQ(format_rate(1.25e6), "1.25M");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1.5 * 1024 * 1024), "1.5 MiB");
}

TEST(TrainFormat, MetricsRecordsAreJson) {
  MetricsRecord r(12, "train");
  r.add("loss", 2.5).add("note", std::string("a \"b\"\n")).add("nan", NAN).add("n", int64_t{3});
  EXPECT_EQ(r.json(), "{\"step\": 12, \"split\": \"train\", \"loss\": 2.5, \"note\": \"a \\\"b\\\"\\n\", "
                      "\"nan\": null, \"n\": 3}");
}

}  // namespace
}  // namespace pit::train
