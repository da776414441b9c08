// Files, groups and scalar attributes (datasets are in hdf5_dataset.cpp).
#include <filesystem>

#include "trainer/io/hdf5_handle.h"

namespace pit::io {

using detail::check_status;
using detail::checked;

namespace {

// "a/b/c" -> {"a", "a/b", "a/b/c"}; an absolute path keeps its leading "/".
std::vector<std::string> prefixes(const std::string& path) {
  std::vector<std::string> out;
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1))
    out.push_back(path.substr(0, pos));
  if (!path.empty() && path != "/") out.push_back(path);
  return out;
}

herr_t collect_attr_name(hid_t /*loc*/, const char* name, const H5A_info_t* /*info*/, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

H5I_type_t object_type(hid_t loc, const std::string& path) {
  const hid_t id = H5Oopen(loc, path.c_str(), H5P_DEFAULT);
  if (id < 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  Handle object(id);
  return H5Iget_type(id);
}

}  // namespace

// ---- files -----------------------------------------------------------------------------------

File File::create(const std::string& path) {
  detail::silence_hdf5();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) PIT_THROW("HDF5: cannot create file ", path, ": ", detail::take_hdf5_message());
  File file;
  file.handle_ = Handle(id);
  file.file_ = path;
  return file;
}

File File::open(const std::string& path, Mode mode) {
  detail::silence_hdf5();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    // A relative path is relative to the current directory: say which one.
    const std::filesystem::path p(path);
    const std::string where = p.is_relative() ? " (relative to " + std::filesystem::current_path(ec).string() + ")" : "";
    PIT_CHECK(!std::filesystem::is_directory(path, ec), "cannot open ", path, where, ": it is a folder, not a file");
    PIT_THROW("cannot open ", path, where, ": no such file");
  }
  const hid_t id =
      H5Fopen(path.c_str(), mode == Mode::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
  if (id < 0)
    PIT_THROW("HDF5: cannot open file ", path, " (not an HDF5 file, or a truncated one?): ",
              detail::take_hdf5_message());
  File file;
  file.handle_ = Handle(id);
  file.file_ = path;
  return file;
}

void File::flush() const {
  PIT_CHECK(handle_.valid(), "flush() on a closed HDF5 file (", file_, ")");
  check_status(H5Fflush(handle_.get(), H5F_SCOPE_LOCAL), file_, "", "cannot flush");
}

void File::close() {
  if (!handle_.valid()) return;
  const hid_t id = handle_.release();
  if (H5Fclose(id) < 0) PIT_THROW("HDF5: cannot close ", file_, ": ", detail::take_hdf5_message());
}

// ---- groups ----------------------------------------------------------------------------------

std::string Group::full_path(const std::string& path) const {
  if (path.starts_with('/')) return path;
  if (path.empty()) return path_;
  return path_ == "/" ? "/" + path : path_ + "/" + path;
}

bool Group::exists(const std::string& path) const {
  PIT_CHECK(handle_.valid(), "HDF5: use of a closed or empty group (", file_, ")");
  for (const std::string& prefix : prefixes(path)) {
    const htri_t found = H5Lexists(handle_.get(), prefix.c_str(), H5P_DEFAULT);
    if (found <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
  }
  return true;
}

bool Group::is_group(const std::string& path) const {
  return exists(path) && object_type(handle_.get(), path.empty() ? "." : path) == H5I_GROUP;
}

bool Group::is_dataset(const std::string& path) const {
  return exists(path) && object_type(handle_.get(), path) == H5I_DATASET;
}

std::vector<std::string> Group::children() const {
  PIT_CHECK(handle_.valid(), "HDF5: use of a closed or empty group (", file_, ")");
  H5G_info_t info;
  check_status(H5Gget_info(handle_.get(), &info), file_, path_, "cannot list group");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t size = H5Lget_name_by_idx(handle_.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i,
                                            nullptr, 0, H5P_DEFAULT);
    check_status(static_cast<herr_t>(size < 0 ? -1 : 0), file_, path_, "cannot list group");
    std::string name(static_cast<size_t>(size) + 1, '\0');
    H5Lget_name_by_idx(handle_.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(size));
    names.push_back(std::move(name));
  }
  return names;
}

Group Group::group(const std::string& path) const {
  if (!is_group(path))
    PIT_THROW("HDF5: no group '", full_path(path), "' in ", file_,
              exists(path) ? " (it is a dataset)" : "");
  Handle id = checked(H5Gopen2(handle_.get(), path.c_str(), H5P_DEFAULT), file_, full_path(path),
                      "cannot open group");
  return Group(std::move(id), file_, full_path(path));
}

