#include "trainer/state.h"

#include <gtest/gtest.h>

namespace pit::train {
namespace {

TEST(StateDict, MergeAndSubRoundTrip) {
  StateDict model;
  model.tensors["w"] = Tensor::empty({2, 3});
  model.ints["steps"] = 7;
  StateDict all;
  all.merge("model", model);
  all.reals["loss_scale"] = 1024.0;
  all.strings["config"] = "a: 1";
  EXPECT_EQ(all.tensors.count("model/w"), 1u);
  EXPECT_EQ(all.ints.at("model/steps"), 7);

  const StateDict back = all.sub("model");
  ASSERT_EQ(back.tensors.size(), 1u);
  EXPECT_EQ(back.tensors.at("w").shape(), (Shape{2, 3}));
  EXPECT_EQ(back.ints.at("steps"), 7);
  EXPECT_TRUE(back.reals.empty());
  EXPECT_TRUE(all.sub("mod").tensors.empty());  // a prefix matches whole path segments only
}

}  // namespace
}  // namespace pit::train
