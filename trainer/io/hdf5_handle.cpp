#include "trainer/io/hdf5_handle.h"

#include <utility>
#include <vector>

namespace pit::io {

bool Handle::reset() noexcept {
  if (id_ < 0) return true;
  const hid_t id = std::exchange(id_, -1);
  herr_t status = -1;
  switch (H5Iget_type(id)) {
    case H5I_FILE: status = H5Fclose(id); break;
    case H5I_GROUP: status = H5Gclose(id); break;
    case H5I_DATASET: status = H5Dclose(id); break;
    case H5I_DATASPACE: status = H5Sclose(id); break;
    case H5I_DATATYPE: status = H5Tclose(id); break;
    case H5I_ATTR: status = H5Aclose(id); break;
    case H5I_GENPROP_LST: status = H5Pclose(id); break;
    default: break;  // no longer a valid identifier: nothing to close
  }
  if (status < 0) H5Eclear2(H5E_DEFAULT);
  return status >= 0;
}

namespace detail {
namespace {

herr_t collect(unsigned /*n*/, const H5E_error2_t* entry, void* data) {
  auto* lines = static_cast<std::vector<std::string>*>(data);
  std::string line = entry->desc ? entry->desc : "";
  char minor[256] = {};
  if (H5Eget_msg(entry->min_num, nullptr, minor, sizeof minor) > 0 && minor[0] != '\0')
    line += line.empty() ? std::string(minor) : " (" + std::string(minor) + ")";
  if (!line.empty()) lines->push_back(std::move(line));
  return 0;
}

// Shared by attributes and datasets: `type` is the file type, `read(mem_type, buffer)` reads.
template <typename ReadFn>
std::string read_string_value(hid_t type, const std::string& file, const std::string& object,
                              ReadFn&& read) {
  if (H5Tget_class(type) != H5T_STRING)
    PIT_THROW("HDF5: '", object, "' in ", file, " does not hold a string");
  const htri_t variable = H5Tis_variable_str(type);
  check_status(variable, file, object, "cannot inspect the string type of");
  // HDF5 1.10 does not convert between character sets: read in the file's (ASCII from C tools,
  // UTF-8 from pit and h5py).
  const H5T_cset_t cset = H5Tget_cset(type);
  const auto same_cset = [&](hid_t mem) {
    if (cset != H5T_CSET_ERROR) check_status(H5Tset_cset(mem, cset), file, object, "cannot read string");
  };
  if (variable > 0) {
    Handle mem = vlen_string_type();
    same_cset(mem.get());
    char* text = nullptr;
    check_status(read(mem.get(), static_cast<void*>(&text)), file, object, "cannot read string");
    std::string out = text ? text : "";
    if (text) H5free_memory(text);
    return out;
  }
  const size_t size = H5Tget_size(type);
  Handle mem = checked(H5Tcopy(H5T_C_S1), file, object, "cannot make a string type for");
  check_status(H5Tset_size(mem.get(), size), file, object, "cannot size the string type for");
  check_status(H5Tset_strpad(mem.get(), H5T_STR_NULLPAD), file, object, "cannot pad the string of");
  same_cset(mem.get());
  std::string out(size, '\0');
  check_status(read(mem.get(), static_cast<void*>(out.data())), file, object, "cannot read string");
  out.resize(out.find('\0') == std::string::npos ? out.size() : out.find('\0'));
  return out;
}

}  // namespace

void silence_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string take_hdf5_message() {
  std::vector<std::string> lines;
  // Downward: from the API function that failed to the innermost function that saw the error.
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &lines);
  H5Eclear2(H5E_DEFAULT);
  if (lines.empty()) return "";
  if (lines.size() == 1) return lines.front();
  return lines.front() + ": " + lines.back();
}

void throw_hdf5(const std::string& file, const std::string& object, const std::string& what) {
  std::string message = take_hdf5_message();
  if (message.empty()) message = "no message from the HDF5 library";
  const std::string where = object.empty() ? "" : " '" + object + "'";
  PIT_THROW("HDF5: ", what, where, " in ", file, ": ", message);
}

Handle vlen_string_type() {
  Handle type(H5Tcopy(H5T_C_S1));
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
    PIT_THROW("HDF5: cannot make a variable-length string type: ", take_hdf5_message());
  return type;
}

std::string read_string_attribute(hid_t attr, const std::string& file, const std::string& object) {
  Handle type = checked(H5Aget_type(attr), file, object, "cannot get the type of attribute");
  Handle space = checked(H5Aget_space(attr), file, object, "cannot get the shape of attribute");
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (H5Tget_class(type.get()) == H5T_STRING && count != 1)  // H5Aread would write them all into one
    PIT_THROW("HDF5: an attribute of '", object, "' in ", file, " holds ", count, " elements, not one string");
  return read_string_value(type.get(), file, object,
                           [&](hid_t mem, void* buf) { return H5Aread(attr, mem, buf); });
}

std::string read_string_dataset(hid_t dataset, const std::string& file, const std::string& object) {
  Handle type = checked(H5Dget_type(dataset), file, object, "cannot get the type of dataset");
  Handle space = checked(H5Dget_space(dataset), file, object, "cannot get the shape of dataset");
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (H5Tget_class(type.get()) == H5T_STRING && count != 1)
    PIT_THROW("HDF5: dataset '", object, "' in ", file, " holds ", count,
              " elements, not one string");
  return read_string_value(type.get(), file, object, [&](hid_t mem, void* buf) {
    return H5Dread(dataset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

}  // namespace detail
}  // namespace pit::io
