#include "core/error.h"

#include <regex>
#include <string_view>

namespace pit {

std::string user_message(const std::exception& e) {
  static const std::regex location(R"( \[(check `[^`]*` failed at )?[A-Za-z0-9_./-]+:[0-9]+\])");
  return std::regex_replace(e.what(), location, "");
}

}  // namespace pit

namespace pit::detail {
namespace {

// "/home/u/pit/core/tensor.cpp" -> "core/tensor.cpp": the last two path components.
std::string_view short_path(std::string_view file) {
  const auto last = file.rfind('/');
  if (last == std::string_view::npos || last == 0) return file;
  const auto prev = file.rfind('/', last - 1);
  return prev == std::string_view::npos ? file : file.substr(prev + 1);
}

}  // namespace

void throw_error(const char* file, int line, const char* expr, const std::string& msg) {
  std::ostringstream os;
  os << (msg.empty() ? std::string("internal check failed") : msg);
  os << " [";
  if (expr) os << "check `" << expr << "` failed at ";
  os << short_path(file) << ':' << line << ']';
  throw Error(os.str());
}

void throw_library_error(const char* file, int line, const char* expr, const char* library,
                         long long code, const char* name, const char* text) {
  std::ostringstream os;
  os << library << " error " << code;
  if (name && *name) os << " (" << name << ")";
  if (text && *text) os << ": " << text;
  os << " [in `" << expr << "` at " << short_path(file) << ':' << line << ']';
  throw Error(os.str());
}

}  // namespace pit::detail