Group Group::create_group(const std::string& path) const {
  if (exists(path)) return group(path);
  Handle lcpl = checked(H5Pcreate(H5P_LINK_CREATE), file_, full_path(path), "cannot create group");
  check_status(H5Pset_create_intermediate_group(lcpl.get(), 1), file_, full_path(path),
               "cannot create group");
  Handle id = checked(H5Gcreate2(handle_.get(), path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                      file_, full_path(path), "cannot create group");
  return Group(std::move(id), file_, full_path(path));
}

// ---- attributes ------------------------------------------------------------------------------

namespace {

void write_attr(const Group& g, const std::string& name, hid_t type, const void* value) {
  const std::string object = g.path() + " @" + name;
  const htri_t found = H5Aexists(g.id(), name.c_str());
  check_status(found, g.file_name(), object, "cannot look up attribute");
  if (found > 0)
    check_status(H5Adelete(g.id(), name.c_str()), g.file_name(), object,
                 "cannot replace attribute");
  Handle space = checked(H5Screate(H5S_SCALAR), g.file_name(), object, "cannot write attribute");
  Handle attr =
      checked(H5Acreate2(g.id(), name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              g.file_name(), object, "cannot create attribute");
  check_status(H5Awrite(attr.get(), type, value), g.file_name(), object, "cannot write attribute");
}

Handle open_attr(const Group& g, const std::string& name) {
  const std::string object = g.path() + " @" + name;
  if (!g.has_attr(name))
    PIT_THROW("HDF5: no attribute '", name, "' on '", g.path(), "' in ", g.file_name());
  return checked(H5Aopen(g.id(), name.c_str(), H5P_DEFAULT), g.file_name(), object,
                 "cannot open attribute");
}

// Reads a one-element numeric attribute as `mem_type` (HDF5 converts). `integer_only` refuses
// floating attributes.
void read_numeric_attr(const Group& g, const std::string& name, hid_t mem_type, bool integer_only,
                       void* out) {
  const std::string object = g.path() + " @" + name;
  Handle attr = open_attr(g, name);
  Handle type = checked(H5Aget_type(attr.get()), g.file_name(), object, "cannot read attribute");
  const H5T_class_t cls = H5Tget_class(type.get());
  const bool ok = cls == H5T_INTEGER || (!integer_only && cls == H5T_FLOAT);
  if (!ok)
    PIT_THROW("HDF5: attribute '", name, "' on '", g.path(), "' in ", g.file_name(), " is not ",
              integer_only ? "an integer" : "a number");
  Handle space = checked(H5Aget_space(attr.get()), g.file_name(), object, "cannot read attribute");
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    PIT_THROW("HDF5: attribute '", name, "' on '", g.path(), "' in ", g.file_name(),
              " is not a single value");
  check_status(H5Aread(attr.get(), mem_type, out), g.file_name(), object, "cannot read attribute");
}

}  // namespace

void Group::set_attr_int(const std::string& name, int64_t value) const {
  write_attr(*this, name, H5T_NATIVE_INT64, &value);
}

void Group::set_attr_real(const std::string& name, double value) const {
  write_attr(*this, name, H5T_NATIVE_DOUBLE, &value);
}

void Group::set_attr_string(const std::string& name, std::string_view value) const {
  const std::string text(value);
  const char* pointer = text.c_str();
  Handle type = detail::vlen_string_type();
  write_attr(*this, name, type.get(), &pointer);
}

bool Group::has_attr(const std::string& name) const {
  PIT_CHECK(handle_.valid(), "HDF5: use of a closed or empty group (", file_, ")");
  const htri_t found = H5Aexists(handle_.get(), name.c_str());
  check_status(found, file_, path_ + " @" + name, "cannot look up attribute");
  return found > 0;
}

int64_t Group::attr_int(const std::string& name) const {
  int64_t value = 0;
  read_numeric_attr(*this, name, H5T_NATIVE_INT64, true, &value);
  return value;
}

double Group::attr_real(const std::string& name) const {
  double value = 0;
  read_numeric_attr(*this, name, H5T_NATIVE_DOUBLE, false, &value);
  return value;
}

std::string Group::attr_string(const std::string& name) const {
  Handle attr = open_attr(*this, name);
  return detail::read_string_attribute(attr.get(), file_, path_ + " @" + name);
}

std::vector<std::string> Group::attr_names() const {
  PIT_CHECK(handle_.valid(), "HDF5: use of a closed or empty group (", file_, ")");
  std::vector<std::string> names;
  check_status(H5Aiterate2(handle_.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr_name,
                           &names),
               file_, path_, "cannot list the attributes of");
  return names;
}

}  // namespace pit::io
