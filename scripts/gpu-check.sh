#!/usr/bin/env bash
# GPU check, in one run on the GPU machine (no network, nothing installed):
# build build-gpu/ with CUDA and benchmarks, run every test with
# PIT_REQUIRE_GPU=1, summarise, run bench/run.sh if present. Logs go to outdir.
#
# Usage: scripts/gpu-check.sh [outdir] [extra cmake args...]
#          outdir: $1, else $OUT, else gpu-check-logs/ in the repository
#        scripts/gpu-check.sh --summary ctest.xml [--gpu]
#          only print the summary of a ctest JUnit file (e.g. one fetched back);
#          with --gpu, skipped tests count as failures as on the GPU machine.
# Env:   PIT_CUDA_ARCH (default 90a), PIT_JOBS (build jobs; default: the cores, at most one
#        per 2 GiB of available memory, scripts/lib/setup.sh),
#        PIT_SKIP_BENCH=1 (build and test only; run bench/run.sh OUTDIR later)
# Exit:  non-zero if the build or any test fails, or (GPU present) a test skipped.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

# junit_summary <ctest.xml> <gpu_present 0|1>: print the table; status 1 if
# the run must count as failed.
junit_summary() {
  python3 - "$1" "$2" <<'PY'
import sys
import xml.etree.ElementTree as ET

path, gpu_present = sys.argv[1], sys.argv[2] == "1"
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    print(f"pit: error: cannot read the JUnit file {path}: {e}")
    sys.exit(1)

def outcome(tc):
    status = (tc.get("status") or "").lower()
    if tc.find("failure") is not None or tc.find("error") is not None or status == "fail":
        return "failed"
    if status == "disabled":
        return "disabled"
    if tc.find("skipped") is not None or status == "notrun":
        return "skipped"
    # A gtest skip that ctest did not catch (no SKIP_REGULAR_EXPRESSION).
    if "[  SKIPPED ]" in (tc.findtext("system-out") or ""):
        return "skipped"
    return "passed"

def is_gpu(name):
    n = name.lower()
    return "cuda" in n or "gpu" in n

kinds = ("passed", "failed", "skipped", "disabled")
rows = {"all tests": dict.fromkeys(kinds, 0), "Cuda/Gpu tests": dict.fromkeys(kinds, 0)}
names = {k: [] for k in kinds}
for tc in root.iter("testcase"):
    name = tc.get("name") or tc.get("classname") or "?"
    o = outcome(tc)
    names[o].append(name)
    rows["all tests"][o] += 1
    if is_gpu(name) or is_gpu(tc.get("classname") or ""):
        rows["Cuda/Gpu tests"][o] += 1

print(f"pit: test summary ({path})")
print(f"  {'':16} {'total':>6} {'ran':>6} {'passed':>7} {'failed':>7} {'skipped':>8} {'disabled':>9}")
for label, r in rows.items():
    total = sum(r.values())
    ran = r["passed"] + r["failed"]
    print(f"  {label:16} {total:>6} {ran:>6} {r['passed']:>7} {r['failed']:>7} {r['skipped']:>8} {r['disabled']:>9}")

bad = False
total = sum(rows["all tests"].values())
if total == 0:
    print("pit: error: no tests in the JUnit file")
    bad = True
if names["failed"]:
    print(f"pit: FAILED tests ({len(names['failed'])}):")
    for n in names["failed"]:
        print(f"    {n}")
    bad = True
if names["skipped"]:
    print(f"pit: skipped tests ({len(names['skipped'])}):")
    for n in names["skipped"]:
        print(f"    {n}")
    if gpu_present:
        print("pit: error: a GPU is present, so no test may skip")
        bad = True
if names["disabled"]:
    print(f"pit: note: disabled tests (not counted as failures): {', '.join(names['disabled'])}")
sys.exit(1 if bad else 0)
PY
}

