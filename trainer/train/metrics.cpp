#include "trainer/train/metrics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "trainer/quote.h"

namespace pit::train {
namespace {

[[noreturn]] void cannot_write(const std::string& file) {
  PIT_THROW("cannot write the metrics file ", file, ": ", std::strerror(errno), "; set metrics.file to a writable path");
}

// The "step" field of a metrics line, or -1 when it has none.
int64_t step_of(const std::string& line) {
  const auto at = line.find("\"step\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(line.c_str() + at + 7, nullptr, 10);
}

}  // namespace

MetricsRecord::MetricsRecord(int64_t step, std::string split) {
  add("step", step);
  add("split", split);
}

MetricsRecord& MetricsRecord::add(const std::string& key, double value) {
  char buf[32];
  if (std::isfinite(value)) std::snprintf(buf, sizeof buf, "%.6g", value);
  else std::snprintf(buf, sizeof buf, "null");
  fields_.emplace_back(key, buf);
  return *this;
}

MetricsRecord& MetricsRecord::add(const std::string& key, int64_t value) {
  fields_.emplace_back(key, std::to_string(value));
  return *this;
}

MetricsRecord& MetricsRecord::add(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, quote_string(value));
  return *this;
}

std::string MetricsRecord::json() const {
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) out += ", ";
    out += quote_string(fields_[i].first) + ": " + fields_[i].second;
  }
  return out + "}";
}

MetricsLog::MetricsLog(const std::string& path, int64_t keep_until_step) : path_(path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  if (keep_until_step >= 0 && fs::exists(p)) {
    // A resume: the records up to its step, written beside the file and renamed over it, so that
    // a crash or a full disk here leaves the old file whole.
    std::string kept;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty() && step_of(line) <= keep_until_step) {
        kept += line + "\n";
        if (step_of(line) == keep_until_step && line.find("\"split\": \"valid\"") != std::string::npos)
          kept_valid_at_end_ = true;
      }
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) cannot_write(tmp);
    const bool written = std::fputs(kept.c_str(), f) >= 0 && std::fflush(f) == 0;
    if (std::fclose(f) != 0 || !written) cannot_write(tmp);
    std::error_code ec;
    fs::rename(tmp, p, ec);
    PIT_CHECK(!ec, "cannot replace the metrics file ", path, ": ", ec.message());
    file_ = std::fopen(path.c_str(), "a");
  } else {
    file_ = std::fopen(path.c_str(), "w");
  }
  if (file_ == nullptr) cannot_write(path);
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::write(const MetricsRecord& record) {
  if (file_ == nullptr) return;
  std::fprintf(file_, "%s\n", record.json().c_str());
  std::fflush(file_);
}

}  // namespace pit::train
