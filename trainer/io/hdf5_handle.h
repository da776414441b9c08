#pragma once
// Internal to trainer/io: HDF5's error stack as pit::Error, and small helpers shared by the
// .cpp files of this folder. Only trainer/io/*.cpp include this header (it includes hdf5.h).
#include <hdf5.h>

#include <string>
#include <type_traits>

#include "trainer/io/hdf5.h"

namespace pit::io::detail {

static_assert(std::is_same_v<hid_t, Hid>, "pit::io::Hid must be HDF5's hid_t");

// Turns off HDF5's automatic printing of its error stack, so that failures reach the caller
// only as pit::Error. Cheap; called before every file is created or opened.
void silence_hdf5();

// The message on HDF5's error stack (the failing API call's description, then the innermost
// cause), cleared afterwards; "" when the stack is empty.
std::string take_hdf5_message();

// Throws pit::Error: "HDF5: <what> '<object>' in <file>: <HDF5 message>".
[[noreturn]] void throw_hdf5(const std::string& file, const std::string& object,
                             const std::string& what);

// Wraps an identifier returned by an HDF5 call; throws (see throw_hdf5) when it is negative.
inline Handle checked(hid_t id, const std::string& file, const std::string& object,
                      const std::string& what) {
  if (id < 0) throw_hdf5(file, object, what);
  return Handle(id);
}

// Throws (see throw_hdf5) when an herr_t (or htri_t) status is negative.
inline void check_status(herr_t status, const std::string& file, const std::string& object,
                         const std::string& what) {
  if (status < 0) throw_hdf5(file, object, what);
}

// A variable-length UTF-8 string type (what h5py writes for str).
Handle vlen_string_type();

// Reads the scalar string held by an attribute or a dataset (fixed or variable length).
std::string read_string_attribute(hid_t attr, const std::string& file, const std::string& object);
std::string read_string_dataset(hid_t dataset, const std::string& file, const std::string& object);

}  // namespace pit::io::detail
