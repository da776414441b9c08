#pragma once
// The schema of pit-train's config: every section, key and cross-key rule. A later feature adds
// its section (sparsity:, moe:, parallel:) in train_schema.cpp and its typed struct in config.h.
#include "trainer/config/schema.h"

namespace pit::train {

const Schema& train_schema();

}  // namespace pit::train
