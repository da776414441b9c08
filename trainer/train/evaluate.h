#pragma once
// Evaluation: the mean loss (and the accuracy for classifiers) of a model over batches of a
// loader in evaluation mode, without gradients and with dropout off.
#include <cstdint>

#include "core/device.h"
#include "trainer/data/loader.h"
#include "trainer/nn/module.h"

namespace pit::train {

struct EvalResult {
  double loss = 0;        // mean cross-entropy per token (LM) or per image
  double accuracy = -1;   // classifiers: fraction of correct top-1 predictions; -1 for LMs
  int64_t count = 0;      // tokens or images evaluated
  int64_t batches = 0;
};

// The loss of logits [..., C] against targets [...] (i64), as training computes it: the mean
// over every position.
Variable training_loss(const Variable& logits, const Tensor& targets);

// Up to max_batches batches (<= 0: the whole set) from the start of `loader`, on `device`.
EvalResult evaluate(nn::Module& model, data::Loader& loader, Device device, int64_t max_batches);

}  // namespace pit::train
