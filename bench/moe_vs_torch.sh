#!/usr/bin/env bash
# Issue #7's comparison with its run-to-run spread: `pit-bench moe` and `bench/torch_moe.py
# --peers grouped_mm,dense` in turns, ROUNDS times on the same GPU (torch's grouped_mm
# forward + backward moved by up to 3% from run to run on an H100: top-2 uniform 4.749-4.898 ms
# in six runs of one session), logs into OUTDIR, then bench/moe_ratio.py's table:
# per routing case, each round's pit / grouped_mm and pit / dense FFN, and their ranges.
# Usage: bench/moe_vs_torch.sh OUTDIR [ROUNDS]   (after scripts/gpu-check.sh built build-gpu/)
set -euo pipefail
out=${1:?usage: bench/moe_vs_torch.sh OUTDIR [ROUNDS]}
rounds=${2:-3}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench/moe_vs_torch.sh: ROUNDS must be a positive integer, got '$rounds'" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=build-gpu/pit-bench
[[ -x $bin ]] || { echo "bench/moe_vs_torch.sh: $bin not built (configure with -DPIT_BUILD_BENCH=ON)" >&2; exit 1; }
python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null ||
  { echo "bench/moe_vs_torch.sh: PyTorch with CUDA not available" >&2; exit 1; }
mkdir -p "$out"
# The table needs every row: none of pit-bench moe's trace or parts modes.
unset PIT_BENCH_MOE_TRACE PIT_BENCH_MOE_PARTS
logs=()
for ((i = 1; i <= rounds; ++i)); do
  echo "== round $i of $rounds: pit-bench moe, then bench/torch_moe.py"
  # The same routing on both sides: pit-bench writes its expert ids, torch_moe.py reads them.
  PIT_BENCH_MOE_ROUTING_OUT="$out" $bin moe >"$out/pit_moe_$i.log"
  PYTHONUNBUFFERED=1 python3 bench/torch_moe.py --peers grouped_mm,dense --routing "$out" >"$out/torch_moe_$i.log"
  logs+=("$out/pit_moe_$i.log" "$out/torch_moe_$i.log")
done
python3 bench/moe_ratio.py "${logs[@]}" | tee "$out/moe_vs_torch.txt"
