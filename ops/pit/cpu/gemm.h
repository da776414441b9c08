#pragma once
// CPU PIT GEMMs: the reference (and CPU path) of every function of ops/pit/gemm.h, with the
// same contract. Inputs are validated by ops/pit/gemm.cpp (shapes, dtypes, devices,
// contiguity); these only compute. Accumulation in f32 (f64 for f64), rounded once on store;
// parallel over column ranges of the output, so no two threads ever write one element and
// results do not depend on the thread count.
#include "ops/pit/gemm.h"

namespace pit::sparse::cpu {

void gather_gemm(const Tensor& a, const RowSetIndex& idx, const Tensor& b, Tensor& c,
                 const GatherGemmArgs& args);
void gather_weight_grad(const Tensor& a, const Tensor& g, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args);
void condense_gemm(const KListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue);
void block_gemm(const BlockListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue);
void condense_gemm_tn(const KListIndex& a, const Tensor& g, Tensor& db, Write write);
void block_gemm_tn(const BlockListIndex& a, const Tensor& g, Tensor& db, Write write);
void sampled_gemm(const Tensor& a, const Tensor& b, KListIndex& out, bool a_trans, bool b_trans);
void sampled_gemm(const Tensor& a, const Tensor& b, BlockListIndex& out, bool a_trans, bool b_trans);

}  // namespace pit::sparse::cpu
