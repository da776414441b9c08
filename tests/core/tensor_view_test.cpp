// core/tensor.h on the CPU: shapes and strides, views (view, reshape, transpose, permute, slice,
// select, expand, squeeze, unsqueeze), strided copies, 0-d and zero-size tensors, dim errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/core.h"
#include "tests/core/expect_error.h"

using namespace pit;
using pit::test::expect_error_contains;
using pit::test::expect_error_contains_all;

namespace {

// 0, 1, 2, ... in row-major order, shaped `shape`.
Tensor iota(const Shape& shape, DType dtype = DType::f32) {
  return arange(0.0, static_cast<double>(shape_numel(shape)), 1.0, dtype).view(shape);
}

std::vector<float> values(const Tensor& t) { return t.contiguous().to_vector<float>(); }

using V = std::vector<float>;

}  // namespace

// ---- shapes and strides ----------------------------------------------------------------------

TEST(TensorShape, EmptyIsContiguousRowMajor) {
  const Tensor t = Tensor::empty({2, 3, 4});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.offset(), 0);
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_EQ(t.device(), Device::cpu());
  EXPECT_FALSE(t.is_cuda());
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.itemsize(), 4u);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.stride(-2), 4);
}

TEST(TensorShape, ZerosOfEachShapeKind) {
  const Tensor z = zeros({2, 3}, DType::i64);
  EXPECT_EQ(z.dtype(), DType::i64);
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.to_vector<int64_t>(), (std::vector<int64_t>(6, 0)));
  EXPECT_EQ(z.nbytes(), 48u);

  const Tensor scalar = zeros({});
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_TRUE(scalar.strides().empty());

  const Tensor none = zeros({2, 0, 3});
  EXPECT_EQ(none.numel(), 0);
  EXPECT_EQ(none.nbytes(), 0u);
  EXPECT_EQ(none.strides(), (Shape{3, 3, 1})) << "zero sizes count as 1 in the strides";
  EXPECT_TRUE(none.is_contiguous());
}

TEST(TensorShape, HelperFunctions) {
  EXPECT_EQ(shape_str({2, 3}), "[2, 3]");
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({5, 0}), 0);
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({}), Shape{});
}

TEST(TensorShape, UndefinedTensor) {
  const Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_FALSE(t.shares_storage(t));
  expect_error_contains([&] { (void)t.data_ptr(); }, "undefined");
  expect_error_contains([&] { (void)t.contiguous(); }, "undefined");
  expect_error_contains([&] { (void)t.clone(); }, "undefined");
}

TEST(TensorShape, NegativeSizeThrows) {
  expect_error_contains([] { (void)Tensor::empty({2, -1}); }, "negative");
  expect_error_contains([] { (void)zeros({-3}); }, "[-3]");
}

TEST(TensorShape, ConstructorChecksStridesLength) {
  const Tensor base = zeros({4});
  expect_error_contains([&] { Tensor(base.storage(), {2, 2}, {1}, 0, DType::f32); }, "differ in length");
}

TEST(TensorShape, DataChecksDtype) {
  const Tensor t = zeros({2});
  EXPECT_NE(t.data<float>(), nullptr);
  expect_error_contains_all([&] { (void)t.data<double>(); }, {"f32", "f64"});
}

TEST(TensorShape, DescRejectsTooManyDims) {
  const Tensor t = zeros(Shape(kMaxDims, 1));
  EXPECT_EQ(t.desc().ndim, kMaxDims);
  const Tensor big = zeros(Shape(kMaxDims + 1, 1));
  expect_error_contains([&] { (void)big.desc(); }, "reshape");
}

// ---- view and reshape ------------------------------------------------------------------------

