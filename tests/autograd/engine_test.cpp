#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tests/autograd/toy_ops.h"
#include "tests/core/expect_error.h"

using namespace pit;
using namespace pit::test;

namespace {
Variable leaf(std::vector<double> v, bool requires_grad = true) {
  return Variable(from_vector(v), requires_grad);
}
}  // namespace

TEST(Engine, ChainRule) {
  Variable x = leaf({0.5, -1.0, 2.0});
  Variable y = total(sin_op(times(x, x)));  // sum sin(x^2): d/dx = 2x cos(x^2)
  y.backward();
  const auto g = values(x.grad());
  const std::vector<double> xs{0.5, -1.0, 2.0};
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(g[i], 2 * xs[i] * std::cos(xs[i] * xs[i]), 1e-12);
}

TEST(Engine, AccumulatesAcrossUses) {
  Variable x = leaf({3.0});
  Variable y = plus(plus(x, x), times(x, x));  // 2x + x^2 -> 2 + 2x = 8
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 8.0);
}

TEST(Engine, AccumulatesAcrossBackwardCalls) {
  Variable x = leaf({1.0, 2.0});
  total(times(x, x)).backward();
  total(times(x, x)).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{4.0, 8.0}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, SharedGradientIsNotAliasedBetweenLeaves) {
  // plus() returns the same gradient tensor for both inputs; accumulating into one leaf's grad
  // must not change the other's.
  Variable a = leaf({1.0}), b = leaf({2.0});
  total(plus(a, b)).backward();
  total(times(a, b)).backward();  // a += b = 2, b += a = 1
  EXPECT_DOUBLE_EQ(a.grad().item<double>(), 3.0);
  EXPECT_DOUBLE_EQ(b.grad().item<double>(), 2.0);
}

TEST(Engine, UnsharedLeafGradientIsNotCopied) {
  // A gradient that nothing but the engine holds becomes the leaf's grad as it is (copying every
  // leaf's gradient cost the MoE benchmark 1 GB of memory traffic a step).
  Variable a = leaf({1.0, 2.0});
  const void* made = nullptr;
  Variable y = record("fresh", {a}, a.data().clone(), [&made](const Tensor& g) -> std::vector<Tensor> {
    Tensor out = g.clone();
    made = out.data_ptr();
    return {out};
  });
  total(y).backward();
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(a.grad().data_ptr(), made);
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1.0, 1.0}));
}

TEST(Engine, ViewOfAnOutputGradientReachesTheLeafUncopied) {
  // A weight used as W^T: the op hands back dW^T as a view of a contiguous dW, the transpose's
  // backward turns it back into dW, and W keeps that storage (the engine drops the transpose
  // node's own reference to its output gradient before the leaf gets it; before, the leaf copied).
  Variable w(from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}), true);
  Variable wt = record("t", {w}, w.data().t(), [](const Tensor& g) -> std::vector<Tensor> { return {g.t()}; });
  const void* made = nullptr;
  Variable y = record("uses_wt", {wt}, wt.data().clone(), [&made](const Tensor& g) -> std::vector<Tensor> {
    Tensor dw = g.t().clone();  // contiguous [2, 3]
    made = dw.data_ptr();
    return {dw.t()};
  });
  total(y).backward();
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(w.grad().data_ptr(), made);
  EXPECT_TRUE(w.grad().is_contiguous());
  EXPECT_EQ(values(w.grad()), std::vector<double>(6, 1.0));
}

TEST(Engine, SecondBackwardThrowsUnlessRetained) {
  Variable x = leaf({1.0});
  Variable y = total(times(x, x));
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 4.0);
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST(Engine, NoGradRecordsNothing) {
  Variable x = leaf({1.0});
  NoGradGuard guard;
  Variable y = times(x, x);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
  EXPECT_THROW(y.backward(), Error);
}

TEST(Engine, GradModeRestoredAfterGuard) {
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
}

TEST(Engine, DetachCutsTheGraph) {
  Variable x = leaf({2.0});
  Variable d = times(x, x).detach();
  EXPECT_FALSE(d.requires_grad());
  Variable y = total(times(d, x));  // only the second factor carries gradient: d = 4
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 4.0);
}

