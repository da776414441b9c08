#pragma once
// Values: a config's validated values by dotted key ("optim.lr"), each with where it was set.
// The loader (trainer/config/loader.h) fills it; cross checks and the typed Config read it.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "trainer/config/schema.h"

namespace pit::train {

// Thrown when a key has no valid value (it was wrong, or is required and missing). The loader
// catches it to skip the cross checks that read such a key: their keys already have an error.
class MissingValue : public Error {
 public:
  using Error::Error;
};

class Values {
 public:
  // origin: "file.yaml:3:7", "--set optim.lr=1e-3", or "" for a default.
  void set(std::string key, Value value, std::string origin);
  void erase(std::string_view key);
  bool has(std::string_view key) const;

  const Value& get(std::string_view key) const;  // throws MissingValue
  const std::string& origin(std::string_view key) const;
  bool from_default(std::string_view key) const { return origin(key).empty(); }

  // Typed access; asking for the wrong type is a bug and throws pit::Error.
  bool boolean(std::string_view key) const;
  int64_t integer(std::string_view key) const;
  double real(std::string_view key) const;
  const std::string& string(std::string_view key) const;  // string and choice keys
  const std::vector<int64_t>& int_list(std::string_view key) const;
  const std::vector<double>& real_list(std::string_view key) const;
  const std::vector<std::string>& string_list(std::string_view key) const;

 private:
  struct Entry {
    Value value;
    std::string origin;
  };
  const Entry& entry(std::string_view key) const;
  template <typename T>
  const T& typed(std::string_view key) const;

  std::map<std::string, Entry, std::less<>> entries_;
};

// Every key of `schema` that `values` holds, as YAML in schema order. With docs, each key's doc
// follows as a comment, aligned per section (lines over 40 characters are left out of the
// alignment).
std::string to_yaml(const Schema& schema, const Values& values, bool with_docs);

}  // namespace pit::train
