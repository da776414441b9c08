// trainer/io/hdf5.h: tensors of every dtype round-trip bit-exactly, attributes, groups, strings,
// and HDF5 failures arrive as pit::Error naming the file and the object.
#include "trainer/io/hdf5.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "tests/core/expect_error.h"
#include "tests/trainer/data/scratch_dir.h"

namespace pit {
namespace {

using test::expect_error_contains;
using test::expect_error_contains_all;

// A [3, 5] tensor of `dtype` whose bytes are a fixed pattern. For f16 and bf16 the pattern holds
// NaNs with payloads, infinities, subnormals and -0, which must come back bit for bit.
Tensor patterned(DType dtype) {
  Tensor t = Tensor::empty({3, 5}, dtype);
  auto* bytes = static_cast<uint8_t*>(t.data_ptr());
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 + 11);
  if (dtype == DType::f16 || dtype == DType::bf16) {
    const uint16_t special[] = {0x7e01, 0xfc00, 0x7c00, 0x0001, 0x8000, 0x7fff, 0x3c00};
    std::memcpy(t.data_ptr(), special, sizeof special);
  }
  if (dtype == DType::boolean)
    for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = (i % 3) == 0;
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

// A uint16 dataset written with the C API, as other tools would (pit has no u16 dtype).
void write_uint16(const std::string& path, const std::vector<uint16_t>& values) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t n = values.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t set =
      H5Dcreate2(file, "u16", H5T_STD_U16LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(set, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(set);
  H5Sclose(space);
  H5Fclose(file);
}

TEST(Hdf5, EveryDTypeRoundTripsBitExactly) {
  test::ScratchDir dir;
  const std::string path = dir.file("all.h5");
  {
    io::File file = io::File::create(path);
    for (DType dtype : kAllDTypes)
      file.write(std::string("t/") + dtype_name(dtype), patterned(dtype));
    file.close();
  }
  const io::File file = io::File::open(path);
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const std::string name = std::string("t/") + dtype_name(dtype);
    const Tensor back = file.read(name);
    EXPECT_TRUE(same_bytes(back, patterned(dtype)));
    const io::DatasetInfo info = file.info(name);
    EXPECT_EQ(info.shape, (Shape{3, 5}));
    EXPECT_EQ(info.dtype, dtype);
  }
  EXPECT_EQ(file.info("t/f16").type, "f16");  // stored as uint16, tagged
  EXPECT_EQ(file.info("t/f32").type, "float32");
  EXPECT_EQ(file.info("t/u8").type, "uint8");
}

TEST(Hdf5, ScalarEmptyAndNonContiguousTensors) {
  test::ScratchDir dir;
  const std::string path = dir.file("shapes.h5");
  const Tensor m = arange(12, DType::f32).view({3, 4});
  {
    io::File file = io::File::create(path);
    file.write("scalar", from_vector(std::vector<int64_t>{42}, Shape{}));
    file.write("empty", Tensor::empty({0, 3}, DType::f64));
    file.write("transposed", m.t());
  }
  const io::File file = io::File::open(path);
  const Tensor scalar = file.read("scalar");
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<int64_t>(), 42);
  EXPECT_EQ(file.read("empty").shape(), (Shape{0, 3}));
  EXPECT_EQ(file.read("transposed").to_vector<float>(), m.t().contiguous().to_vector<float>());
}

TEST(Hdf5, ReadConvertsOnRequest) {
  test::ScratchDir dir;
  const std::string path = dir.file("u16.h5");
  write_uint16(path, {0, 1, 65535});
  const io::File file = io::File::open(path);
  const io::DatasetInfo info = file.info("u16");
  EXPECT_EQ(info.type, "uint16");
  EXPECT_FALSE(info.dtype.has_value());
  expect_error_contains_all([&] { file.read("u16"); }, {"uint16", "read(path, DType::i64)"});
  EXPECT_EQ(file.read("u16", DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 65535}));
  EXPECT_EQ(file.read("u16", DType::f32).to_vector<float>(), (std::vector<float>{0, 1, 65535}));
}