TEST(Engine, InputsWithoutGradGetNone) {
  Variable x = leaf({2.0}), c = leaf({5.0}, false);
  total(times(x, c)).backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 5.0);
  EXPECT_FALSE(c.grad().defined());
}

TEST(Engine, IndexTensorIsNonDifferentiable) {
  Variable a(from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}), true);
  const Tensor index = from_vector(std::vector<int64_t>{2, 0, 2});
  total(take_rows(a, index)).backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 1, 0, 0, 2, 2}));
  EXPECT_THROW(Variable(index, true), Error);  // an integer tensor cannot require grad
}

TEST(Engine, HookSeesFinalGradientOnceAndMayModifyIt) {
  Variable x = leaf({1.0, 2.0});
  int calls = 0;
  std::vector<double> seen;
  x.register_hook([&](Tensor& g) {
    ++calls;
    seen = values(g);
    g.fill_(10.0);  // e.g. an all-reduce replacing the local gradient
  });
  Variable y = plus(total(times(x, x)), total(x));  // used twice: one hook call, summed grad
  y.backward();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (std::vector<double>{3.0, 5.0}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{10.0, 10.0}));
}

TEST(Engine, HookOnALeafRootLeavesTheCallersSeedAlone) {
  Variable x = leaf({1.0, 2.0});
  x.register_hook([](Tensor& g) { g.fill_(0.0); });
  const Tensor seed = from_vector(std::vector<double>{3.0, 4.0});
  x.backward(seed);
  EXPECT_EQ(values(seed), (std::vector<double>{3.0, 4.0}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0.0, 0.0}));
}

// x's hook throws in the first backward that reaches it, and passes from then on.
void throw_from_hook_once(Variable& x) {
  auto fail = std::make_shared<bool>(true);
  x.register_hook([fail](Tensor&) {
    if (*fail) {
      *fail = false;
      PIT_THROW("hook failed once");
    }
  });
}

TEST(Engine, ABackwardThatThrowsLeavesNoGradientBehind) {
  // x's hook throws once, while w's product (recorded first, run last) still holds the gradient
  // it was passed: kept, it would be added to the next backward's (w.grad 4, not 2).
  Variable w = leaf({1.0}), x = leaf({1.0});
  throw_from_hook_once(x);
  Variable y = total(plus(times(w, leaf({2.0}, false)), times(x, leaf({3.0}, false))));
  EXPECT_THROW(y.backward({}, /*retain_graph=*/true), Error);
  w.zero_grad();
  x.zero_grad();
  y.backward({}, /*retain_graph=*/true);
  EXPECT_DOUBLE_EQ(w.grad().item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 3.0);
}

TEST(Engine, ABackwardThatThrowsGivesNoLeafItsGradient) {
  // w's product is recorded last, so it runs first: w's gradient is complete before x's hook
  // throws. It is not added to w.grad either, so that a retry (without zero_grad) gives each
  // leaf its gradient once (w.grad 2, not 4).
  Variable w = leaf({1.0}), x = leaf({1.0});
  throw_from_hook_once(x);
  Variable y = total(plus(times(x, leaf({3.0}, false)), times(w, leaf({2.0}, false))));
  EXPECT_THROW(y.backward({}, /*retain_graph=*/true), Error);
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  y.backward({}, /*retain_graph=*/true);
  EXPECT_DOUBLE_EQ(w.grad().item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 3.0);
}

TEST(Engine, AGraphBuiltOnTwoThreadsKeepsItsOrder) {
  // The tape's order holds across threads: a producer recorded on another thread (after more ops
  // there than here) still runs after its consumer.
  Variable x = leaf({1.0});
  Variable h;
  std::thread worker([&] {
    for (int i = 0; i < 100; ++i) total(times(x, x));
    h = times(x, leaf({3.0}, false));
  });
  worker.join();
  total(times(h, leaf({2.0}, false))).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 6.0);
}

TEST(Engine, HookOnlyOnLeavesThatRequireGrad) {
  Variable x = leaf({1.0});
  Variable y = times(x, x);
  EXPECT_THROW(y.register_hook([](Tensor&) {}), Error);
  EXPECT_THROW(leaf({1.0}, false).register_hook([](Tensor&) {}), Error);
}

