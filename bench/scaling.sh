#!/usr/bin/env bash
# Weak scaling of pit-train's MoE LM over GPUs (issue #8): configs/moe.yaml on 1, 2, 4, ... ranks
# (mpirun, one process per GPU) with expert + data parallelism, the experts per GPU and the batch
# per GPU held fixed (model.experts = E x N, data.batch_size = B x N, parallel.expert = N).
# Prints a Markdown table: tokens/s in all and per GPU, the efficiency against one GPU, the step
# time and its time in collectives (all_to_all apart); then, for the largest N, the losses of the
# first logged steps against one GPU with the same global batch and experts (same seed).
#
# Usage: bench/scaling.sh OUTDIR [--set key=value ...]
# Env:   PIT_SCALING_RANKS   the rank counts (default "1 2 4", capped by the GPUs present)
#        PIT_SCALING_STEPS   steps per run (default 300; the first 50 are warm-up, not measured)
#        PIT_SCALING_EXPERTS experts per GPU (default 8), PIT_SCALING_BATCH sequences per GPU (32)
#        PIT_TRAIN           the binary (default build-gpu/pit-train, else build/pit-train)
set -euo pipefail
out=${1:?usage: bench/scaling.sh OUTDIR [--set key=value ...]}
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${PIT_TRAIN:-build-gpu/pit-train}
[[ -x $bin ]] || bin=build/pit-train
[[ -x $bin ]] || { echo "bench/scaling.sh: no pit-train (build it first)" >&2; exit 1; }
[[ -f data/brown/brown_train.h5 ]] || { echo "bench/scaling.sh: data/brown missing: run scripts/get_data.sh" >&2; exit 1; }
ranks=${PIT_SCALING_RANKS:-1 2 4}
[[ ${ranks%% *} == 1 ]] || echo "bench/scaling.sh: the first rank count is ${ranks%% *}, not 1: efficiencies are against it" >&2
steps=${PIT_SCALING_STEPS:-300}
experts=${PIT_SCALING_EXPERTS:-8}
batch=${PIT_SCALING_BATCH:-32}
gpus=$(nvidia-smi -L 2>/dev/null | grep -c GPU || true)
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export NCCL_NVLS_ENABLE=0  # NVLink multicast stays off on the GPU machines (../shared/GPU.md)

# run NAME N EXPERTS BATCH: pit-train on N ranks; its metrics go to $out/NAME.jsonl.
run() {
  local name=$1 n=$2 e=$3 b=$4
  shift 4
  echo "== $name: $n rank(s), $e experts, batch $b" >&2
  mpirun -np "$n" --oversubscribe "$bin" --config configs/moe.yaml --set run.steps="$steps" --set run.log_every=25 \
    --set run.eval_every=0 --set run.final_eval_batches=4 --set checkpoint.every=0 --set schedule.warmup_steps=20 \
    --set model.experts="$e" --set data.batch_size="$b" --set parallel.expert="$n" \
    --set run.out_dir="$out/$name" --set metrics.file="$out/$name.jsonl" "$@" > "$out/$name.log" 2>&1 ||
    { tail -20 "$out/$name.log" >&2; exit 1; }
}

names=()
for n in $ranks; do
  if (( gpus > 0 && n > gpus )); then echo "bench/scaling.sh: $n ranks but $gpus GPU(s): skipped" >&2; continue; fi
  run "weak_$n" "$n" $((experts * n)) $((batch * n)) "$@"
  names+=("weak_$n")
done
(( ${#names[@]} > 0 )) || { echo "bench/scaling.sh: every rank count was skipped (ranks: $ranks, GPUs: $gpus)" >&2; exit 1; }
largest=${names[-1]#weak_}

python3 - "$out" "$largest" "${names[@]}" <<'PY'
import json, sys
out, largest, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def train_records(name):
    return [r for r in map(json.loads, open(f"{out}/{name}.jsonl")) if r.get("split") == "train"]

rows, base = [], None
for name in names:
    n = int(name.split("_")[1])
    recs = [r for r in train_records(name) if r["step"] > 50]  # past the warm-up
    tok = sum(r["tokens_per_s"] for r in recs) / len(recs)
    step = sum(r["step_ms"] for r in recs) / len(recs)
    comm = sum(r.get("comm_ms", 0) for r in recs) / len(recs)
    a2a = sum(r.get("comm_ms/all_to_all", 0) for r in recs) / len(recs)
    base = base or tok / n
    rows.append(f"| {n} | {tok:,.0f} | {tok / n:,.0f} | {100 * tok / n / base:.1f}% | {step:.1f} | {comm:.1f} | "
                f"{a2a:.1f} ({100 * a2a / step:.1f}%) |")
print("| GPUs | tokens/s | tokens/s per GPU | weak-scaling efficiency | ms/step | comm ms/step | all_to_all ms/step (share) |")
print("|---:|---:|---:|---:|---:|---:|---:|")
print("\n".join(rows))
PY
if (( largest > 1 )); then
  # The same global batch and experts on one rank and on $largest: the first losses must agree.
  # No dropout: the ranks would draw other masks than one process.
  same=(--set run.steps=50 --set run.log_every=5 --set model.dropout=0)
  run "same_1" 1 $((experts * largest)) $((batch * largest)) "$@" "${same[@]}"
  run "same_$largest" "$largest" $((experts * largest)) $((batch * largest)) "$@" "${same[@]}"
  python3 - "$out" "$largest" <<'PY'
import json, sys
out, n = sys.argv[1], sys.argv[2]
def losses(name):
    return {r["step"]: r["loss"] for r in map(json.loads, open(f"{out}/{name}.jsonl")) if r.get("split") == "train"}
one, many = losses("same_1"), losses(f"same_{n}")
print(f"\nLosses, one GPU against {n} (same global batch and experts):\n")
print(f"| step | 1 GPU | {n} GPUs | difference |\n|---:|---:|---:|---:|")
for s in sorted(one):
    if s in many:
        print(f"| {s} | {one[s]:.4f} | {many[s]:.4f} | {many[s] - one[s]:+.4f} |")
PY
fi
