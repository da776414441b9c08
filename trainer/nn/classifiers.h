#pragma once
// Image classifiers with PyTorch's default initialisation: an MLP over the flattened image, and
// a small CNN (per entry of `channels`: conv3x3 (padding 1), relu, 2x2 max-pool; then hidden
// Linear layers and the head). Both take (B, C, H, W) (the MLP any (B, ...)) and return logits
// (B, num_classes) in the compute dtype.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/random.h"
#include "trainer/nn/activation.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/module.h"

namespace pit::nn {

struct ClassifierOptions {
  int64_t in_channels = 1, image_size = 28;  // input (B, in_channels, image_size, image_size)
  int64_t num_classes = 10;
  std::vector<int64_t> hidden = {128};       // widths of the hidden Linear layers
  std::vector<int64_t> channels = {16, 32};  // CNN only: output channels of each conv stage
  Activation activation = Activation::relu;  // of the hidden Linear layers
  double dropout = 0.0;                      // after each hidden activation
  bool bias = true;
};

// flatten, (Linear, activation, dropout) per hidden width, Linear head.
class MlpClassifier : public Module {
 public:
  MlpClassifier(const ClassifierOptions& o, Generator& gen);
  const char* type_name() const override { return "MlpClassifier"; }
  Variable forward(const Variable& x) override;

 private:
  std::shared_ptr<ModuleList> hidden_;
  std::shared_ptr<Linear> head_;
  int64_t in_features_;
  Activation activation_;
  double dropout_;
};

class CnnClassifier : public Module {
 public:
  CnnClassifier(const ClassifierOptions& o, Generator& gen);
  const char* type_name() const override { return "CnnClassifier"; }
  Variable forward(const Variable& x) override;

 private:
  std::shared_ptr<ModuleList> convs_, hidden_;
  std::shared_ptr<Linear> head_;
  ClassifierOptions opt_;
};

}  // namespace pit::nn
