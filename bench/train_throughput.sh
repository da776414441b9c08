#!/usr/bin/env bash
# Training throughput of configs/moe.yaml's transformer LM with dense FFNs (`model.experts=0`: the
# PyTorch peer has no MoE) on the GPU: pit-train against the same model in PyTorch eager
# (bench/torch_train.py), same shapes, precision, dropout, AdamW and clipping. pit-train trains on the Brown corpus (data/brown, scripts/get_data.sh); PyTorch on
# random bytes (throughput does not depend on the values).
# Usage: bench/train_throughput.sh OUTDIR [pit-train binary]
set -euo pipefail
out=${1:?usage: bench/train_throughput.sh OUTDIR [pit-train]}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${2:-build-gpu/pit-train}
steps=${PIT_THROUGHPUT_STEPS:-300}
(( steps >= 3 && steps % 3 == 0 )) ||
  { echo "train_throughput.sh: PIT_THROUGHPUT_STEPS must be a multiple of 3 (three equal windows), got $steps" >&2; exit 2; }
[[ -x $bin ]] || { echo "train_throughput.sh: $bin not built" >&2; exit 1; }
[[ -f data/brown/brown_train.h5 ]] || { echo "train_throughput.sh: data/brown missing (run scripts/get_data.sh)" >&2; exit 1; }

# The model's shape, read from the config as pit-train resolves it.
dense=(--set model.experts=0)
resolved=$("$bin" --config configs/moe.yaml "${dense[@]}" --print-config)
key() { awk -v s="$1" -v k="$2" '/^[a-z_]+:/{sec=$1} sec==s":" && $1==k":"{print $2; exit}' <<<"$resolved"; }
d=$(key model d_model) layers=$(key model n_layers) heads=$(key model n_heads) dff=$(key model d_ff)
seq=$(key data seq_len) batch=$(key data batch_size) dropout=$(key model dropout) vocab=$(key model vocab_size)
echo "model: d_model $d, $layers layers, $heads heads, d_ff $dff, batch $batch x $seq, dropout $dropout"

# pit-train: the throughput of the last logging window (steps 2/3..end: after warm-up), read from
# its metrics file; a fresh run folder each time (a kept checkpoint would stop a second run).
log=$out/train_throughput_pit.log
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/pit_throughput.XXXXXX")
trap 'rm -rf "$run_dir"' EXIT
"$bin" --config configs/moe.yaml "${dense[@]}" --set run.steps="$steps" --set run.log_every=$((steps / 3)) \
  --set run.eval_every=0 --set run.final_eval_batches=2 --set schedule.warmup_steps=10 \
  --set run.out_dir="$run_dir" --set metrics.file="$run_dir/metrics.jsonl" | tee "$log"
read -r pit_tps pit_ms < <(python3 - "$run_dir/metrics.jsonl" <<'PY'
import json, sys
last = [r for r in map(json.loads, open(sys.argv[1])) if r.get("split") == "train"][-1]
print(last["tokens_per_s"] / 1e3, last["step_ms"])
PY
)
echo "pit-train: ${pit_tps}k tokens/s, ${pit_ms} ms/step"

torch_line=$(python3 bench/torch_train.py --vocab "$vocab" --d-model "$d" --layers "$layers" --heads "$heads" --d-ff "$dff" \
  --seq "$seq" --batch "$batch" --dropout "$dropout" --steps 100 --warmup 20 --compute bf16)
echo "$torch_line"
torch_tps=$(sed -E 's/.*: ([0-9,]+) tokens\/s.*/\1/' <<<"$torch_line" | tr -d ,)
python3 - "$pit_tps" "$pit_ms" "$torch_tps" "$torch_line" "$out/train_throughput.md" <<'PY'
import sys
pit_k, pit_ms, torch_tps, torch_line, md = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
pit = pit_k * 1e3
with open(md, "w") as f:
    f.write("| trainer | tokens/s | ms/step | vs PyTorch |\n|---|---|---|---|\n")
    f.write(f"| pit-train | {pit:,.0f} | {pit_ms:.2f} | {pit / torch_tps:.2f}x |\n")
    f.write(f"| PyTorch eager | {torch_tps:,.0f} | | 1.00x |\n\n{torch_line}\n")
print(open(md).read())
PY