TEST(Engine, BackwardNeedsGradientForNonScalars) {
  Variable x = leaf({1.0, 2.0});
  Variable y = times(x, x);
  EXPECT_THROW(y.backward(), Error);
  y.backward(from_vector(std::vector<double>{1.0, 0.5}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2.0, 2.0}));
}

TEST(Engine, UnreachableBranchesAreNotRun) {
  Variable x = leaf({1.0});
  Variable other = total(times(x, x));  // recorded, never differentiated
  total(plus(x, x)).backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 2.0);
  other.backward();  // still possible: its graph was not consumed
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 4.0);
}

TEST(Engine, SavedStateFreedAfterBackward) {
  Variable x = leaf({1.0, 2.0});
  Variable y = times(x, x);
  const auto node = y.grad_fn();
  EXPECT_FALSE(node->released());
  total(y).backward();
  EXPECT_TRUE(node->released());
}

// A root kept past its backward (a loss kept for logging, an MoE layer's aux loss) no longer pins
// the data of the intermediates before it: the spent graph drops its nodes' inputs.
TEST(Engine, AKeptRootDoesNotPinTheIntermediates) {
  Variable x = leaf({1.0, 2.0});
  Variable y;
  std::weak_ptr<Storage> h_data;
  {
    const Variable h = times(x, x);
    h_data = h.data().storage();
    y = total(times(h, h));
  }
  EXPECT_FALSE(h_data.expired());  // the graph needs it until backward
  y.backward();
  EXPECT_TRUE(h_data.expired());
  EXPECT_DOUBLE_EQ(values(x.grad())[1], 4 * 8.0);  // d/dx x^4 = 4 x^3
  // With retain_graph the graph stays whole, and a second backward works.
  Variable z;
  {
    const Variable h = times(x, x);
    h_data = h.data().storage();
    z = total(times(h, h));
  }
  z.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_FALSE(h_data.expired());
  z.backward();
  EXPECT_TRUE(h_data.expired());
  // Backward through the spent graph again: the same clear error as before.
  EXPECT_THROW(y.backward(), Error);
}

TEST(Engine, DeepChainDoesNotRecurse) {
  Variable x = leaf({1.0});
  Variable y = x;
  for (int i = 0; i < 20000; ++i) y = plus(y, x);  // would overflow a recursive engine
  total(y).backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 20001.0);
}

// A graph that is dropped without a backward (or kept with retain_graph) is freed by a loop: the
// recursive teardown of this chain (each node's input Variable owning the node before it)
// overflowed the 8 MiB stack.
TEST(Engine, ADeepGraphDroppedWithoutBackwardIsFreedWithoutRecursion) {
  Variable x = leaf({1.0});
  {
    Variable y = x;
    for (int i = 0; i < 300000; ++i) y = plus(y, x);
    EXPECT_FALSE(y.is_leaf());
  }  // y, and with it the whole chain, dies here
  Variable kept = x;
  for (int i = 0; i < 300000; ++i) kept = plus(kept, x);
  total(kept).backward(Tensor(), /*retain_graph=*/true);
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 300001.0);
}

TEST(Engine, SetRequiresGradOnlyOnLeaves) {
  Variable x = leaf({1.0});
  Variable y = times(x, x);
  EXPECT_THROW(y.set_requires_grad(false), Error);
  Variable z = leaf({1.0}, false);
  z.set_requires_grad(true);
  EXPECT_TRUE(z.requires_grad());
}

TEST(Engine, AGradientOfAnotherShapeOrDtypeIsRefusedNamingTheOp) {
  // An op's backward that hands back the wrong gradient is stopped where it is made, not when the
  // engine later adds it to the input's (shapes) or keeps it in the wrong precision (dtypes).
  Variable a = leaf({1.0, 2.0});
  Variable wrong_dtype = record("to_f32", {a}, a.data().clone(), [](const Tensor& g) -> std::vector<Tensor> {
    return {g.to(DType::f32)};
  });
  expect_error_contains([&] { total(wrong_dtype).backward(); },
                        "backward of 'to_f32' returned a f32 gradient for a f64 input");
  Variable wrong_shape = record("to_3", {a}, a.data().clone(), [](const Tensor&) -> std::vector<Tensor> {
    return {zeros({3}, DType::f64)};
  });
  expect_error_contains([&] { total(wrong_shape).backward(); },
                        "backward of 'to_3' returned a gradient of shape [3] for an input of shape [2]");
}
