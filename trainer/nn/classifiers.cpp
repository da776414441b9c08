#include "trainer/nn/classifiers.h"

#include "ops/functional.h"

namespace pit::nn {
namespace {

void check_options(const char* model, const ClassifierOptions& o) {
  PIT_CHECK(o.in_channels > 0 && o.image_size > 0, model, ": in_channels and image_size must be "
            "positive, got ", o.in_channels, " and ", o.image_size);
  PIT_CHECK(o.num_classes > 0, model, ": num_classes must be positive, got ", o.num_classes);
  for (const int64_t h : o.hidden)
    PIT_CHECK(h > 0, model, ": hidden widths must be positive, got ", h);
  PIT_CHECK(o.dropout >= 0.0 && o.dropout < 1.0, model, ": dropout must be in [0, 1), got ",
            o.dropout);
}

// Hidden Linear layers from `in` through o.hidden; returns the last width.
int64_t add_hidden(ModuleList& list, int64_t in, const ClassifierOptions& o, Generator& gen) {
  for (const int64_t h : o.hidden) {
    list.push_back(std::make_shared<Linear>(in, h, o.bias, gen));
    in = h;
  }
  return in;
}

Variable run_hidden(const ModuleList& list, Variable x, Activation act, double dropout,
                    bool training) {
  for (size_t i = 0; i < list.size(); ++i)  // Linears only (add_hidden)
    x = ops::dropout(static_cast<Linear&>(list[i]).forward_activated(x, act), dropout, training);
  return x;
}

}  // namespace

// ---- MLP ----------------------------------------------------------------------------------------

MlpClassifier::MlpClassifier(const ClassifierOptions& o, Generator& gen)
    : in_features_(o.in_channels * o.image_size * o.image_size), activation_(o.activation),
      dropout_(o.dropout) {
  check_options("MlpClassifier", o);
  hidden_ = register_module("hidden", std::make_shared<ModuleList>());
  const int64_t last = add_hidden(*hidden_, in_features_, o, gen);
  head_ = register_module("head", std::make_shared<Linear>(last, o.num_classes, o.bias, gen));
}

Variable MlpClassifier::forward(const Variable& x) {
  PIT_CHECK(x.dim() >= 2 && x.numel() == x.size(0) * in_features_, "MlpClassifier: the input of "
            "shape ", shape_str(x.shape()), " does not flatten to (batch, ", in_features_, ")");
  const Variable flat = ops::reshape(x, {x.size(0), in_features_});
  return head_->forward(run_hidden(*hidden_, flat, activation_, dropout_, is_training()));
}

// ---- CNN ----------------------------------------------------------------------------------------

CnnClassifier::CnnClassifier(const ClassifierOptions& o, Generator& gen) : opt_(o) {
  check_options("CnnClassifier", o);
  convs_ = register_module("convs", std::make_shared<ModuleList>());
  int64_t c = o.in_channels, size = o.image_size;
  for (const int64_t out : o.channels) {
    PIT_CHECK(out > 0, "CnnClassifier: channels must be positive, got ", out);
    PIT_CHECK(size >= 2, "CnnClassifier: ", o.channels.size(), " conv stages pool a ",
              o.image_size, "-pixel image below 1 pixel");
    convs_->push_back(std::make_shared<Conv2d>(c, out, 3, 1, 1, o.bias, gen));
    c = out;
    size /= 2;  // 2x2 max-pool, stride 2, floor
  }
  hidden_ = register_module("hidden", std::make_shared<ModuleList>());
  const int64_t last = add_hidden(*hidden_, c * size * size, o, gen);
  head_ = register_module("head", std::make_shared<Linear>(last, o.num_classes, o.bias, gen));
}

Variable CnnClassifier::forward(const Variable& x) {
  PIT_CHECK(x.dim() == 4 && x.size(1) == opt_.in_channels && x.size(2) == opt_.image_size &&
                x.size(3) == opt_.image_size,
            "CnnClassifier: the input must be (batch, ", opt_.in_channels, ", ", opt_.image_size,
            ", ", opt_.image_size, "), got ", shape_str(x.shape()));
  Variable h = x;
  for (size_t i = 0; i < convs_->size(); ++i) h = ops::max_pool2d(ops::relu((*convs_)[i].forward(h)), 2);
  h = ops::reshape(h, {x.size(0), -1});
  return head_->forward(run_hidden(*hidden_, h, opt_.activation, opt_.dropout, is_training()));
}

}  // namespace pit::nn