# run_logged <logfile> <command...>: run, show and append the output to the
# log; the status is the command's.
run_logged() {
  local log=$1
  shift
  printf '+ %s\n' "$*" | tee -a "$log"
  "$@" 2>&1 | tee -a "$log"
}

if [[ ${1:-} == --summary ]]; then
  [[ $# -ge 2 ]] || pit_die "usage: $0 --summary <ctest.xml> [--gpu]"
  xml=$2
  [[ $xml == /* ]] || xml=$caller_dir/$xml
  gpu=0
  if [[ ${3:-} == --gpu ]]; then gpu=1; fi
  junit_summary "$xml" "$gpu"
  exit
fi

PIT_START=$SECONDS
trap pit_on_exit EXIT

# A relative outdir given as $1 or $OUT is relative to where the script was
# called from; the default is gpu-check-logs/ in the repository root.
outdir=${1:-${OUT:-}}
if (($# > 0)); then shift; fi
if [[ -z $outdir ]]; then
  outdir="gpu-check-logs"
elif [[ $outdir != /* ]]; then
  outdir=$caller_dir/$outdir
fi
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd -P)
build_log=$outdir/build.log
: >"$build_log"
pit_log "logs go to $outdir"

# --- what this machine has (nothing gets installed here) ---------------------
pit_setup_path
pit_check_cmake || exit 1
command -v ninja >/dev/null 2>&1 || pit_die "ninja not found (the build uses the Ninja generator)"
command -v python3 >/dev/null 2>&1 || pit_die "python3 not found (needed for the test summary)"
command -v nvcc >/dev/null 2>&1 || pit_die "nvcc not found on PATH nor in /usr/local/cuda/bin: is the CUDA toolkit installed?"
command -v nvidia-smi >/dev/null 2>&1 || pit_die "nvidia-smi not found: this script is for a machine with an NVIDIA GPU and driver"
pit_has_gpu || pit_die "nvidia-smi -L lists no GPU: this script is for a machine with an NVIDIA GPU"

run_logged "$build_log" nvidia-smi -L
run_logged "$build_log" nvcc --version
run_logged "$build_log" cmake --version

# --- configure and build -------------------------------------------------------
arch=${PIT_CUDA_ARCH:-90a}
t0=$SECONDS
if ! run_logged "$build_log" pit_configure_build build-gpu \
  -DPIT_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DPIT_BUILD_BENCH=ON "$@"; then
  pit_err "configure/build failed; last lines of $build_log:"
  tail -n 40 "$build_log" >&2
  exit 1
fi
pit_log "configure+build took $((SECONDS - t0))s"

# --- tests ---------------------------------------------------------------------
t0=$SECONDS
test_rc=0
run_logged "$outdir/ctest.log" env PIT_REQUIRE_GPU=1 ctest --test-dir build-gpu \
  --output-on-failure -j 4 --timeout 600 --output-junit "$outdir/ctest.xml" || test_rc=$?
pit_log "tests took $((SECONDS - t0))s (ctest exit $test_rc)"

summary_rc=0
junit_summary "$outdir/ctest.xml" 1 2>&1 | tee "$outdir/summary.txt" || summary_rc=$?

# --- benchmarks (come with later issues) ---------------------------------------
bench_rc=0
if [[ ${PIT_SKIP_BENCH:-0} == 1 ]]; then
  pit_log "PIT_SKIP_BENCH=1: benchmarks skipped"
elif [[ -x bench/run.sh ]]; then
  t0=$SECONDS
  pit_log "running bench/run.sh $outdir"
  run_logged "$outdir/bench.log" bench/run.sh "$outdir" || bench_rc=$?
  pit_log "benchmarks took $((SECONDS - t0))s (exit $bench_rc)"
else
  pit_log "no bench/run.sh yet: benchmarks skipped"
fi

if ((test_rc != 0 || summary_rc != 0 || bench_rc != 0)); then
  pit_err "GPU check failed (ctest exit $test_rc, summary exit $summary_rc, bench exit $bench_rc)"
  exit 1
fi
pit_log "GPU check passed"