TEST(Hdf5, TaggedDTypesConvertThroughTheirValues) {
  test::ScratchDir dir;
  const std::string path = dir.file("bf16.h5");
  io::File::create(path).write("x", from_vector(std::vector<float>{1.5f, -2.0f}).to(DType::bf16));
  EXPECT_EQ(io::File::open(path).read("x", DType::f32).to_vector<float>(),
            (std::vector<float>{1.5f, -2.0f}));
}

TEST(Hdf5, AttributesRoundTripAndReplace) {
  test::ScratchDir dir;
  const std::string path = dir.file("attrs.h5");
  {
    io::File file = io::File::create(path);
    file.set_attr_int("step", 7);
    file.set_attr_int("step", int64_t{1} << 40);  // replaces
    file.set_attr_real("lr", 0.125);
    file.set_attr_string("name", "größe");
    file.create_group("a/b").set_attr_string("note", "");
  }
  const io::File file = io::File::open(path);
  EXPECT_EQ(file.attr_int("step"), int64_t{1} << 40);
  EXPECT_EQ(file.attr_real("step"), static_cast<double>(int64_t{1} << 40));  // ints read as reals
  EXPECT_EQ(file.attr_real("lr"), 0.125);
  EXPECT_EQ(file.attr_string("name"), "größe");
  EXPECT_EQ(file.group("a/b").attr_string("note"), "");
  EXPECT_EQ(file.attr_names(), (std::vector<std::string>{"lr", "name", "step"}));
  EXPECT_TRUE(file.has_attr("lr"));
  EXPECT_FALSE(file.has_attr("missing"));
  expect_error_contains_all([&] { file.attr_int("lr"); }, {"'lr'", "not an integer", path});
  expect_error_contains_all([&] { file.attr_int("missing"); }, {"no attribute 'missing'", path});
  expect_error_contains([&] { file.attr_string("step"); }, "does not hold a string");
}

