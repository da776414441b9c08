#include "trainer/train/run_state.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/random.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/train/shards.h"

namespace pit::train {
namespace {

// The keys a resumed run must share with its checkpoint: those that shape the model's state (the
// sparse layers' masks included) or the data's position. The rest (steps, learning rate, schedules,
// logging) may change on resume.
constexpr const char* kResumeKeys[] = {"model.",        "data.kind",      "data.batch_size",        "data.seq_len",
                                       "sparse.method", "sparse.layers",  "sparse.unit",            "sparse.sparsity",
                                       "sparse.budget", "sparse.dense_first_last",
                                       // the data order and dropout come from the checkpoint, SET/RigL's
                                       // regrowth from the seed: a new one would apply by halves
                                       "run.seed"};

// The keys of kResumeKeys whose values differ between this run's config (`now`) and the
// checkpoint's (`then`), each "key: V there, W now"; and in `restore` the --set arguments that
// give this run the checkpoint's values.
std::string differing_keys(const std::string& now, const std::string& then, std::string& restore) {
  // resolved_yaml has one "key: value" per line, sections as "section:" lines: section-qualified
  // keys and their values as written.
  const auto entries = [](const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line, section;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const size_t colon = line.find(':');
      if (line[0] != ' ') {
        section = line.substr(0, colon);
        continue;
      }
      if (colon == std::string::npos) continue;
      const size_t key = line.find_first_not_of(' '), value = line.find_first_not_of(' ', colon + 1);
      out[section + "." + line.substr(key, colon - key)] = value == std::string::npos ? "" : line.substr(value);
    }
    return out;
  };
  const std::map<std::string, std::string> a = entries(now), b = entries(then);
  std::string out;
  restore.clear();
  for (const auto& [key, value] : a) {
    if (std::none_of(std::begin(kResumeKeys), std::end(kResumeKeys), [&](const char* k) { return key.starts_with(k); }))
      continue;
    const auto it = b.find(key);
    if (it != b.end() && it->second == value) continue;
    out += (out.empty() ? "" : "; ") + key + ": " + (it == b.end() ? "not in it" : it->second + " there") + ", " +
           value + " now";
    if (it != b.end()) restore += " --set '" + key + "=" + it->second + "'";
  }
  return out;
}

// SET and RigL drop a fraction that decays to 0 at sparse.update_end, by default (0) 3/4 of
// run.steps: a resume that raises run.steps (as the trainer says to, to train further) would move
// the schedule's end, and the fraction would jump at the resume. Refused, with the value to pin,
// unless the resume is past both ends (no update either way).
void check_drop_schedule(const Config& config, const std::string& saved_yaml, int64_t step, const std::string& path) {
  if (config.sparse.method != SparseMethod::set && config.sparse.method != SparseMethod::rigl) return;
  int64_t then = 0;
  try {
    then = config_from_yaml(saved_yaml, path + " (its config)").sparse_update_end();
  } catch (const Error&) {
    return;  // a config this version cannot read (keys since renamed): nothing to compare with
  }
  const int64_t now = config.sparse_update_end();
  PIT_CHECK(then == now || (step >= then && step >= now), "checkpoint ", path, " drops and regrows until step ", then,
            config.sparse.update_end == 0 ? " (sparse.update_end 0: 3/4 of its run.steps)" : "",
            ", this run until step ", now, config.sparse.update_end == 0 ? " (3/4 of this run.steps)" : "",
            ": the drop fraction would jump at the resume. Keep the schedule with --set sparse.update_end=", then,
            " (SET and RigL keep their drop schedule across a resume)");
}

}  // namespace

StateDict collect_run_state(int64_t step, const Config& config, const RunParts& p) {
  StateDict s;
  s.merge("model", p.model.state_dict());
  s.merge("optim", p.optimizer.state_dict());
  if (p.scaler) s.merge("scaler", p.scaler->state_dict());
  s.merge("data", p.train_data.state());
  s.ints["step"] = step;
  s.ints["rng/seed"] = static_cast<int64_t>(default_generator().seed());
  s.ints["rng/offset"] = static_cast<int64_t>(default_generator().offset());
  s.strings["config"] = config.resolved_yaml;
  s.strings["optimizer"] = p.optimizer.type_name();
  gather_shards(s, p.model.sharded_parameters());  // expert shards: the whole, on every rank
  return s;
}

int64_t restore_run_state(const StateDict& whole, const std::string& path, const Config& config,
                          const RunParts& p) {
  StateDict s = whole;
  take_shards(s, p.model.sharded_parameters(), path);  // expert shards: this rank's rows
  for (const char* key : {"step", "rng/seed", "rng/offset"})
    PIT_CHECK(s.ints.count(key) == 1, "checkpoint ", path, " holds no pit-train run state (no ", key,
              "); resume from a checkpoint that pit-train wrote");
  PIT_CHECK(s.strings.count("config") == 1, "checkpoint ", path,
            " holds no pit-train run state (no config); resume from a checkpoint that pit-train wrote");
  std::string restore;
  const std::string diff = differing_keys(config.resolved_yaml, s.strings.at("config"), restore);
  PIT_CHECK(diff.empty(), "checkpoint ", path, " was written with other model, data or sparse settings (", diff,
            "); resume with its settings", restore.empty() ? "" : " (" + restore.substr(1) + ")",
            ", or start a new run in another run.out_dir. A checkpoint written on a GPU and resumed on a CPU (or "
            "the reverse) differs by the config's run.cpu_overrides, which apply on the CPU only");
  check_drop_schedule(config, s.strings.at("config"), s.ints.at("step"), path);
  const std::string optimizer = s.strings.count("optimizer") ? s.strings.at("optimizer") : "";
  PIT_CHECK(optimizer == p.optimizer.type_name(), "checkpoint ", path, " holds ", optimizer,
            " state but optim.name selects ", p.optimizer.type_name(),
            "; resume with the optimizer it was written with");
  const StateDict model = s.sub("model");
  StateDict expected = p.model.state_dict();
  for (const auto& [name, shape] : p.model.layout_shapes(model)) {  // sparse layers: laid out by their masks
    const auto it = expected.tensors.find(name);
    if (it != expected.tensors.end()) it->second = Tensor::empty(shape, it->second.dtype());
  }
  check_compatible(expected, model);
  p.model.load_state_dict(model);
  p.optimizer.load_state_dict(s.sub("optim"));
  if (p.scaler) {
    const StateDict scaler = s.sub("scaler");
    // A run switched to f16 from another precision starts its scaler afresh.
    if (!scaler.reals.empty()) p.scaler->load_state_dict(scaler);
  }
  p.train_data.load_state(s.sub("data"));
  default_generator().manual_seed(static_cast<uint64_t>(s.ints.at("rng/seed")));
  default_generator().set_offset(static_cast<uint64_t>(s.ints.at("rng/offset")));
  return s.ints.at("step");
}

}  // namespace pit::train
