#pragma once
// CUDA PIT GEMMs (tensor cores for bf16/f16 with f32 accumulation; CUDA cores for f32): the
// implementation of every function of ops/pit/gemm.h with the same contract, on `stream`, with
// no host synchronisation (counts and offsets are read on the device). Inputs are validated by
// ops/pit/gemm.cpp (shapes, dtypes, devices, contiguity); these only launch.
#include "core/device.h"
#include "ops/pit/gemm.h"

namespace pit::sparse::cuda {

void gather_gemm(const Tensor& a, const RowSetIndex& idx, const Tensor& b, Tensor& c,
                 const GatherGemmArgs& args, StreamRef stream);
void gather_weight_grad(const Tensor& a, const Tensor& g, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args, StreamRef stream);
// Whether gather_weight_grad takes its lean kernel (weight_grad_lean.cu) for these arguments:
// Engine::automatic, f16/bf16, rows of A and G 16-byte aligned, no entry weights, dB stored and
// 16-byte aligned; not with PIT_WEIGHT_GRAD_LEAN=0. (Engine::wgmma forces the general kernel: the
// same sums, bit for bit.)
bool gather_weight_grad_lean_takes(const Tensor& a, const Tensor& g, const RowSetIndex& idx, const Tensor& db,
                                   const GatherWeightGradArgs& args);
// Whether it takes the wide kernel (weight_grad_wide.cu: 128 x 256 tiles, persistent, warp-specialised) among those:
// Q (dB's columns) over 128; not with PIT_WEIGHT_GRAD_WIDE=0.
bool gather_weight_grad_wide_takes(const Tensor& a, const Tensor& g, const RowSetIndex& idx, const Tensor& db,
                                   const GatherWeightGradArgs& args);
// engine: for 128-row micro-tiles in f16/bf16 (smaller ones run on mma.sync whatever it says);
// wgmma_persistent needs 16-byte aligned rows of B and of the values (it throws otherwise).
void condense_gemm(const KListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue,
                   StreamRef stream, Engine engine = Engine::automatic);
void block_gemm(const BlockListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue,
                StreamRef stream);
// y = x V^T without transposes (block_linear.cu), for the cases block_linear_takes: f16/bf16,
// 64 x 64 blocks, x's rows and the values 16-byte aligned. block_values_take: the conditions on
// V alone (f16/bf16 values, 64 x 64, non-empty, 16-byte aligned, fewer than 2^31 blocks' rows).
bool block_values_take(const BlockListIndex& v);
bool block_linear_takes(const Tensor& x, const BlockListIndex& v);
void block_linear(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias, bool relu, StreamRef stream);
// dx = dy V over V's transposed lists (t_offsets, t_rows, t_pos defined), V's blocks read as they lie.
bool block_linear_dx_takes(const Tensor& dy, const BlockListIndex& v);
void block_linear_dx(const Tensor& dy, const BlockListIndex& v, Tensor& dx, StreamRef stream);
// The ReLU between two block layers as bits (ops/pit/gemm.h block_linear_relu_bits): y =
// relu(x V^T + bias) and mask [T, v.rows / 8] u8; dx = (dy V) where mask, and part
// [block_linear_part_rows(T), v.cols] f32, the column sums of dx by token tile (v.rows, resp. v.cols,
// a multiple of 8).
void block_linear_relu_bits(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias, Tensor& mask,
                            StreamRef stream);
int64_t block_linear_part_rows(int64_t tokens);
void block_linear_dx_relu_bits(const Tensor& dy, const BlockListIndex& v, const Tensor& mask, Tensor& dx, Tensor& part,
                               StreamRef stream);
// The values' gradient of a Linear on 64 x 64 blocks (block_sampled.cu): sampled_gemm(g, x, out,
// a_trans = true, b_trans = false) without transposes, for the cases block_sampled_takes.
bool block_sampled_takes(const Tensor& g, const Tensor& x, const BlockListIndex& out, bool a_trans, bool b_trans);
void block_sampled(const Tensor& g, const Tensor& x, BlockListIndex& out, StreamRef stream);
void condense_gemm_tn(const KListIndex& a, const Tensor& g, Tensor& db, Write write,
                      StreamRef stream);
void block_gemm_tn(const BlockListIndex& a, const Tensor& g, Tensor& db, Write write,
                   StreamRef stream);
void sampled_gemm(const Tensor& a, const Tensor& b, KListIndex& out, bool a_trans, bool b_trans,
                  StreamRef stream);
// For tests: caps the grid of the persistent engines (Engine::wgmma_persistent and
// wgmma_pingpong: gather_gemm, gather_weight_grad, condense_gemm) at `blocks` (0, the default: no
// cap), so that each block walks many tiles even on a large GPU. Returns the previous cap.
int set_persistent_grid_cap(int blocks);
// Whether the ping-pong M-gather (Engine::wgmma_pingpong, gather_gemm's choice for experts) loads
// B's stages by TMA where it can (expert segments, not K-chunks): on by default, off where the
// environment has PIT_GATHER_TMA_B=0 at the first launch. For tests and benchmarks; returns the
// previous setting.
bool set_gather_tma_b(bool on);
// With B by TMA, whether a compact A (rows not gathered: MoE's down and dx GEMMs) comes by TMA too,
// one box of 128 rows a stage (PIT_GATHER_TMA_A=0: off). Returns the previous setting.
bool set_gather_tma_a(bool on);
// Whether gather_gemm takes its wide engine (Engine::wgmma_wide) for expert segments by itself
// (on by default, off where the environment has PIT_GATHER_WIDE=0 at the first launch; the
// ping-pong engine then). For tests and benchmarks; returns the previous setting.
bool set_gather_wide(bool on);
// Whether the wide engine stores products into a compact C (with or without entry scales, an
// activation and its pre; no bias: MoE's up and gu GEMMs) by TMA where it can (wide_store.cuh; on
// by default, off where the environment has PIT_WIDE_TMA_STORE=0 at the first launch: SWrite then,
// as elsewhere).
// For tests and benchmarks; returns the previous setting.
bool set_wide_tma_store(bool on);
// Whether the wide engine runs in clusters of two blocks that take an expert's adjacent row tiles
// and share B's stages, each loading half and multicasting it to both (gather_wide.cu; off by
// default, a block a tile each loading all of B: on an H100 the layer ran level with and without
// them; everywhere where the environment has PIT_WIDE_CLUSTER=1 at the first launch, only for a
// compact A with PIT_WIDE_CLUSTER=compact). The same outputs bit for bit (the tests assert it).
// For tests and benchmarks: true sets clusters everywhere, false nowhere; returns whether they
// were on anywhere.
bool set_wide_cluster(bool on);
void sampled_gemm(const Tensor& a, const Tensor& b, BlockListIndex& out, bool a_trans,
                  bool b_trans, StreamRef stream);

}  // namespace pit::sparse::cuda
