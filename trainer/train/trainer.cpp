#include "trainer/train/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <exception>
#include <filesystem>
#include <fstream>
#include <numbers>

#include <unistd.h>

#include "core/comm.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/random.h"
#include "core/thread_pool.h"
#include "ops/cpu/blas_setup.h"
#include "ops/kernels.h"
#include "ops/pit/planner.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/durable.h"
#include "trainer/data/token_loader.h"
#include "trainer/optim/clip.h"
#include "trainer/train/data_parallel.h"
#include "trainer/train/evaluate.h"
#include "trainer/train/format.h"
#include "trainer/train/metrics.h"
#include "trainer/train/moe_stats.h"
#include "trainer/train/parallel_layout.h"
#include "trainer/train/run_state.h"
#include "trainer/train/setup.h"
#include "trainer/train/shards.h"
#include "trainer/train/sparse_stats.h"

namespace pit::train {
namespace {

std::atomic<bool> g_stop{false};
constexpr int64_t kMaxSkippedInARow = 100;  // f16 steps overflowing one after the other: diverged

// The first SIGINT / SIGTERM asks the run to stop after the step (and save); a second one ends the
// process at once, as the signal would without pit's handler (a long evaluation, a rank waiting).
extern "C" void on_stop_signal(int sig) {
  if (g_stop.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

// Installs the SIGINT / SIGTERM handler for the duration of a run (a stop asked for before it, by
// request_stop while the run was set up, stands).
class StopSignals {
 public:
  StopSignals() {
    previous_int_ = std::signal(SIGINT, on_stop_signal);
    previous_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void (*previous_int_)(int) = SIG_DFL;
  void (*previous_term_)(int) = SIG_DFL;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Bytes in use: the CUDA allocator's peak on a GPU, the resident set on the CPU.
double memory_in_use(Device device) {
  if (device.is_cuda()) return static_cast<double>(memory_stats(device).peak_allocated);
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  if (statm >> pages >> resident) return resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
  return 0;
}

struct Run {
  const Config& c;
  std::FILE* out;
  Device device;
  DType compute;
  std::unique_ptr<data::Loader> train_data, valid_data;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::optional<optim::LossScaler> scaler;
  bool lm;
  bool lead = true;  // rank 0: prints, writes metrics and checkpoints
  bool byte_tokens = false;  // a language model over bytes (vocabulary of at most 256): bits per byte

  RunParts parts() { return {*model, *optimizer, scaler, *train_data}; }

  // With sharded experts every rank calls it (the shards are gathered); rank 0 writes.
  std::string save(int64_t step) {
    const auto t0 = std::chrono::steady_clock::now();
    StateDict state = collect_run_state(step, c, parts());
    if (!lead) return "";
    const auto path = save_checkpoint(c.checkpoint_dir(), step, state, static_cast<int>(c.checkpoint.keep));
    std::fprintf(out, "pit-train: checkpoint %s (%s, %.1f s)\n", path.string().c_str(),
                 format_bytes(static_cast<double>(std::filesystem::file_size(path))).c_str(),
                 seconds_since(t0));
    std::fflush(out);
    return path.string();
  }

  EvalResult eval(int64_t step, int64_t max_batches, MetricsLog& metrics) {
    const auto t0 = std::chrono::steady_clock::now();
    const EvalResult r = evaluate(*model, *valid_data, device, max_batches);
    MetricsRecord rec(step, "valid");
    rec.add("loss", r.loss);
    if (lm) {
      // Bits per token; per byte where the tokens are bytes (other tokenisations would need the
      // text's byte count, which a token file does not hold).
      const double bits = r.loss / std::numbers::ln2;
      rec.add("ppl", std::exp(r.loss)).add(byte_tokens ? "bpb" : "bits_per_token", bits);
      std::fprintf(out, "eval  %*lld | loss %.4f | ppl %.2f | bits/%s %.4f | %lld tokens | %.1f s\n",
                   static_cast<int>(std::to_string(c.run.steps).size()), static_cast<long long>(step),
                   r.loss, std::exp(r.loss), byte_tokens ? "byte" : "token", bits, static_cast<long long>(r.count),
                   seconds_since(t0));
    } else {
      rec.add("accuracy", r.accuracy);
      std::fprintf(out, "eval  %*lld | loss %.4f | accuracy %.2f%% | %lld images | %.1f s\n",
                   static_cast<int>(std::to_string(c.run.steps).size()), static_cast<long long>(step),
                   r.loss, 100.0 * r.accuracy, static_cast<long long>(r.count), seconds_since(t0));
    }
    rec.add("count", r.count);
    metrics.write(rec);
    std::fflush(out);
    return r;
  }
};

void print_header(const Run& r, int64_t start, int64_t parameters) {
  const Config& c = r.c;
  std::fprintf(r.out, "pit-train: run %s (%s) on %s, compute %s\n", c.run.name.c_str(), c.source.c_str(),
               r.device.str().c_str(), dtype_name(r.compute));
  std::fprintf(r.out, "pit-train: model %s, %s parameters; %s lr %g, %s schedule, %lld steps%s\n",
               std::string(to_string(c.model.kind)).c_str(),
               format_rate(static_cast<double>(parameters)).c_str(), r.optimizer->type_name(),
               c.optim.lr, std::string(to_string(c.schedule.name)).c_str(), static_cast<long long>(c.run.steps),
               start > 0 ? (", resuming at step " + std::to_string(start)).c_str() : "");
  std::fprintf(r.out, "pit-train: data %s (%lld %s, %lld batches of %lld per epoch), valid %s (%lld)\n",
               c.data.train.c_str(), static_cast<long long>(r.train_data->size()),
               r.lm ? "windows" : "images", static_cast<long long>(r.train_data->batches_per_epoch()),
               static_cast<long long>(c.data.batch_size), c.data.valid.c_str(),
               static_cast<long long>(r.valid_data->size()));
  std::fprintf(r.out, "pit-train: metrics %s, checkpoints %s\n", c.metrics_file().c_str(),
               c.checkpoint_dir().c_str());
  if (!r.device.is_cuda()) {
    cpu::prepare_blas();
    const int n = num_threads(), blas_n = cpu::blas_threads();
    const std::string blas = blas_n == n ? "" : " (OpenBLAS " + std::to_string(blas_n) + ")";
    std::fprintf(r.out, "pit-train: CPU: %d thread%s%s, %s\n", n, n == 1 ? "" : "s", blas.c_str(),
                 cpu::blas_kernels().note.c_str());
  }
  // The PIT planner picks kernels from the GPU's measured cost table: say which one it has.
  if (r.device.is_cuda() && (c.sparse.method != SparseMethod::none || c.model.sparse_activation))
    std::fprintf(r.out, "pit-train: %s\n", sparse::device_cost_table(r.device.index).note.c_str());
  std::fflush(r.out);
}

// The output of ranks other than 0: nothing (a /dev/null stream, opened only for them).
class QuietOutput {
 public:
  explicit QuietOutput(bool lead) : sink_(lead ? nullptr : std::fopen("/dev/null", "w")) {}
  ~QuietOutput() {
    if (sink_) std::fclose(sink_);
  }
  QuietOutput(const QuietOutput&) = delete;
  QuietOutput& operator=(const QuietOutput&) = delete;
  std::FILE* sink() const { return sink_; }

 private:
  std::FILE* sink_;
};

// Each rank of a data-parallel run on GPUs binds the GPU of its local rank, and makes it its
// current device (else every rank opens a context on GPU 0 too).
Device data_parallel_device(Device device, const Communicator& comm) {
  if (comm.size() == 1 || !device.is_cuda()) return device;
  const int gpus = cuda_device_count();
  PIT_CHECK(comm.local_rank() < gpus, "rank ", comm.rank(), " is local rank ", comm.local_rank(), " but this node has ",
            gpus, " visible GPU(s); launch at most one process per GPU, and let every rank see all of the node's "
            "GPUs (srun --gpus-per-node, not --gpus-per-task: each rank binds the GPU of its local rank)");
  const Device mine = Device::cuda(comm.local_rank());
  use_device(mine);
  return mine;
}

// Whether `mine` holds on any rank.
bool any_rank(Communicator& comm, bool mine) {
  if (comm.size() == 1) return mine;
  Tensor flag = from_vector(std::vector<int64_t>{mine ? 1 : 0}, {1});
  comm.all_reduce(flag, ReduceOp::max);
  return flag.to_vector<int64_t>()[0] != 0;
}

// Whether every rank holds the same `value`.
bool same_on_every_rank(Communicator& comm, int64_t value) {
  if (comm.size() == 1) return true;
  Tensor v = from_vector(std::vector<int64_t>{value, -value}, {2});  // the max of both: the max and the min
  comm.all_reduce(v, ReduceOp::max);
  const std::vector<int64_t> r = v.to_vector<int64_t>();
  return r[0] == value && -r[1] == value;
}

// Whether any rank was asked to stop (SIGINT / SIGTERM), so that all stop after the same step.
bool stop_everywhere(Communicator& comm) { return any_rank(comm, g_stop.load()); }

// An evaluation or a checkpoint: work of unknown length (a whole validation set on the CPU, a
// large checkpoint on a slow disk) by rank 0 alone, or with sharded experts by every rank together
// (rank 0 then writes the gathered checkpoint alone). The ranks wait for each other afterwards
// without the collective timeout, which is for a rank that stopped or died, not for this work. An
// error in it reaches every rank: the rank that failed rethrows it, the others throw too (before,
// they waited for ever, or with sharded experts until the next step's collective timed out).
template <class Work>
void evaluate_or_save(Communicator& comm, bool every_rank, Work&& work) {
  if (comm.size() == 1) {
    work();
    return;
  }
  std::exception_ptr error;
  if (every_rank || comm.rank() == 0) {
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
  }
  const double limit = comm.timeout();
  comm.set_timeout(0);
  bool failed = false;
  try {
    failed = any_rank(comm, error != nullptr);
  } catch (...) {
    comm.set_timeout(limit);
    throw;
  }
  comm.set_timeout(limit);
  if (error) std::rethrow_exception(error);
  PIT_CHECK(!failed, every_rank ? "a rank" : "rank 0", " failed in an evaluation or a checkpoint (its error is in its "
            "output); this rank stops too");
}

// The key that chose the checkpoint folder, for advice to move it.
const char* checkpoint_folder_key(const Config& c) { return c.checkpoint.dir.empty() ? "run.out_dir" : "checkpoint.dir"; }

}  // namespace

void request_stop() { g_stop.store(true); }

TrainResult train(const Config& c, const TrainOptions& opt_in) {
  g_stop.store(false);  // a request from before this run (request_stop during set-up stands)
  if (c.run.threads > 0) set_num_threads(static_cast<int>(c.run.threads));
  Communicator& comm = opt_in.comm ? *opt_in.comm : world();
  const bool lead = comm.rank() == 0;  // prints, writes metrics and checkpoints, evaluates
  const QuietOutput quiet(lead);
  TrainOptions opt = opt_in;
  if (!lead) opt.out = quiet.sink();
  std::string device_note;
  const Device device = data_parallel_device(resolve_device(c, &device_note), comm);
  if (!device_note.empty()) std::fprintf(opt.out, "pit-train: %s\n", device_note.c_str());
  check_model_fits_device(c, device);
  const Layout layout = make_layout(c, comm);  // before the model, which keeps its communicators
  Run r{c, opt.out, device, resolve_compute_dtype(c, device, opt.out), nullptr, nullptr, nullptr, nullptr,
        std::nullopt, c.model.kind == ModelKind::transformer, lead};
  manual_seed(static_cast<uint64_t>(c.run.seed));  // the same model and dropout draws on every rank
  r.train_data = make_train_loader(c, comm.rank(), comm.size());
  r.valid_data = make_valid_loader(c);
  if (const auto* tokens = dynamic_cast<const data::TokenLoader*>(r.train_data.get()))
    r.byte_tokens = tokens->vocab_size() <= 256;
  nn::ModelOptions model = model_options(c, *r.train_data, r.compute);
  check_valid_fits(c, *r.valid_data, model);
  model.expert_comm = layout.expert_comm.get();
  r.model = nn::make_model(model);
  const bool sharded = layout.expert_comm != nullptr;  // then every rank evaluates and saves alike
  SparseStats sparsity(c, *r.model, &comm);  // sparse layers, before the move and the optimizer
  r.model->to(device);
  r.optimizer = make_optimizer(c, *r.model);
  const optim::LrSchedule schedule = make_schedule(c);
  r.scaler = make_loss_scaler(c, r.compute);

  // A fresh run into a folder that holds another run's checkpoints would mix with them: its
  // checkpoints of the same steps overwritten, its own pruned in favour of the other's higher
  // steps, and --resume then taking up the other run.
  if (!opt.resume) {
    const bool earlier = any_rank(comm, latest_checkpoint(c.checkpoint_dir()).found());
    PIT_CHECK(!earlier, "the checkpoint folder ", c.checkpoint_dir(), " holds checkpoints of an earlier run; continue "
              "it with --resume, start afresh in another folder (--set ", checkpoint_folder_key(c), "=DIR), or delete the folder");
  }
  // Evaluations and checkpoints: on rank 0 alone, or with sharded experts on every rank together.
  const auto evaluate_and_save = [&](auto&& work) { evaluate_or_save(comm, sharded, work); };
  // The folders the run writes, before any training: one it cannot write would lose the run at
  // its end (the last checkpoint is always saved).
  evaluate_and_save([&] {
    ensure_writable_dir(c.checkpoint_dir(), c.checkpoint.dir.empty() ? "run.out_dir" : "checkpoint.dir");
    const std::filesystem::path metrics_dir = std::filesystem::path(c.metrics_file()).parent_path();
    if (!metrics_dir.empty()) ensure_writable_dir(metrics_dir, c.metrics.file.empty() ? "run.out_dir" : "metrics.file");
  });
  int64_t step = 0;
  if (opt.resume) {
    std::string path = opt.resume_path;
    std::vector<std::filesystem::path> unusable;  // newer checkpoints skipped as unusable
    if (path.empty()) {
      LoadedCheckpoint latest = load_latest_checkpoint(c.checkpoint_dir());
      for (const std::string& p : latest.problems) std::fprintf(opt.out, "pit-train: skipping %s\n", p.c_str());
      PIT_CHECK(latest.found(), "--resume: no usable checkpoint in ", c.checkpoint_dir(),
                "; start without --resume, or give the checkpoint: --resume PATH");
      path = latest.path.string();
      unusable = std::move(latest.skipped);
      step = restore_run_state(latest.state, path, c, r.parts());
    } else {
      step = restore_run_state(load_checkpoint(path), path, c, r.parts());
    }
    // Every rank takes up the same step: a checkpoint folder that looks different from node to
    // node (a shared file system's cache) would have them train from different places, their
    // gradients averaged across the mismatch, until one waited in a collective for ever.
    PIT_CHECK(same_on_every_rank(comm, step), "--resume: the ranks resumed from different steps (rank ",
              comm.rank(), ": ", path, ", step ", step, "): the checkpoint folder ", c.checkpoint_dir(),
              " does not look the same from every node; give every rank the same checkpoint: --resume PATH");
    // Checkpoints after this step are another run's future (an older checkpoint given as PATH):
    // training on would prune them or be pruned in their favour, and a later --resume would take
    // up theirs. Newer ones skipped as unusable do not count (a save of their step replaces them).
    std::vector<std::filesystem::path> later = checkpoints_after(c.checkpoint_dir(), step);
    std::erase_if(later, [&](const std::filesystem::path& p) { return std::ranges::count(unusable, p) > 0; });
    if (any_rank(comm, !later.empty())) {
      std::string names;
      for (const auto& p : later) names += (names.empty() ? "" : ", ") + p.filename().string();
      PIT_THROW("--resume: the checkpoint folder ", c.checkpoint_dir(), " holds checkpoints after step ", step,
                names.empty() ? std::string() : " (" + names + ")",
                ": training on from step ", step, " there would mix two runs; delete those checkpoints, or "
                "resume into another folder (--set ", checkpoint_folder_key(c), "=DIR)");
    }
    std::fprintf(opt.out, "pit-train: resumed from %s at step %lld\n", path.c_str(), static_cast<long long>(step));
  }
  PIT_CHECK(step <= c.run.steps, "the checkpoint is at step ", step, " but run.steps is ", c.run.steps,
            "; raise run.steps to train further");
  MetricsLog metrics(lead ? c.metrics_file() : "", opt.resume ? step : -1);
  const std::vector<Variable> params = r.model->parameters();
  const ParameterSplit split = split_parameters(*r.model);
  int64_t parameters = r.model->num_parameters();  // this rank's; with sharded experts, every shard's
  for (const Variable& v : split.sharded) parameters += (layout.expert - 1) * v.numel();
  print_header(r, step, parameters);
  print_layout(opt.out, c, comm, layout);
  sparsity.print_header(opt.out);

  StopSignals signals;
  TrainResult result;
  // Data parallel: all-reduces buckets as backward finishes them. The experts' shards already sum
  // their group's tokens: summed over their replicas and divided by every rank.
  GradientAverager averager(split.replicated, comm);
  std::unique_ptr<GradientAverager> expert_averager;
  if (sharded)
    expert_averager = std::make_unique<GradientAverager>(split.sharded, *layout.replica_comm, int64_t{1} << 22, comm.size());
  const auto average = [&] {
    averager.finish();
    if (expert_averager) expert_averager->finish();
  };
  const int64_t units = c.data.batch_size * (r.lm ? c.data.seq_len : 1);  // tokens or images per step
  const int width = static_cast<int>(std::to_string(c.run.steps).size());
  Tensor loss_sum, grad_norm;  // on the device: read once per logging window
  int64_t window = 0, skipped = 0;
  int64_t window_losses = 0;    // the window's steps whose loss counts (an f16 overflow's does not)
  int64_t skipped_in_a_row = 0;  // f16 steps skipped one after the other
  // A diverged run stops with an error rather than train on NaN weights (and save them over the
  // last good checkpoints): a non-finite loss or gradient norm of a step that updated the weights.
  const auto check_finite = [&](int64_t at, double mean_loss, double gn) {
    const bool loss_bad = window_losses > 0 && !std::isfinite(mean_loss), norm_bad = grad_norm.defined() && !std::isfinite(gn);
    if (!loss_bad && !norm_bad) return;
    PIT_THROW("the run diverged: at step ", at, " the ", loss_bad ? "training loss" : "gradient norm", " is ",
              loss_bad ? mean_loss : gn, "; nothing after the last checkpoint is saved. Lower optim.lr, "
              "set optim.grad_clip (or a longer warm-up), and train again or --resume from an earlier checkpoint",
              r.scaler ? "" : " (f16 with a loss scaler skips overflowing steps; bf16 has f32's range)");
  };
  auto window_start = std::chrono::steady_clock::now();
  const auto run_start = window_start;
  const int64_t first_step = step;
  MoeStats moe(*r.model, &comm);  // the MoE layers' losses and metrics, of the global batch (inactive for a dense model)

  bool stopped = false;  // by a signal on any rank, after the same step on every rank
  discard_comm_times(comm, layout);  // the set-up's collectives (a resume's checks) are no step's
  while (step < c.run.steps && !stopped) {
    const double lr = schedule.lr_at(step);
    const data::Batch b = r.train_data->next();
    sparsity.before_step(step);
    const Variable loss = training_loss((*r.model)(Variable(b.inputs.to(device))), b.targets.to(device));
    const Variable objective = moe.objective(loss, c.model.aux_loss_coef, c.model.z_loss_coef);
    bool overflow = false;
    if (r.scaler) {
      r.scaler->scale_loss(objective).backward();
      average();  // an overflow on any rank reaches every replicated gradient
      overflow = r.scaler->unscale_and_check(params);
      if (sharded) overflow = any_rank(comm, overflow);  // and one in an expert shard, every rank
    } else {
      objective.backward();
      average();
    }
    if (!overflow) {
      if (c.optim.grad_clip > 0) {
        grad_norm = sharded ? global_grad_norm(split) : optim::grad_norm(params);  // the same on every rank
        optim::clip_grads_to_norm(params, grad_norm, c.optim.grad_clip);
      } else {
        grad_norm = Tensor();
      }
      r.optimizer->step(lr);
    } else {
      ++skipped;
    }
    if (r.scaler) r.scaler->update(overflow);
    skipped_in_a_row = overflow ? skipped_in_a_row + 1 : 0;
    PIT_CHECK(skipped_in_a_row < kMaxSkippedInARow, "the run diverged: the last ", skipped_in_a_row, " steps (to step ",
              step, ") all overflowed in f16 and were skipped (loss scale now ", r.scaler ? r.scaler->scale() : 0.0,
              "); the model's values no longer fit f16. Lower optim.lr or use precision.compute: bf16, and --resume "
              "from an earlier checkpoint");
    sparsity.after_step(step, *r.optimizer, overflow);  // mask updates, with the step's gradients (RigL: finite ones)
    r.optimizer->zero_grad();
    if (!overflow) {  // a skipped step's loss (inf or NaN from the overflow) trained nothing
      const Tensor l = loss.data().to(DType::f32);
      loss_sum = loss_sum.defined() ? kernels::binary(BinaryOp::add, loss_sum, l) : l.clone();
      ++window_losses;
    }
    ++step;
    ++window;

    stopped = stop_everywhere(comm);
    const bool last = step == c.run.steps || stopped;
    if (step % c.run.log_every == 0 || last) {
      // The global batch's loss over the steps that trained (the same on every rank: an overflow
      // skips a step everywhere). A window of skipped steps only has none.
      if (!loss_sum.defined()) loss_sum = zeros({}, DType::f32, device);
      if (comm.size() > 1) comm.all_reduce(loss_sum, ReduceOp::mean);
      const double mean_loss = window_losses > 0 ? loss_sum.item<double>() / static_cast<double>(window_losses) : NAN;
      const double dt = seconds_since(window_start);
      const double step_s = dt / static_cast<double>(window);
      const double rate = static_cast<double>(units * window) / dt;
      const double eta = step_s * static_cast<double>(c.run.steps - step);
      const double mem = memory_in_use(device);
      const double gn = grad_norm.defined() ? grad_norm.item<double>() : NAN;
      check_finite(step, mean_loss, gn);
      MetricsRecord rec(step, "train");
      rec.add("loss", mean_loss).add("lr", lr).add("grad_norm", gn);
      const std::string moe_text = moe.flush(rec, window) + sparsity.flush(rec);  // MoE losses, sparsity
      const std::string comm_text = comm_report(rec, comm, layout, window);
      char gnorm[32] = "gnorm -";  // no clipping: no norm computed
      if (grad_norm.defined()) std::snprintf(gnorm, sizeof gnorm, "gnorm %.3g", gn);  // 0.314, 1.77e+09, 1.2e-05
      std::fprintf(opt.out, "step %*lld/%lld | loss %.4f%s | lr %.2e | %s | %s %s/s | %.1f ms/step%s | mem %s | ETA %s\n",
                   width, static_cast<long long>(step), static_cast<long long>(c.run.steps), mean_loss, moe_text.c_str(), lr,
                   gnorm,
                   format_rate(rate).c_str(), r.lm ? "tok" : "img", 1e3 * step_s, comm_text.c_str(),
                   format_bytes(mem).c_str(), format_duration(eta).c_str());
      std::fflush(opt.out);
      rec.add(r.lm ? "tokens_per_s" : "samples_per_s", rate).add("step_ms", 1e3 * step_s);
      rec.add("memory_mb", mem / (1 << 20)).add("eta_s", eta);
      if (r.scaler) rec.add("loss_scale", r.scaler->scale()).add("skipped_steps", skipped);
      metrics.write(rec);
      result.last_train_loss = mean_loss;
      loss_sum = Tensor();
      window = 0;
      window_losses = 0;
      window_start = std::chrono::steady_clock::now();
    }
    // Evaluations and checkpoints are left out of the throughput window.
    const auto pause_start = std::chrono::steady_clock::now();
    const bool eval_now = !last && c.run.eval_every > 0 && step % c.run.eval_every == 0;
    const bool save_now = !last && c.checkpoint.every > 0 && step % c.checkpoint.every == 0;
    if (save_now && window_losses > 0) {  // the steps since the last line: finite before they are saved
      Tensor s = loss_sum.clone();
      if (comm.size() > 1) comm.all_reduce(s, ReduceOp::mean);
      check_finite(step, s.item<double>() / static_cast<double>(window_losses),
                   grad_norm.defined() ? grad_norm.item<double>() : NAN);
    }
    // The checkpoint first, so that an evaluation that fails loses no training.
    if (eval_now || save_now)
      evaluate_and_save([&] {
        if (save_now) result.checkpoint = r.save(step);
        if (eval_now) r.eval(step, c.run.eval_batches, metrics);
      });
    if (eval_now || save_now) discard_comm_times(comm, layout);  // their collectives are not the steps'
    window_start += std::chrono::steady_clock::now() - pause_start;
  }

  result.steps_done = step;
  result.interrupted = step < c.run.steps;
  // The last checkpoint, then (a whole run) the final evaluation over run.final_eval_batches
  // batches (0: the whole validation set): the checkpoint first, so that an evaluation that fails
  // loses no training. On rank 0 (sharded experts: every rank, together); the others learn the
  // evaluation's result. Two calls: with sharded experts, the other ranks wait for rank 0's write
  // without a timeout before the evaluation's collectives (with theirs) begin.
  Tensor e = zeros({2}, DType::f64);
  if (result.interrupted)
    std::fprintf(opt.out, "pit-train: stopped at step %lld; resume with --resume\n", static_cast<long long>(step));
  evaluate_and_save([&] {
    if (step > first_step) result.checkpoint = r.save(step);
  });
  if (!result.interrupted)
    evaluate_and_save([&] {
      // A resumed run that was complete already trained nothing: its final evaluation is in the
      // metrics file, so this one (for the result) is not written again, unless the file has none
      // there (that evaluation failed, or the run stopped at this step and run.steps was lowered to it).
      MetricsLog unwritten("", -1);
      const bool write = step > first_step || !metrics.kept_valid_at_end();
      const EvalResult er = r.eval(step, c.run.final_eval_batches, write ? metrics : unwritten);
      e = from_vector(std::vector<double>{er.loss, er.accuracy}, {2});
    });
  if (!result.interrupted) {
    comm.broadcast(e, 0);
    result.eval_loss = e.to_vector<double>()[0];
    result.eval_accuracy = e.to_vector<double>()[1];
  }
  std::fprintf(opt.out, "pit-train: %lld steps in %s\n", static_cast<long long>(step - first_step),
               format_duration(seconds_since(run_start)).c_str());
  return result;
}

}  // namespace pit::train
