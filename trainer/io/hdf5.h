#pragma once
// A thin RAII layer over the HDF5 C API: files, groups by slash path, pit::Tensor datasets of
// every dtype, string datasets and scalar attributes. Every HDF5 failure becomes a pit::Error
// naming the file, the object and HDF5's own message; HDF5's automatic error printing is off.
//
// Tensors are stored in their natural HDF5 type (f32 -> float32, i64 -> int64, u8 -> uint8...).
// f16 and bf16 are stored as uint16 bit patterns and bool as uint8, each with a string attribute
// "dtype" ("f16", "bf16", "bool"), so that they come back bit-exactly. CUDA tensors are copied to
// the host to be written; read() always returns contiguous CPU tensors.
//
//   io::File f = io::File::create("out.h5");
//   f.write("model/w", w);            // creates the group "model"
//   f.set_attr_int("step", 12);
//   Tensor w2 = io::File::open("out.h5").read("model/w");
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pit::io {

using Hid = int64_t;  // HDF5's hid_t (int64_t since HDF5 1.10)

// Owns one HDF5 identifier and closes it with the matching H5*close. Move-only; the destructor
// never throws.
class Handle {
 public:
  Handle() = default;
  explicit Handle(Hid id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, -1);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  Hid get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  Hid release() noexcept { return std::exchange(id_, -1); }  // the caller closes it
  // Closes now; false when HDF5 reported a failure (its error stack is then cleared).
  bool reset() noexcept;

 private:
  Hid id_ = -1;
};

// What a dataset holds, read from its metadata only.
struct DatasetInfo {
  Shape shape;
  // The stored element type: "uint8", "int16", "uint16", "int32", "int64", "float32", "float64",
  // ..., "f16", "bf16" or "bool" (from the "dtype" attribute), "string", or "other".
  std::string type;
  // The dtype read(path) returns; empty when pit has no such dtype (read(path, as) converts).
  std::optional<DType> dtype;
};

// A group of an open file (the root group is the file itself). Paths are slash-separated and
// relative to this group; a leading "/" makes them absolute. Move-only.
class Group {
 public:
  Group() = default;  // refers to nothing

  const std::string& file_name() const { return file_; }
  const std::string& path() const { return path_; }  // absolute, "/" for the root
  Hid id() const { return handle_.get(); }

  bool exists(const std::string& path) const;  // a group or dataset at path (no throw if not)
  bool is_group(const std::string& path) const;
  bool is_dataset(const std::string& path) const;
  std::vector<std::string> children() const;  // names of the direct members, sorted

  Group group(const std::string& path) const;         // an existing group
  Group create_group(const std::string& path) const;  // creates the missing groups on the path

  // A new dataset holding `tensor`; missing groups on the path are created. An existing object
  // at path is an error.
  void write(const std::string& path, const Tensor& tensor) const;
  // The dataset as a contiguous CPU tensor in its stored dtype; a type that pit has no dtype for
  // (e.g. uint16) is an error naming it and suggesting read(path, dtype).
  Tensor read(const std::string& path) const;
  // The dataset converted to `as` (integer and floating types of any width).
  Tensor read(const std::string& path, DType as) const;
  DatasetInfo info(const std::string& path) const;

  void write_string(const std::string& path, std::string_view value) const;  // UTF-8 string
  std::string read_string(const std::string& path) const;

  // Scalar attributes of this group. set_* replaces an existing attribute of the same name.
  void set_attr_int(const std::string& name, int64_t value) const;
  void set_attr_real(const std::string& name, double value) const;
  void set_attr_string(const std::string& name, std::string_view value) const;
  bool has_attr(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;      // any integer attribute
  double attr_real(const std::string& name) const;      // any numeric attribute
  std::string attr_string(const std::string& name) const;
  std::vector<std::string> attr_names() const;

 protected:
  Group(Handle handle, std::string file, std::string path)
      : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)) {}
  std::string full_path(const std::string& path) const;  // absolute path, for messages

  Handle handle_;
  std::string file_;
  std::string path_ = "/";
};

enum class Mode { read, read_write };

class File : public Group {
 public:
  File() = default;
  // Creates `path`, replacing an existing file.
  static File create(const std::string& path);
  // Opens an existing file. A missing file, or one that is not HDF5, is an error naming it.
  static File open(const std::string& path, Mode mode = Mode::read);

  void flush() const;  // hands HDF5's buffers to the operating system
  // Closes now and reports a failure (the destructor closes silently). Groups still open keep
  // the file open until they close.
  void close();
};

}  // namespace pit::io
