#!/usr/bin/env bash
# Profiles the kernels behind the open performance targets (docs/BENCHMARKS.md) on the GPU
# machine, after scripts/gpu-check.sh has built build-gpu/: Nsight Compute sections for one
# launch of each kernel, where its warps stall instruction by instruction (Nsight Compute's SASS
# source page, summarised by bench/ncu_stalls.py), and the register spills of the PIT GEMM
# kernels from their SASS. Writes NAME.txt (sections), NAME.sass.csv and NAME.stalls.txt per
# kernel into OUTDIR and prints a short summary.
#
# Usage: [MOE_TRACE=2] bench/profile.sh OUTDIR [NAME...]   (NAMEs: only those entries, e.g. layernorm_bwd moe_dw1)
set -uo pipefail
out=${1:?usage: bench/profile.sh OUTDIR [NAME...]}
shift
only=" $* "
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
mkdir -p "$out"
bin=build-gpu/pit-bench
[[ -x $bin ]] || { echo "bench/profile.sh: $bin not built (run scripts/gpu-check.sh first)" >&2; exit 1; }
command -v ncu >/dev/null 2>&1 || { echo "bench/profile.sh: ncu (Nsight Compute) not found" >&2; exit 1; }

sections=(--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats
          --section SchedulerStats --section MemoryWorkloadAnalysis)

# profile NAME KERNEL_REGEX FILTER SUITE [SKIP]: one launch (after SKIP, default two) of the kernels
# whose base name matches KERNEL_REGEX, while pit-bench SUITE runs with PIT_BENCH_FILTER=FILTER.
profile() {
  local name=$1 regex=$2 filter=$3 suite=$4 skip=${5:-2}
  [[ $only == "  " || $only == *" $name "* ]] || return 0
  echo "== $name"
  PIT_BENCH_FILTER="$filter" timeout 300 ncu --clock-control none -k "regex:$regex" -s "$skip" -c 1 \
    "${sections[@]}" "$bin" "$suite" >"$out/$name.txt" 2>&1
  grep -E "^  [a-z_ ]*void|Duration|Memory Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Warp Cycles Per Issued|Issued Ipc" \
    "$out/$name.txt" | head -12
  # The same launch's warp-stall samples per SASS instruction.
  PIT_BENCH_FILTER="$filter" timeout 300 ncu --clock-control none -k "regex:$regex" -s "$skip" -c 1 \
    --section SourceCounters -f -o "$out/$name" "$bin" "$suite" >/dev/null 2>&1 &&
    ncu -i "$out/$name.ncu-rep" --page source --print-source sass --csv >"$out/$name.sass.csv" 2>&1 &&
    python3 bench/ncu_stalls.py "$out/$name.sass.csv" --top 12 >"$out/$name.stalls.txt" 2>&1 &&
    sed -n '1,6p' "$out/$name.stalls.txt"
}

profile condense_128x1_90 '^condense_kernel' "4096^3 128x1 90%" pit
profile condense_32x1_90 '^condense_kernel' "4096^3 32x1 90%" pit
profile gather_rows_90 '^gather_gemm_kernel' "4096^3 1xK rows 90%" pit
profile gather_1x64_90 '^gather_gemm_kernel' "4096^3 1x64 90%" pit
profile detect_k_lists_90 '^detect_tiles_kernel' "4096^3 128x1 90%" pit
profile planner_counts '^count_candidates_kernel' "4096^3 128x1 90%" pit
profile layernorm_fwd '^cached_forward_kernel' "" dense
profile layernorm_bwd '^(cached_backward_kernel|bulk_backward_kernel|fused_backward_kernel|finish_kernel|param_partial_kernel)' "" dense
# MoE (issue #7), top-1 uniform (MOE_TRACE=2: top-2 uniform), one forward + backward pass at a
# time (PIT_BENCH_MOE_TRACE): a pass launches the M-gather four times (up, down, gu, dx) and the
# weight gradient twice (dW2, dW1); the second pass's up, down and gu GEMMs and dW1.
trace=${MOE_TRACE:-1}
PIT_BENCH_MOE_TRACE=$trace profile moe_up_gemm '^gather_(ws|wide)_kernel' "" moe 4
PIT_BENCH_MOE_TRACE=$trace profile moe_down_gemm '^gather_(ws|wide)_kernel' "" moe 5
PIT_BENCH_MOE_TRACE=$trace profile moe_gu_gemm '^gather_(ws|wide)_kernel' "" moe 6
PIT_BENCH_MOE_TRACE=$trace profile moe_dw1 '^weight_grad_(lean_|wide_)?kernel' "" moe 3

# Register spills (local-memory loads and stores) per kernel of the PIT GEMM objects.
[[ $only == "  " || $only == *" spills "* ]] || exit 0
echo "== spills (STL/LDL instructions per kernel)"
for obj in build-gpu/ops/CMakeFiles/pit_ops.dir/pit/cuda/{gather_gemm,gather_ws,condense_gemm,weight_grad,weight_grad_lean,weight_grad_wide,weight_grad_ws}.cu.o; do
  [[ -f $obj ]] || continue
  cuobjdump -sass "$obj" >"$out/$(basename "$obj" .cu.o).sass" 2>&1
  awk '/Function :/ { if (name != "") print n, name; name = $3; n = 0 } /STL|LDL/ { n++ }
       END { if (name != "") print n, name }' "$out/$(basename "$obj" .cu.o).sass" |
    c++filt | sed -E 's/\(.*//' | sort -rn | head -8
done