TEST(Hdf5, GroupsAndStrings) {
  test::ScratchDir dir;
  const std::string path = dir.file("groups.h5");
  {
    io::File file = io::File::create(path);
    const io::Group g = file.create_group("x/y");
    EXPECT_EQ(g.path(), "/x/y");
    g.write("b", zeros({2}));
    g.write_string("a", "hello\nworld");
    file.write_string("x/empty", "");
    EXPECT_EQ(file.create_group("x").path(), "/x");  // an existing group is opened
  }
  const io::File file = io::File::open(path);
  EXPECT_TRUE(file.exists("x/y/b"));
  EXPECT_FALSE(file.exists("x/z/b"));
  EXPECT_TRUE(file.is_group("x/y"));
  EXPECT_FALSE(file.is_group("x/y/b"));
  EXPECT_TRUE(file.is_dataset("/x/y/b"));
  EXPECT_EQ(file.group("x").children(), (std::vector<std::string>{"empty", "y"}));
  EXPECT_EQ(file.group("x/y").children(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(file.group("x/y").read_string("a"), "hello\nworld");
  EXPECT_EQ(file.read_string("x/empty"), "");
  expect_error_contains([&] { file.read_string("x/y/b"); }, "does not hold a string");
  expect_error_contains([&] { file.read("x/y/a"); }, "stores string");
}

TEST(Hdf5, ErrorsNameTheFileAndTheObject) {
  test::ScratchDir dir;
  const std::string missing = dir.file("missing.h5");
  expect_error_contains_all([&] { io::File::open(missing); }, {missing, "no such file"});

  const std::string text = dir.file("text.h5");
  std::ofstream(text) << "not an HDF5 file at all\n";
  expect_error_contains_all([&] { io::File::open(text); },
                            {"HDF5", text, "not an HDF5 file", "signature"});

  const std::string path = dir.file("e.h5");
  io::File file = io::File::create(path);
  file.write("w", zeros({2}));
  expect_error_contains_all([&] { file.write("w", zeros({2})); }, {"'/w' already exists", path});
  expect_error_contains_all([&] { file.read("nope"); }, {"no dataset '/nope'", path});
  expect_error_contains_all([&] { file.group("w"); }, {"no group '/w'", "it is a dataset"});
  expect_error_contains_all([&] { file.write("w/child", zeros({1})); },
                            {"HDF5", "'/w/child'", path});
  file.close();
  expect_error_contains([&] { file.exists("w"); }, "closed");
}

// Files other tools could write that pit cannot load: each an error naming the object, never a
// read past a buffer (a string attribute of 64 values read into one; a dataset of 2^64 + 4
// elements counted as 4) or a value that was never written (a null dataspace).
TEST(Hdf5, MalformedObjectsAreErrors) {
  test::ScratchDir dir;
  const std::string path = dir.file("malformed.h5");
  {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 16);
    const hsize_t n = 64;
    const hid_t many = H5Screate_simple(1, &n, nullptr);
    const hid_t attr = H5Acreate2(file, "format", str, many, H5P_DEFAULT, H5P_DEFAULT);
    const std::vector<char> text(64 * 16, 'x');
    H5Awrite(attr, str, text.data());
    const hsize_t huge[2] = {(hsize_t{1} << 62) + 1, 4}, chunk[2] = {1, 4};  // 2^64 + 4 elements
    const hid_t huge_space = H5Screate_simple(2, huge, nullptr);
    const hid_t chunked = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(chunked, 2, chunk);
    const hid_t big = H5Dcreate2(file, "big", H5T_STD_U8LE, huge_space, H5P_DEFAULT, chunked, H5P_DEFAULT);
    const hid_t null_space = H5Screate(H5S_NULL);
    const hid_t none = H5Dcreate2(file, "none", H5T_STD_I64LE, null_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (const hid_t d : {big, none}) H5Dclose(d);
    for (const hid_t sp : {many, huge_space, null_space}) H5Sclose(sp);
    H5Pclose(chunked);
    H5Aclose(attr);
    H5Tclose(str);
    H5Fclose(file);
  }
  const io::File file = io::File::open(path);
  expect_error_contains_all([&] { file.attr_string("format"); }, {path, "64 elements, not one string"});
  expect_error_contains_all([&] { file.read("big"); }, {"big'", path, "too large to load"});
  expect_error_contains_all([&] { file.read("none"); }, {"none'", path, "holds no data"});
}

// What other tools write and pit can read: a variable-length ASCII string attribute (the C
// library's default character set; pit writes UTF-8) and a `dtype` attribute naming the stored
// type itself. A `dtype` tag that fits neither pit's tags nor the stored type stays an error.
TEST(Hdf5, OtherToolsStringsAndDTypeTags) {
  test::ScratchDir dir;
  const std::string path = dir.file("tools.h5");
  write_uint16(path, {1, 2, 3});
  {
    const io::File file = io::File::open(path, io::Mode::read_write);
    file.write("bytes", from_vector(std::vector<uint8_t>{7, 8}, {2}));
    file.write("odd", from_vector(std::vector<uint8_t>{7, 8}, {2}));
  }
  {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t vlen = H5Tcopy(H5T_C_S1);
    H5Tset_size(vlen, H5T_VARIABLE);  // ASCII: the default character set
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const auto tag = [&](const char* dataset, const char* value) {
      const hid_t set = H5Dopen2(file, dataset, H5P_DEFAULT);
      const hid_t attr = H5Acreate2(set, "dtype", vlen, scalar, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(attr, vlen, &value);
      H5Aclose(attr);
      H5Dclose(set);
    };
    tag("bytes", "uint8");
    tag("odd", "float32");
    const hid_t attr = H5Acreate2(file, "note", vlen, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const char* note = "written in ASCII";
    H5Awrite(attr, vlen, &note);
    H5Aclose(attr);
    H5Sclose(scalar);
    H5Tclose(vlen);
    H5Fclose(file);
  }
  const io::File file = io::File::open(path);
  EXPECT_EQ(file.attr_string("note"), "written in ASCII");
  EXPECT_EQ(file.read("bytes").to_vector<uint8_t>(), (std::vector<uint8_t>{7, 8}));
  expect_error_contains_all([&] { file.read("odd"); }, {"dtype attribute 'float32'", "remove the attribute"});
}

TEST(Hdf5, TruncatedFileReportsHdf5sReason) {
  test::ScratchDir dir;
  const std::string path = dir.file("big.h5");
  io::File::create(path).write("w", zeros({4096}));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  expect_error_contains_all([&] { io::File::open(path); }, {path, "truncated"});
}

}  // namespace
}  // namespace pit
