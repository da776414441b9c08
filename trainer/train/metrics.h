#pragma once
// MetricsLog: pit-train's metrics as JSON lines, one object per record, flushed as written so a
// crashed or running job's file is always readable (scripts/plot.py draws it). On resume the
// records after the checkpoint's step are dropped first, so the file reads like one run.
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace pit::train {

class MetricsRecord {
 public:
  MetricsRecord(int64_t step, std::string split);
  MetricsRecord& add(const std::string& key, double value);  // non-finite values become null
  MetricsRecord& add(const std::string& key, int64_t value);
  MetricsRecord& add(const std::string& key, const std::string& value);
  std::string json() const;  // one line, no newline

 private:
  std::vector<std::pair<std::string, std::string>> fields_;  // key, JSON-encoded value
};

class MetricsLog {
 public:
  // Opens `path` (creating its folder). keep_until_step >= 0: first drops records whose step
  // is greater (a resume); -1: starts a new file. An empty path writes nothing (the ranks of a
  // data-parallel run other than rank 0).
  MetricsLog(const std::string& path, int64_t keep_until_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const MetricsRecord& record);
  const std::string& path() const { return path_; }
  // Whether the records kept on a resume end with a valid record at keep_until_step (a run that
  // finished has its final evaluation there; one whose final evaluation failed has none).
  bool kept_valid_at_end() const { return kept_valid_at_end_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool kept_valid_at_end_ = false;
};

}  // namespace pit::train
