// Tensor and string datasets.
#include <cstdint>
#include <optional>

#include "trainer/io/hdf5_handle.h"

namespace pit::io {

using detail::check_status;
using detail::checked;

namespace {

static_assert(sizeof(bool) == 1, "bool tensors are stored as one byte per element");

constexpr const char* kDTypeAttr = "dtype";  // set on f16, bf16 and bool datasets

// The HDF5 type a dtype is stored as (little-endian in the file) and read into (native).
struct Types {
  hid_t file;
  hid_t memory;
};

Types types_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
    case DType::f64: return {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
    case DType::f16:
    case DType::bf16: return {H5T_STD_U16LE, H5T_NATIVE_UINT16};  // bit patterns
    case DType::i32: return {H5T_STD_I32LE, H5T_NATIVE_INT32};
    case DType::i64: return {H5T_STD_I64LE, H5T_NATIVE_INT64};
    case DType::u8:
    case DType::boolean: return {H5T_STD_U8LE, H5T_NATIVE_UINT8};
  }
  PIT_THROW("HDF5: invalid dtype value ", static_cast<int>(dtype));
}

// True for the dtypes whose storage needs the "dtype" attribute to be read back as themselves.
bool tagged(DType dtype) {
  return dtype == DType::f16 || dtype == DType::bf16 || dtype == DType::boolean;
}

struct Stored {
  DatasetInfo info;
  bool numeric = false;  // integer or floating file type: HDF5 can convert it
};

Stored inspect(hid_t dataset, const std::string& file, const std::string& object) {
  Stored out;
  Handle space = checked(H5Dget_space(dataset), file, object, "cannot get the shape of dataset");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  check_status(rank, file, object, "cannot get the shape of dataset");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  check_status(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), file, object,
               "cannot get the shape of dataset");
  const H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
  if (space_class != H5S_SIMPLE && space_class != H5S_SCALAR)  // a null dataspace holds nothing to read
    PIT_THROW("HDF5: dataset '", object, "' in ", file, " holds no data (an empty dataspace); the file is "
              "corrupt or was not written for pit");
  int64_t elements = 1;  // a count that wraps would size a tiny buffer for the whole dataset
  for (const hsize_t d : dims)
    if (d > static_cast<hsize_t>(INT64_MAX) || __builtin_mul_overflow(elements, static_cast<int64_t>(d), &elements))
      PIT_THROW("HDF5: dataset '", object, "' in ", file, " is too large to load (a dimension of ", d,
                "); the file is corrupt or was not written for pit");
  out.info.shape.assign(dims.begin(), dims.end());

  Handle type = checked(H5Dget_type(dataset), file, object, "cannot get the type of dataset");
  const H5T_class_t cls = H5Tget_class(type.get());
  const size_t bits = H5Tget_size(type.get()) * 8;
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.get()) != H5T_SGN_NONE;
    out.info.type = (is_signed ? "int" : "uint") + std::to_string(bits);
    out.numeric = true;
  } else if (cls == H5T_FLOAT) {
    out.info.type = "float" + std::to_string(bits);
    out.numeric = true;
  } else if (cls == H5T_STRING) {
    out.info.type = "string";
  } else {
    out.info.type = "other";
  }
  if (out.info.type == "float32") out.info.dtype = DType::f32;
  if (out.info.type == "float64") out.info.dtype = DType::f64;
  if (out.info.type == "int32") out.info.dtype = DType::i32;
  if (out.info.type == "int64") out.info.dtype = DType::i64;
  if (out.info.type == "uint8") out.info.dtype = DType::u8;

  const htri_t has_tag = H5Aexists(dataset, kDTypeAttr);
  check_status(has_tag, file, object, "cannot look up the dtype attribute of");
  if (has_tag > 0) {
    Handle attr = checked(H5Aopen(dataset, kDTypeAttr, H5P_DEFAULT), file, object,
                          "cannot open the dtype attribute of");
    const std::string tag = detail::read_string_attribute(attr.get(), file, object);
    if (tag == out.info.type) return out;  // another tool's tag naming the stored type itself
    std::optional<DType> dtype;
    try {
      dtype = parse_dtype(tag);
    } catch (const Error&) {  // an unknown name: reported below
    }
    const bool fits = dtype && tagged(*dtype) && cls == H5T_INTEGER &&
                      H5Tget_size(type.get()) == dtype_size(*dtype);
    if (!fits)
      PIT_THROW("HDF5: dataset '", object, "' in ", file, " has dtype attribute '", tag,
                "' but stores ", out.info.type, ": it was not written by pit, which keeps that attribute for "
                "f16, bf16 and bool stored as integers; remove the attribute, or name the stored type in it");
    out.info.type = dtype_name(*dtype);
    out.info.dtype = dtype;
  }
  return out;
}

Handle open_dataset(const Group& g, const std::string& path, const std::string& object) {
  if (!g.is_dataset(path))
    PIT_THROW("HDF5: no dataset '", object, "' in ", g.file_name(),
              g.exists(path) ? " (it is a group)" : "");
  return checked(H5Dopen2(g.id(), path.c_str(), H5P_DEFAULT), g.file_name(), object,
                 "cannot open dataset");
}