TEST(TensorView, ViewOfContiguousSharesStorage) {
  const Tensor x = iota({2, 3, 4});
  const Tensor v = x.view({6, 4});
  EXPECT_EQ(v.shape(), (Shape{6, 4}));
  EXPECT_EQ(v.strides(), (Shape{4, 1}));
  EXPECT_TRUE(v.shares_storage(x));
  EXPECT_EQ(values(v), values(x));
  EXPECT_EQ(x.view({-1, 2}).shape(), (Shape{12, 2}));
  EXPECT_EQ(x.view({4, -1}).shape(), (Shape{4, 6}));
  EXPECT_EQ(x.view({-1}).shape(), (Shape{24}));
  EXPECT_EQ(x.view({1, 24, 1}).shape(), (Shape{1, 24, 1}));
  EXPECT_EQ(x.flatten().shape(), (Shape{24}));
}

TEST(TensorView, ViewWritesThrough) {
  Tensor x = zeros({2, 3});
  x.view({6}).slice(0, 4, 5).fill_(7.0);
  EXPECT_EQ(values(x), (V{0, 0, 0, 0, 7, 0}));
}

TEST(TensorView, ViewErrors) {
  const Tensor x = iota({2, 3, 4});
  expect_error_contains([&] { (void)x.view({-1, -1}); }, "only one dim may be -1");
  expect_error_contains_all([&] { (void)x.view({5, 5}); }, {"[2, 3, 4]", "[5, 5]", "24"});
  expect_error_contains([&] { (void)x.view({-1, 5}); }, "[2, 3, 4]");
  expect_error_contains([&] { (void)x.view({-1, 0}); }, "cannot view");
  expect_error_contains([&] { (void)x.view({-2, 12}); }, "negative");
}

TEST(TensorView, ViewOfTransposedTensorSplittingADim) {
  // x.t() has shape [6, 4] and strides [1, 6]; its dim 0 is contiguous on its own, so it can be
  // split into [2, 3] without a copy.
  const Tensor xt = iota({4, 6}).t();
  const Tensor v = xt.view({2, 3, 4});
  EXPECT_TRUE(v.shares_storage(xt));
  EXPECT_EQ(v.strides(), (Shape{3, 1, 6}));
  EXPECT_EQ(values(v), values(xt.contiguous().view({2, 3, 4})));
  // Adding and removing size-1 dims is always possible.
  const Tensor u = xt.view({6, 1, 4});
  EXPECT_TRUE(u.shares_storage(xt));
  EXPECT_EQ(values(u), values(xt));
}

TEST(TensorView, ImpossibleViewThrowsMentioningReshape) {
  const Tensor xt = iota({4, 6}).t();
  expect_error_contains_all([&] { (void)xt.view({24}); }, {"reshape", "[6, 4]", "[1, 6]"});
  expect_error_contains([&] { (void)xt.view({3, 8}); }, "reshape");
}

TEST(TensorView, ReshapeViewsWhenPossibleAndCopiesOtherwise) {
  const Tensor x = iota({4, 6});
  const Tensor r1 = x.reshape({3, 8});
  EXPECT_TRUE(r1.shares_storage(x));
  EXPECT_EQ(values(r1), values(x));

  const Tensor xt = x.t();
  const Tensor r2 = xt.reshape({2, 3, 4});  // a view exists
  EXPECT_TRUE(r2.shares_storage(xt));
  const Tensor r3 = xt.reshape({24});  // needs a copy
  EXPECT_FALSE(r3.shares_storage(xt));
  EXPECT_TRUE(r3.is_contiguous());
  V expected;
  for (int j = 0; j < 6; ++j)
    for (int i = 0; i < 4; ++i) expected.push_back(static_cast<float>(i * 6 + j));
  EXPECT_EQ(r3.to_vector<float>(), expected);
  EXPECT_EQ(xt.reshape({-1, 8}).shape(), (Shape{3, 8}));
  EXPECT_EQ(values(xt.flatten()), expected);
  expect_error_contains([&] { (void)xt.reshape({5, 5}); }, "cannot view/reshape");
}

