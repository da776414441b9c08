#include "trainer/config/train_schema.h"

#include "trainer/config/loader.h"
#include "trainer/config/suggest.h"
#include "trainer/config/values.h"

namespace pit::train {
namespace {

using Ints = std::vector<int64_t>;
using Strings = std::vector<std::string>;

// An entry of run.cpu_overrides must be an override that --set would accept, of another key.
// (Whether the CPU config as a whole passes the cross checks is checked by load_config, which
// applies the entries on a trial basis.)
std::string cpu_override_problem(const std::string& entry) {
  if (entry.substr(0, entry.find('=')) == "run.cpu_overrides")
    return "run.cpu_overrides cannot set run.cpu_overrides itself";
  return join(override_problems(train_schema(), entry), "; ");
}

void add_run(Schema& s) {
  s.section("run", "the run as a whole")
      .string("name", "run", "name of the run; out_dir defaults to runs/<name>").non_empty()
      .integer("seed", 1234, "seed of every random draw (init, dropout, data order)").at_least(0)
      .choice("device", {"auto", "cpu", "cuda"}, "auto", "where to train; auto: CUDA when a GPU this build runs on is present, else the CPU")
      .string("out_dir", "", "output folder; \"\" means runs/<name>")
      .integer("steps", required, "optimizer steps to train").at_least(1).example("1000")
      .integer("log_every", 10, "print a progress line every this many steps").at_least(1)
      .integer("eval_every", 200, "evaluate every this many steps; 0: only at the end").at_least(0)
      .integer("eval_batches", 20, "validation batches per evaluation").at_least(1)
      .integer("final_eval_batches", 0,
               "validation batches of the evaluation at the end; 0: the whole validation set")
      .at_least(0)
      .integer("threads", 0,
               "CPU threads of the CPU backend, its kernels and OpenBLAS's GEMMs (unless "
               "OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or OMP_NUM_THREADS is set); 0: PIT_NUM_THREADS, "
               "else the CPUs in the process's affinity mask, at most the node's CPUs / the ranks on the node")
      .at_least(0)
      .at_most(65536)
      .string_list("cpu_overrides", Strings{},
                   "overrides applied when the run lands on the CPU (no GPU, or run.device: cpu), "
                   "each \"section.key=value\" as for --set; they let one config describe a full GPU "
                   "run and a small CPU run")
      .each("section.key=value", cpu_override_problem)
      .example("[\"model.d_model=64\", \"data.batch_size=4\"]");
}

void add_data(Schema& s) {
  s.section("data", "the HDF5 datasets")
      .choice("kind", {"tokens", "images"}, required, "what data.train and data.valid hold: tokens (for transformer) or images (for mlp, cnn)")
      .string("train", required, "training set (HDF5 file)").non_empty().example("\"data/train.h5\"")
      .string("valid", required, "validation set (HDF5 file)").non_empty().example("\"data/valid.h5\"")
      .integer("batch_size", 32, "examples per batch").at_least(1)
      .integer("seq_len", 256, "tokens: tokens per example").at_least(1).at_most(1 << 30)
      .boolean("shuffle", true, "shuffle the training set every epoch");
}

void add_model(Schema& s) {
  s.section("model", "the network; keys of another kind are allowed and ignored (those marked \"all models\" apply to every kind)")
      .choice("kind", {"transformer", "mlp", "cnn"}, required, "which network")
      .integer("vocab_size", 256, "transformer: vocabulary size").at_least(1)
      .integer("d_model", 256, "transformer: width of the residual stream").at_least(1)
      .integer("n_layers", 4, "transformer: number of blocks").at_least(1)
      .integer("n_heads", 4, "transformer: attention heads; must divide d_model").at_least(1)
      .integer("d_ff", 1024, "transformer: hidden width of the feed-forward layer; a multiple of d_model").at_least(1)
      .integer("max_seq_len", 0, "transformer: longest sequence; 0 means data.seq_len").at_least(0)
      .real("dropout", 0.0, "all models: dropout probability (transformer: attention, residual branches and experts; "
                             "mlp, cnn: after each hidden dense layer)").at_least(0).less_than(1)
      .choice("norm", {"layernorm", "rmsnorm"}, "layernorm", "transformer: normalisation layer")
      .choice("activation", {"gelu", "relu", "silu"}, "gelu",
              "all models: activation of the feed-forward layers (transformer, experts included) and of the "
              "hidden dense layers (mlp, cnn; a cnn's conv blocks use relu)")
      .boolean("tie_embeddings", true, "transformer: output layer shares the token embedding")
      .boolean("sparse_activation", false,
               "transformer, activation relu: the feed-forward layer's second matmul skips the ReLU output's zero "
               "32x1 micro-tiles (a K-condense PIT GEMM, detected every step; on a GPU the planner falls back to "
               "cuBLAS when that would not win). Dense feed-forward layers only: not the MoE layers' experts, "
               "nor a second matmul pruned by the sparse section (it runs its own sparse kernels)")
      .integer("experts", 0, "transformer: experts of each MoE feed-forward layer; 0: dense feed-forward layers").at_least(0)
      .integer("top_k", 1, "transformer, MoE: experts each token is routed to (1: Switch)").at_least(1)
      .integer("moe_every", 1, "transformer, MoE: every this many blocks has an MoE layer (1: all; 2: every other, the second first)").at_least(1)
      .real("router_jitter", 0.0, "transformer, MoE: router input times U(1 - j, 1 + j) while training").at_least(0).less_than(1)
      .real("aux_loss_coef", 0.01, "transformer, MoE: weight of the load-balancing loss in the training loss").at_least(0)
      .real("z_loss_coef", 0.001, "transformer, MoE: weight of the router z-loss in the training loss").at_least(0)
      .real("capacity_factor", 0.0, "transformer, MoE: 0: dropless; c > 0: an expert runs at most ceil(c * tokens * top_k / experts) assignments, first choices first, the rest dropped (for comparison runs)").at_least(0)
      .int_list("hidden", Ints{1024, 1024}, "mlp: width of each hidden layer").at_least(1)
      .int_list("channels", Ints{32, 64}, "cnn: channels of each conv block").at_least(1).non_empty()
      .integer("cnn_hidden", 128, "cnn: width of the hidden dense layer").at_least(1);
}

void add_optim(Schema& s) {
  s.section("optim", "the optimizer")
      .choice("name", {"adamw", "sgd"}, "adamw", "optimizer")
      .real("lr", 3e-4, "peak learning rate").greater_than(0)
      .real("weight_decay", 0.0, "decoupled weight decay (adamw) or L2 (sgd), of matrices only (embeddings "
                                 "included; biases and norm weights are not decayed)").at_least(0)
      .real("beta1", 0.9, "adamw: first-moment decay").at_least(0).less_than(1)
      .real("beta2", 0.999, "adamw: second-moment decay").at_least(0).less_than(1)
      .real("eps", 1e-8, "adamw: added to the denominator").greater_than(0)
      .real("momentum", 0.9, "sgd: momentum").at_least(0).less_than(1)
      .boolean("nesterov", false, "sgd: Nesterov momentum")
      .real("grad_clip", 1.0, "clip the global gradient norm to this; 0: off").at_least(0);
}

void add_schedule(Schema& s) {
  s.section("schedule", "the learning-rate schedule")
      .choice("name", {"constant", "cosine", "step"}, "cosine", "shape after warm-up")
      .integer("warmup_steps", 0, "linear warm-up from 0 to optim.lr over this many steps").at_least(0)
      .real("min_lr", 0.0, "cosine: the learning rate it decays to, reached at step run.steps (the last step, run.steps - 1, trains a little above it)").at_least(0)
      .integer("step_every", 1000, "step: multiply by gamma every this many steps").at_least(1)
      .real("gamma", 0.1, "step: factor applied every step_every steps").greater_than(0).at_most(1);
}

void add_precision(Schema& s) {
  s.section("precision", "number formats")
      .choice("compute", {"f32", "bf16", "f16"}, "f32", "compute dtype (master weights stay f32)")
      .real("loss_scale", 0, "f16: static loss scale; 0: dynamic").at_least(0)
      .real("init_scale", 65536, "f16, dynamic: initial loss scale").greater_than(0)
      .integer("growth_interval", 2000, "f16, dynamic: double the scale after this many good steps").at_least(1);
}

void add_checkpoint(Schema& s) {
  s.section("checkpoint", "checkpoints (HDF5) for exact resume")
      .integer("every", 0, "save every this many steps; 0: only at the end").at_least(0)
      .integer("keep", 3, "how many recent checkpoints to keep").at_least(1).at_most(1000000)
      .string("dir", "", "checkpoint folder; \"\" means <out_dir>/checkpoints");
}

void add_metrics(Schema& s) {
  s.section("metrics", "metrics log")
      .string("file", "", "JSON-lines metrics file; \"\" means <out_dir>/metrics.jsonl");
}

void add_sparse(Schema& s) {
  s.section("sparse", "dynamic sparse training of Linear layers (pruned weights on the PIT kernels; docs/SPARSE.md)")
      .choice("method", {"none", "magnitude", "set", "rigl"}, "none",
              "none: dense; magnitude: magnitude pruning (one-shot or gradual, cubic schedule); set: drop the "
              "smallest units, regrow at random; rigl: drop the smallest, regrow where the dense gradient is largest")
      .string_list("layers", Strings{"*"},
                   "Linear layers to make sparse, as path patterns ('*' matches any characters): mlp: hidden/0, "
                   "hidden/1, head; cnn: hidden/0, head; transformer: blocks/<i>/attn/qkv, blocks/<i>/attn/proj, "
                   "blocks/<i>/mlp/fc, blocks/<i>/mlp/proj, lm_head")
      .example("[\"blocks/*/mlp/*\"]")
      .choice("unit", {"1x1", "16x1", "32x1", "64x1", "128x1", "16x16", "32x32", "64x64"}, "32x1",
              "pruning unit (micro-tile) of a weight [out, in]: r x 1 is r output rows by one input column, b x b a "
              "block; 1x1 prunes elements (computed and stored on their 32x1 cover)")
      .real("sparsity", 0.9, "fraction of the sparse layers' weights pruned (magnitude: at the end)").at_least(0).less_than(1)
      .choice("budget", {"uniform", "erk"}, "uniform",
              "how the sparsity is spread over layers: uniform, or ERK (density by (out + in) / (out * in))")
      .boolean("dense_first_last", false, "leave the first and the last matched layer dense")
      .real("initial_sparsity", 0.0, "magnitude: sparsity at the first update (start_step)").at_least(0).less_than(1)
      .integer("start_step", 0, "magnitude: first mask update (the layers are dense before it)").at_least(0)
      .integer("end_step", 0, "magnitude: last mask update, reaching sparse.sparsity; equal to start_step: one-shot")
      .at_least(0)
      .integer("every", 100, "magnitude: steps between mask updates").at_least(1)
      .choice("threshold", {"layer", "global"}, "layer",
              "magnitude: per-layer budgets, or one threshold over all sparse layers (the budget then does not apply)")
      .real("drop_fraction", 0.3, "set, rigl: fraction of a layer's units dropped and regrown, decayed with a cosine "
                                  "from this at step 0 to 0 at update_end (the first update, at update_every, "
                                  "drops drop_fraction / 2 * (1 + cos(pi * update_every / update_end)))").at_least(0).at_most(1)
      .integer("update_every", 100, "set, rigl: steps between mask updates").at_least(1)
      .integer("update_end", 0, "set, rigl: no mask update from this step on; 0: 3/4 of run.steps").at_least(0);
}

void add_parallel(Schema& s) {
  s.section("parallel", "multi-process runs (mpirun / srun; docs/DISTRIBUTED.md): how the ranks share the work")
      .integer("expert", 1,
               "expert parallelism: each MoE layer's experts are sharded over groups of this many ranks (tokens "
               "travel to their experts with all_to_all); it must divide the number of ranks and model.experts. "
               "1: every rank holds every expert. Everything else is data parallel over all ranks")
      .at_least(1);
}

void add_cross_checks(Schema& s) {
  s.cross_check({"parallel.expert", "model.experts"}, "parallel.expert > 1 needs MoE layers, and divides model.experts",
                [](const Values& v) -> std::string {
                  const int64_t ep = v.integer("parallel.expert");
                  if (ep == 1) return "";
                  if (v.string("model.kind") != "transformer" || v.integer("model.experts") == 0)
                    return "parallel.expert " + std::to_string(ep) +
                           " shards the experts of MoE layers, but the model has none: set model.experts, or "
                           "parallel.expert: 1";
                  if (v.integer("model.experts") % ep == 0) return "";
                  return "model.experts (" + std::to_string(v.integer("model.experts")) +
                         ") must be a multiple of parallel.expert (" + std::to_string(ep) +
                         "): each rank of an expert group holds model.experts / parallel.expert experts";
                });
  s.cross_check({"model.experts", "model.moe_every", "model.n_layers"},
                "transformer with experts: model.moe_every <= model.n_layers",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer" || v.integer("model.experts") == 0) return "";
                  if (v.integer("model.moe_every") <= v.integer("model.n_layers")) return "";
                  return "model.moe_every (" + std::to_string(v.integer("model.moe_every")) + ") exceeds model.n_layers (" +
                         std::to_string(v.integer("model.n_layers")) +
                         "), so no block would get an MoE layer and model.experts would do nothing: lower "
                         "model.moe_every, or set model.experts: 0 for a dense model";
                });
  s.cross_check({"model.sparse_activation", "model.activation"}, "transformer: model.sparse_activation needs relu",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer" || !v.boolean("model.sparse_activation")) return "";
                  if (v.string("model.activation") == "relu") return "";
                  return "model.sparse_activation skips the zeros of a ReLU: set model.activation: relu";
                });
  s.cross_check({"model.sparse_activation", "model.experts", "model.moe_every"},
                "transformer: model.sparse_activation needs a block with a dense feed-forward layer",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer" || !v.boolean("model.sparse_activation")) return "";
                  if (v.integer("model.experts") == 0 || v.integer("model.moe_every") > 1) return "";
                  return "model.sparse_activation applies to dense feed-forward layers, but with model.moe_every: 1 "
                         "every block has an MoE layer instead: set model.moe_every: 2 (every other block), or "
                         "model.sparse_activation: false";
                });
  s.cross_check({"model.d_ff", "model.d_model"}, "transformer: model.d_ff is a multiple of model.d_model",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer") return "";
                  if (v.integer("model.d_ff") % v.integer("model.d_model") == 0) return "";
                  return "model.d_ff (" + std::to_string(v.integer("model.d_ff")) + ") must be a multiple of model.d_model (" +
                         std::to_string(v.integer("model.d_model")) + "): the feed-forward width is a whole ratio of it";
                });
  s.cross_check({"sparse.start_step", "sparse.end_step"}, "magnitude: sparse.end_step >= sparse.start_step",
                [](const Values& v) -> std::string {
                  if (v.string("sparse.method") != "magnitude") return "";
                  if (v.integer("sparse.end_step") >= v.integer("sparse.start_step")) return "";
                  return "sparse.end_step must be at least sparse.start_step (equal: one-shot pruning at that step)";
                });
  s.cross_check({"sparse.initial_sparsity", "sparse.sparsity"}, "magnitude: sparse.initial_sparsity <= sparse.sparsity",
                [](const Values& v) -> std::string {
                  if (v.string("sparse.method") != "magnitude") return "";
                  if (v.real("sparse.initial_sparsity") <= v.real("sparse.sparsity")) return "";
                  return "sparse.initial_sparsity must not exceed sparse.sparsity (the cubic schedule rises to it)";
                });
  s.cross_check({"data.kind", "model.kind"}, "a transformer reads tokens; mlp and cnn read images",
                [](const Values& v) -> std::string {
                  const bool tokens = v.string("data.kind") == "tokens";
                  const bool transformer = v.string("model.kind") == "transformer";
                  if (tokens == transformer) return "";
                  return transformer ? "a transformer needs data.kind tokens"
                                     : "model.kind " + v.string("model.kind") + " needs data.kind images";
                });
  s.cross_check({"model.d_model", "model.n_heads"}, "transformer: model.n_heads divides model.d_model",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer") return "";
                  if (v.integer("model.d_model") % v.integer("model.n_heads") == 0) return "";
                  return "model.d_model must be a multiple of model.n_heads (each head gets d_model / n_heads)";
                });
  s.cross_check({"model.experts", "model.top_k"}, "transformer, MoE: model.top_k is at most model.experts",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer" || v.integer("model.experts") == 0) return "";
                  if (v.integer("model.top_k") <= v.integer("model.experts")) return "";
                  return "model.top_k (" + std::to_string(v.integer("model.top_k")) + ") must be at most model.experts (" +
                         std::to_string(v.integer("model.experts")) + "): each token goes to top_k different experts";
                });
  s.cross_check({"model.max_seq_len", "data.seq_len"},
                "transformer: model.max_seq_len is 0 or at least data.seq_len",
                [](const Values& v) -> std::string {
                  if (v.string("model.kind") != "transformer") return "";
                  const int64_t max_len = v.integer("model.max_seq_len");
                  if (max_len == 0 || max_len >= v.integer("data.seq_len")) return "";
                  return "model.max_seq_len must be 0 (meaning data.seq_len) or at least data.seq_len";
                });
  s.cross_check({"schedule.warmup_steps", "run.steps"}, "schedule.warmup_steps < run.steps",
                [](const Values& v) -> std::string {
                  const int64_t steps = v.integer("run.steps");
                  if (v.integer("schedule.warmup_steps") < steps) return "";
                  // A shortened run (a smoke test) meets this most: say how to warm up for it.
                  return "schedule.warmup_steps must be less than run.steps (for " + std::to_string(steps) +
                         " steps e.g. --set schedule.warmup_steps=" + std::to_string(steps / 10) + ")";
                });
  s.cross_check({"schedule.min_lr", "optim.lr"}, "cosine: schedule.min_lr <= optim.lr",
                [](const Values& v) -> std::string {
                  if (v.string("schedule.name") != "cosine") return "";
                  if (v.real("schedule.min_lr") <= v.real("optim.lr")) return "";
                  return "schedule.min_lr must not exceed optim.lr (the cosine decays from lr to min_lr)";
                });
  s.cross_check({"optim.nesterov", "optim.momentum"}, "sgd: Nesterov needs optim.momentum > 0",
                [](const Values& v) -> std::string {
                  if (v.string("optim.name") != "sgd" || !v.boolean("optim.nesterov")) return "";
                  if (v.real("optim.momentum") > 0) return "";
                  return "Nesterov momentum needs optim.momentum > 0";
                });
}

Schema build() {
  Schema s;
  add_run(s);
  add_data(s);
  add_model(s);
  add_optim(s);
  add_schedule(s);
  add_precision(s);
  add_checkpoint(s);
  add_metrics(s);
  add_sparse(s);
  add_parallel(s);
  add_cross_checks(s);
  return s;
}

}  // namespace

const Schema& train_schema() {
  static const Schema schema = build();
  return schema;
}

}  // namespace pit::train