// Reads the whole dataset into `out` (already shaped) as `memory` type.
void read_into(hid_t dataset, hid_t memory, Tensor& out, const std::string& file,
               const std::string& object) {
  if (out.numel() == 0) return;
  check_status(H5Dread(dataset, memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), file,
               object, "cannot read dataset");
  if (out.dtype() == DType::boolean) {  // any non-zero byte is true; keep bools 0 or 1
    auto* bytes = static_cast<uint8_t*>(out.data_ptr());
    for (int64_t i = 0; i < out.numel(); ++i) bytes[i] = bytes[i] != 0;
  }
}

Handle create_dataset(const Group& g, const std::string& path, const std::string& object,
                      hid_t file_type, hid_t space) {
  if (g.exists(path)) PIT_THROW("HDF5: '", object, "' already exists in ", g.file_name());
  Handle lcpl = checked(H5Pcreate(H5P_LINK_CREATE), g.file_name(), object, "cannot create dataset");
  check_status(H5Pset_create_intermediate_group(lcpl.get(), 1), g.file_name(), object,
               "cannot create dataset");
  return checked(H5Dcreate2(g.id(), path.c_str(), file_type, space, lcpl.get(), H5P_DEFAULT,
                            H5P_DEFAULT),
                 g.file_name(), object, "cannot create dataset");
}

}  // namespace

void Group::write(const std::string& path, const Tensor& tensor) const {
  const std::string object = full_path(path);
  PIT_CHECK(tensor.defined(), "HDF5: cannot write an undefined tensor as '", object, "' in ",
            file_);
  const Tensor host = tensor.to(Device::cpu()).contiguous();
  const Types types = types_of(host.dtype());

  std::vector<hsize_t> dims(host.shape().begin(), host.shape().end());
  Handle space = checked(dims.empty() ? H5Screate(H5S_SCALAR)
                                      : H5Screate_simple(static_cast<int>(dims.size()),
                                                         dims.data(), nullptr),
                         file_, object, "cannot make the dataspace of");
  Handle dataset = create_dataset(*this, path, object, types.file, space.get());
  if (host.numel() > 0)
    check_status(H5Dwrite(dataset.get(), types.memory, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                          host.data_ptr()),
                 file_, object, "cannot write dataset");
  if (tagged(host.dtype())) {
    const char* tag = dtype_name(host.dtype());
    Handle str = detail::vlen_string_type();
    Handle scalar = checked(H5Screate(H5S_SCALAR), file_, object, "cannot tag dataset");
    Handle attr = checked(H5Acreate2(dataset.get(), kDTypeAttr, str.get(), scalar.get(),
                                     H5P_DEFAULT, H5P_DEFAULT),
                          file_, object, "cannot tag dataset");
    check_status(H5Awrite(attr.get(), str.get(), &tag), file_, object, "cannot tag dataset");
  }
}

DatasetInfo Group::info(const std::string& path) const {
  const std::string object = full_path(path);
  Handle dataset = open_dataset(*this, path, object);
  return inspect(dataset.get(), file_, object).info;
}

Tensor Group::read(const std::string& path) const {
  const std::string object = full_path(path);
  Handle dataset = open_dataset(*this, path, object);
  const Stored stored = inspect(dataset.get(), file_, object);
  if (!stored.info.dtype)
    PIT_THROW("HDF5: dataset '", object, "' in ", file_, " stores ", stored.info.type,
              ", which pit has no dtype for",
              stored.numeric ? "; read it converted, e.g. read(path, DType::i64)" : "");
  Tensor out = Tensor::empty(stored.info.shape, *stored.info.dtype);
  read_into(dataset.get(), types_of(out.dtype()).memory, out, file_, object);
  return out;
}

Tensor Group::read(const std::string& path, DType as) const {
  const std::string object = full_path(path);
  Handle dataset = open_dataset(*this, path, object);
  const Stored stored = inspect(dataset.get(), file_, object);
  if (stored.info.dtype == as || (stored.info.dtype && tagged(*stored.info.dtype)))
    return read(path).to(as);  // the same dtype (to() is then a no-op), or bit patterns
  if (!stored.numeric)
    PIT_THROW("HDF5: dataset '", object, "' in ", file_, " stores ", stored.info.type,
              ", not numbers: cannot read it as ", dtype_name(as));
  // HDF5 converts integer and floating types of any width; f16, bf16 and bool go through a
  // wider type first.
  const DType via = tagged(as) ? (as == DType::boolean ? DType::u8 : DType::f32) : as;
  Tensor out = Tensor::empty(stored.info.shape, via);
  read_into(dataset.get(), types_of(via).memory, out, file_, object);
  return out.to(as);
}

void Group::write_string(const std::string& path, std::string_view value) const {
  const std::string object = full_path(path);
  const std::string text(value);
  PIT_CHECK(text.find('\0') == std::string::npos, "HDF5: the string written as '", object, "' in ",
            file_, " holds a NUL character, which HDF5 strings cannot keep");
  Handle type = detail::vlen_string_type();
  Handle space = checked(H5Screate(H5S_SCALAR), file_, object, "cannot make the dataspace of");
  Handle dataset = create_dataset(*this, path, object, type.get(), space.get());
  const char* pointer = text.c_str();
  check_status(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &pointer), file_,
               object, "cannot write dataset");
}

std::string Group::read_string(const std::string& path) const {
  const std::string object = full_path(path);
  Handle dataset = open_dataset(*this, path, object);
  return detail::read_string_dataset(dataset.get(), file_, object);
}

}  // namespace pit::io