// ---- transpose and permute -------------------------------------------------------------------

TEST(TensorView, Transpose) {
  const Tensor x = iota({2, 3, 4});
  const Tensor t = x.transpose(0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 4, 12}));
  EXPECT_TRUE(t.shares_storage(x));
  EXPECT_FALSE(t.is_contiguous());
  V expected;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) expected.push_back(static_cast<float>(i * 12 + j * 4 + k));
  EXPECT_EQ(values(t), expected);
  EXPECT_EQ(values(x.transpose(-1, 0)), expected);
  EXPECT_EQ(values(x.transpose(1, 1)), values(x));
}

TEST(TensorView, TOfAMatrix) {
  const Tensor x = iota({2, 3});
  EXPECT_EQ(x.t().shape(), (Shape{3, 2}));
  EXPECT_EQ(values(x.t()), (V{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(values(x.t().t()), values(x));
  expect_error_contains([] { (void)iota({2, 3, 4}).t(); }, "t() needs a 2-D tensor");
  expect_error_contains([] { (void)iota({3}).t(); }, "2-D");
}

TEST(TensorView, Permute) {
  const Tensor x = iota({2, 3, 4});
  const Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  V expected;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) expected.push_back(static_cast<float>(i * 12 + j * 4 + k));
  EXPECT_EQ(values(p), expected);
  EXPECT_EQ(values(x.permute({-1, 0, -2})), expected) << "negative dims wrap";
  EXPECT_EQ(values(x.permute({0, 1, 2})), values(x));
}

TEST(TensorView, BadPermutationThrows) {
  const Tensor x = iota({2, 3, 4});
  expect_error_contains([&] { (void)x.permute({0, 0, 1}); }, "appears twice");
  expect_error_contains([&] { (void)x.permute({0, 1}); }, "2 dims given");
  expect_error_contains([&] { (void)x.permute({0, 1, 3}); }, "dim 3 is out of range");
  expect_error_contains([&] { (void)x.permute({0, 1, 2, 3}); }, "4 dims given");
}

// ---- slice and select ------------------------------------------------------------------------

TEST(TensorView, SliceWithSteps) {
  const Tensor x = iota({10});
  EXPECT_EQ(values(x.slice(0, 2, 8, 2)), (V{2, 4, 6}));
  EXPECT_EQ(values(x.slice(0, 0, 10, 3)), (V{0, 3, 6, 9}));
  EXPECT_EQ(values(x.slice(0, 1, 10, 4)), (V{1, 5, 9}));
  EXPECT_EQ(values(x.slice(0, 1, 9, 4)), (V{1, 5}));
  EXPECT_EQ(values(x.slice(0, 3, 4)), (V{3}));
  const Tensor s = x.slice(0, 2, 8, 2);
  EXPECT_TRUE(s.shares_storage(x));
  EXPECT_EQ(s.offset(), 2);
  EXPECT_EQ(s.strides(), (Shape{2}));
  EXPECT_EQ(values(s.slice(0, 1, 3)), (V{4, 6})) << "slice of a slice";
}

TEST(TensorView, SliceNegativeBoundsAndClamping) {
  const Tensor x = iota({10});
  EXPECT_EQ(values(x.slice(0, -3, 10)), (V{7, 8, 9}));
  EXPECT_EQ(values(x.slice(0, 0, -7)), (V{0, 1, 2}));
  EXPECT_EQ(values(x.slice(0, -3, 1000000)), (V{7, 8, 9})) << "end clamps to the size";
  EXPECT_EQ(values(x.slice(0, -100, 3)), (V{0, 1, 2})) << "start clamps to 0";
  EXPECT_EQ(values(x.slice(0, -2, -1)), (V{8}));
}

TEST(TensorView, SliceEmptyResults) {
  const Tensor x = iota({10});
  for (auto [start, end] : {std::pair<int64_t, int64_t>{5, 2}, {5, 5}, {10, 20}, {-1, -5}, {100, 200}}) {
    const Tensor s = x.slice(0, start, end);
    EXPECT_EQ(s.shape(), (Shape{0})) << start << ":" << end;
    EXPECT_EQ(s.numel(), 0);
    EXPECT_TRUE(values(s).empty());
  }
  expect_error_contains([&] { (void)x.slice(0, 0, 5, 0); }, "step must be positive");
  expect_error_contains([&] { (void)x.slice(0, 0, 5, -1); }, "step must be positive");
}

TEST(TensorView, SliceOfAnInnerDim) {
  const Tensor x = iota({3, 4});
  const Tensor s = x.slice(1, 0, 4, 2);
  EXPECT_EQ(s.shape(), (Shape{3, 2}));
  EXPECT_EQ(s.strides(), (Shape{4, 2}));
  EXPECT_EQ(values(s), (V{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(values(x.slice(-1, 1, 3)), (V{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(values(x.slice(0, 1, 3).slice(1, -1, 4)), (V{7, 11}));
}

TEST(TensorView, Select) {
  const Tensor x = iota({2, 3, 4});
  const Tensor s = x.select(1, 2);
  EXPECT_EQ(s.shape(), (Shape{2, 4}));
  EXPECT_EQ(s.strides(), (Shape{12, 1}));
  EXPECT_EQ(values(s), (V{8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_EQ(values(x.select(1, -1)), values(s));
  EXPECT_EQ(values(x.select(-1, 0)), (V{0, 4, 8, 12, 16, 20}));
  const Tensor scalar = iota({5}).select(0, 3);
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<float>(), 3.0f);
  expect_error_contains_all([&] { (void)x.select(1, 3); }, {"index 3 is out of range", "[2, 3, 4]"});
  expect_error_contains([&] { (void)x.select(1, -4); }, "index -4 is out of range");
}

// ---- expand, unsqueeze, squeeze --------------------------------------------------------------

TEST(TensorView, ExpandUsesStrideZero) {
  const Tensor x = iota({3, 1});
  const Tensor e = x.expand({2, 3, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_TRUE(e.shares_storage(x));
  EXPECT_EQ(values(e), (V{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(x.expand({-1, 5}).shape(), (Shape{3, 5})) << "-1 keeps the size";
  EXPECT_EQ(values(iota({3}).expand({2, 3})), (V{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(values(full({}, 4.0).expand({2, 2})), (V{4, 4, 4, 4}));
  EXPECT_EQ(x.expand({3, 1}).strides(), x.strides());
}

TEST(TensorView, BadExpandThrowsNamingTheShapes) {
  const Tensor x = iota({3, 2});
  expect_error_contains_all([&] { (void)x.expand({3, 4}); }, {"[3, 2]", "[3, 4]", "dim 1"});
  expect_error_contains([&] { (void)x.expand({2}); }, "fewer dims");
  expect_error_contains([&] { (void)x.expand({-1, 3, 2}); }, "-1");
}

TEST(TensorView, UnsqueezeAndSqueeze) {
  const Tensor x = iota({2, 3});
  EXPECT_EQ(x.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(x.unsqueeze(1).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(x.unsqueeze(1).strides(), (Shape{3, 3, 1}));
  EXPECT_EQ(x.unsqueeze(2).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(x.unsqueeze(-3).shape(), (Shape{1, 2, 3}));
  EXPECT_TRUE(x.unsqueeze(1).is_contiguous());
  EXPECT_EQ(values(x.unsqueeze(1)), values(x));
  expect_error_contains([&] { (void)x.unsqueeze(3); }, "unsqueeze: dim 3 is out of range");
  expect_error_contains([&] { (void)x.unsqueeze(-4); }, "out of range");

  const Tensor y = x.unsqueeze(0);
  EXPECT_EQ(y.squeeze(0).shape(), (Shape{2, 3}));
  EXPECT_EQ(x.unsqueeze(2).squeeze(-1).shape(), (Shape{2, 3}));
  EXPECT_EQ(values(y.squeeze(0)), values(x));
  expect_error_contains([&] { (void)x.squeeze(1); }, "not 1");
  // unsqueeze of a transposed tensor keeps its values
  EXPECT_EQ(values(x.t().unsqueeze(1)), (V{0, 3, 1, 4, 2, 5}));
}

// ---- copies ----------------------------------------------------------------------------------

TEST(TensorCopy, ContiguousAndClone) {
  const Tensor x = iota({2, 3});
  EXPECT_TRUE(x.contiguous().shares_storage(x)) << "already contiguous: no copy";
  const Tensor c = x.t().contiguous();
  EXPECT_FALSE(c.shares_storage(x));
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.strides(), (Shape{2, 1}));
  Tensor k = x.clone();
  EXPECT_FALSE(k.shares_storage(x));
  EXPECT_EQ(values(k), values(x));
  k.fill_(1.0);
  EXPECT_EQ(values(x), (V{0, 1, 2, 3, 4, 5})) << "a clone is independent";
}

TEST(TensorCopy, CopyIntoTransposedDestination) {
  Tensor dst = zeros({3, 2});
  Tensor dt = dst.t();
  dt.copy_(iota({2, 3}));
  EXPECT_EQ(values(dst), (V{0, 3, 1, 4, 2, 5}));
}

TEST(TensorCopy, CopyIntoSlicedDestination) {
  Tensor dst = zeros({10});
  Tensor every_third = dst.slice(0, 1, 10, 3);
  every_third.copy_(from_vector<float>({1, 2, 3}));
  EXPECT_EQ(values(dst), (V{0, 1, 0, 0, 2, 0, 0, 3, 0, 0}));

  Tensor m = zeros({3, 4});
  Tensor inner = m.slice(0, 1, 3).slice(1, 1, 4, 2);  // rows 1-2, columns 1 and 3
  inner.copy_(from_vector<float>({1, 2, 3, 4}, {2, 2}));
  EXPECT_EQ(values(m), (V{0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4}));
}

TEST(TensorCopy, CopyFromNonContiguousSource) {
  Tensor dst = zeros({3, 2});
  dst.copy_(iota({2, 3}).t());
  EXPECT_EQ(values(dst), (V{0, 3, 1, 4, 2, 5}));
  Tensor d2 = zeros({2, 2});
  d2.copy_(iota({4, 4}).slice(0, 0, 4, 2).slice(1, 1, 4, 2));
  EXPECT_EQ(values(d2), (V{1, 3, 9, 11}));
}

TEST(TensorCopy, CopyWithBroadcastingSource) {
  Tensor dst = zeros({2, 3});
  dst.copy_(from_vector<float>({1, 2, 3}));
  EXPECT_EQ(values(dst), (V{1, 2, 3, 1, 2, 3}));
  dst.copy_(from_vector<float>({5, 6}, {2, 1}));
  EXPECT_EQ(values(dst), (V{5, 5, 5, 6, 6, 6}));
  dst.copy_(full({}, 9.0));
  EXPECT_EQ(values(dst), (V(6, 9.0f)));
  Tensor dt = dst.t();  // broadcast into a transposed destination
  dt.copy_(from_vector<float>({1, 2}));
  EXPECT_EQ(values(dst), (V{1, 1, 1, 2, 2, 2}));
  expect_error_contains([&] { dst.copy_(from_vector<float>({1, 2})); }, "copy_: a source of shape [2] does not broadcast to this tensor's shape [2, 3]");
}

TEST(TensorCopy, CopyConvertsIntoStridedDestination) {
  Tensor dst = zeros({3, 2}, DType::i32);
  Tensor dt = dst.t();
  dt.copy_(from_vector<double>({0.5, 1.5, 2.5, -3.5, 4.9, -5.9}, {2, 3}));
  EXPECT_EQ(dst.to_vector<int32_t>(), (std::vector<int32_t>{0, -3, 1, 4, 2, -5}));
}

TEST(TensorCopy, OverlappingCopyReadsTheOldValues) {
  Tensor x = iota({5});
  Tensor tail = x.slice(0, 1, 5);
  tail.copy_(x.slice(0, 0, 4));
  EXPECT_EQ(values(x), (V{0, 0, 1, 2, 3}));
  Tensor m = iota({2, 2});
  m.copy_(m.t());
  EXPECT_EQ(values(m), (V{0, 2, 1, 3}));
}

TEST(TensorCopy, FillAndZeroOnStridedViews) {
  Tensor m = zeros({3, 4});
  Tensor cols = m.slice(1, 0, 4, 2);
  cols.fill_(7.0);
  EXPECT_EQ(values(m), (V{7, 0, 7, 0, 7, 0, 7, 0, 7, 0, 7, 0}));
  Tensor row = m.select(0, 1);
  row.zero_();
  EXPECT_EQ(values(m), (V{7, 0, 7, 0, 0, 0, 0, 0, 7, 0, 7, 0}));
  Tensor mt = m.t();
  mt.fill_(-1.0);
  EXPECT_EQ(values(m), V(12, -1.0f));
}

TEST(TensorCopy, AddAccumulatesWithBroadcastAndAlpha) {
  Tensor x = ones({2, 3});
  x.add_(from_vector<float>({1, 2, 3}), 2.0);
  EXPECT_EQ(values(x), (V{3, 5, 7, 3, 5, 7}));
  Tensor xt = x.t();
  xt.add_(from_vector<double>({1, 2}));  // other dtype, broadcast over a transposed view
  EXPECT_EQ(values(x), (V{4, 6, 8, 5, 7, 9}));
  Tensor i = zeros({2}, DType::i32);
  expect_error_contains_all([&] { i.add_(ones({2})); }, {"add_", "i32"});
}

TEST(TensorCopy, AddIntoABroadcastViewIsAnError) {
  // Three rows that are one row in memory: each element would take three additions (a race on
  // the GPU), so the view is refused, on every device alike.
  Tensor row = zeros({1, 4});
  Tensor view = row.expand({3, 4});
  EXPECT_TRUE(view.has_shared_elements());
  expect_error_contains_all([&] { view.add_(ones({3, 4})); }, {"add_", "broadcast view", "contiguous()"});
  EXPECT_EQ(values(row), V(4, 0.0f));  // untouched
  // A stride-0 dim of size 1 shares nothing.
  Tensor one = zeros({4}).expand({1, 4});
  EXPECT_FALSE(one.has_shared_elements());
  one.add_(ones({1, 4}));
  EXPECT_EQ(values(one), V(4, 1.0f));
}

TEST(TensorCopy, CopyIntoABroadcastViewIsAnError) {
  // Several values would land in one element (a race on the GPU); one value is fine (fill_).
  Tensor row = zeros({1, 4});
  Tensor view = row.expand({3, 4});
  expect_error_contains_all([&] { view.copy_(arange(0, 12).view({3, 4})); }, {"copy_", "broadcast view", "contiguous()"});
  EXPECT_EQ(values(row), V(4, 0.0f));
  view.fill_(2.0);
  EXPECT_EQ(values(row), V(4, 2.0f));
}

// ---- sizes that do not fit --------------------------------------------------------------------

TEST(TensorSizes, ShapesTooLargeToCountAreErrors) {
  // 2^62 f32 elements are 2^64 bytes; (2^62 + 1) x 4 elements wrap to 4: both were a tiny buffer.
  expect_error_contains_all([] { (void)Tensor::empty({int64_t{1} << 62}); }, {"empty", "too large", "bytes"});
  expect_error_contains_all([] { (void)Tensor::empty({(int64_t{1} << 62) + 1, 4}, DType::u8); },
                            {"empty", "too large", "elements"});
  EXPECT_EQ(Tensor::empty({int64_t{1} << 62, 4, 0}).numel(), 0);  // a zero size: nothing to count
  // A view whose product wraps to the tensor's size.
  expect_error_contains([] { (void)zeros({4}).view({(int64_t{1} << 62) + 1, 4}); }, "too large");
  expect_error_contains([] { (void)zeros({1, 1}).expand({int64_t{1} << 32, int64_t{1} << 32}); }, "too large");
  expect_error_contains([] { (void)arange(0, 4.7e18); }, "too many");
}

TEST(TensorSizes, ExpandRefusesNegativeSizes) {
  expect_error_contains_all([] { (void)ones({3, 1}).expand({3, -2}); }, {"expand", "-2", "negative"});
  expect_error_contains_all([] { (void)ones({3}).expand({-3, 3}); }, {"expand", "-3", "new leading dim"});
  EXPECT_EQ(ones({3, 1}).expand({-1, 5}).shape(), Shape({3, 5}));
}

TEST(TensorSizes, SliceWithAHugeStep) {
  EXPECT_EQ(arange(0, 3).slice(0, 0, 3, INT64_MAX - 1).shape(), Shape({1}));
  EXPECT_EQ(arange(0, 10).slice(0, 0, 10, INT64_MAX).shape(), Shape({1}));
  EXPECT_EQ(arange(0, 10).slice(0, 4, 4, INT64_MAX).shape(), Shape({0}));
  EXPECT_EQ(arange(0, 10).slice(0, 1, 10, 3).to_vector<float>(), (V{1, 4, 7}));
}

// ---- 0-d and zero-size tensors ---------------------------------------------------------------

TEST(TensorScalar, ZeroDimTensors) {
  Tensor s = full({}, 3.5);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_TRUE(s.is_contiguous());
  EXPECT_EQ(s.item<float>(), 3.5f);
  EXPECT_EQ(s.item<double>(), 3.5);
  EXPECT_EQ(s.item<int64_t>(), 3);
  EXPECT_EQ(s.to_vector<float>(), (V{3.5f}));
  EXPECT_EQ(s.view({1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(s.reshape({-1}).shape(), (Shape{1}));
  EXPECT_EQ(s.unsqueeze(0).shape(), (Shape{1}));
  EXPECT_EQ(s.unsqueeze(-1).shape(), (Shape{1}));
  EXPECT_EQ(iota({1, 1}).view({}).dim(), 0);
  EXPECT_EQ(iota({1}).squeeze(0).dim(), 0);
  s.copy_(full({}, -2.0, DType::i64));
  EXPECT_EQ(s.item<float>(), -2.0f);
  EXPECT_EQ(s.clone().item<float>(), -2.0f);
  EXPECT_EQ(s.to(DType::f16).item<float>(), -2.0f);
  expect_error_contains([&] { (void)s.size(0); }, "dim 0 is out of range");
}

TEST(TensorScalar, ZeroSizeTensors) {
  const Tensor z = zeros({0, 3});
  EXPECT_EQ(z.numel(), 0);
  EXPECT_TRUE(z.to_vector<float>().empty());
  EXPECT_EQ(z.view({3, 0}).shape(), (Shape{3, 0}));
  EXPECT_EQ(z.view({-1, 3}).shape(), (Shape{0, 3}));
  EXPECT_EQ(z.reshape({0}).shape(), (Shape{0}));
  EXPECT_EQ(z.t().shape(), (Shape{3, 0}));
  EXPECT_EQ(z.t().contiguous().shape(), (Shape{3, 0}));
  EXPECT_EQ(z.clone().shape(), (Shape{0, 3}));
  EXPECT_EQ(z.to(DType::i64).dtype(), DType::i64);
  EXPECT_EQ(z.expand({2, 0, 3}).shape(), (Shape{2, 0, 3}));
  EXPECT_EQ(z.slice(1, 1, 3).shape(), (Shape{0, 2}));
  Tensor w = zeros({0, 3});
  w.copy_(ones({3}));  // nothing to do
  w.fill_(2.0);
  EXPECT_EQ(w.numel(), 0);
  expect_error_contains([&] { (void)z.item<float>(); }, "0 elements");
  expect_error_contains([&] { (void)z.select(0, 0); }, "out of range");
}

// ---- dim errors and item() -------------------------------------------------------------------

TEST(TensorErrors, WrapDim) {
  const Tensor x = iota({2, 3});
  EXPECT_EQ(x.wrap_dim(-1), 1);
  EXPECT_EQ(x.wrap_dim(-2), 0);
  EXPECT_EQ(x.wrap_dim(1), 1);
  expect_error_contains([&] { (void)x.wrap_dim(5); },
                        "dim 5 is out of range for a tensor of shape [2, 3] (valid: -2 to 1)");
  expect_error_contains([&] { (void)x.size(2); }, "dim 2 is out of range");
  expect_error_contains([&] { (void)x.stride(-3); }, "dim -3 is out of range");
  expect_error_contains([&] { (void)x.transpose(0, 5); }, "dim 5 is out of range");
  expect_error_contains([&] { (void)x.slice(2, 0, 1); }, "dim 2 is out of range");
  expect_error_contains([&] { (void)x.select(-3, 0); }, "dim -3 is out of range");
  expect_error_contains([&] { (void)x.squeeze(2); }, "dim 2 is out of range");
}

TEST(TensorErrors, ItemNeedsOneElement) {
  const Tensor x = iota({2, 3});
  expect_error_contains_all([&] { (void)x.item<float>(); },
                            {"item() needs a tensor of one element", "[2, 3]", "6 elements"});
  EXPECT_EQ(iota({1, 1}).item<float>(), 0.0f);
  EXPECT_EQ(iota({2, 3}).select(0, 1).select(0, 2).item<float>(), 5.0f);
}

// Kernels take up to 8 dims; copies of tensors with more merge the dims both layouts walk alike:
// a contiguous 10-dim tensor copies, converts and adds as one run, a transpose of its outer and
// inner dims as three; layouts that merge into no fewer than 9 dims are refused by name.
TEST(TensorCopy, MoreDimsThanKernelsTakeWhereTheLayoutsMerge) {
  const Shape s(10, 2);  // 2^10 elements
  const Tensor a = arange(1024, DType::f64).reshape(s);
  const std::vector<double> av = a.to_vector<double>();
  EXPECT_EQ(a.clone().to_vector<double>(), av);
  EXPECT_EQ(a.to(DType::f32).to(DType::f64).to_vector<double>(), av);
  Tensor b = a.clone();
  b.add_(a, 2.0);
  for (size_t i = 0; i < av.size(); ++i) ASSERT_EQ(b.to_vector<double>()[i], 3 * av[i]) << i;
  const std::vector<double> t = a.transpose(0, 9).contiguous().to_vector<double>();
  for (int64_t i = 0; i < 1024; ++i) {  // bit 9 and bit 0 of the flat index swapped
    const int64_t j = (i & ~int64_t{0x201}) | ((i >> 9) & 1) | ((i & 1) << 9);
    ASSERT_EQ(t[static_cast<size_t>(i)], av[static_cast<size_t>(j)]) << i;
  }
  std::vector<int64_t> reversed;
  for (int64_t d = 8; d >= 0; --d) reversed.push_back(d);
  const Tensor r = arange(512, DType::f64).reshape(Shape(9, 2)).permute(reversed);
  test::expect_error_contains([&] { (void)r.contiguous(); }, "kernels take up to 8 dims, and these layouts merge into "
                                                            "no fewer than 9");
}
