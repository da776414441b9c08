#!/usr/bin/env bash
# Benchmarks for scripts/gpu-check.sh: pit-bench and its PyTorch peers, logs and Markdown tables
# into the folder given as $1.
set -euo pipefail
out=${1:?usage: bench/run.sh OUTDIR}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=build-gpu/pit-bench
[[ -x $bin ]] || { echo "bench/run.sh: $bin not built (configure with -DPIT_BUILD_BENCH=ON)" >&2; exit 1; }
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader || true
echo "== pit-bench dense"
$bin dense --markdown "$out/dense_ops.md"
echo "== pit-bench pit"
$bin pit --markdown "$out/pit_gemm.md"
echo "== pit-bench engine"
$bin engine --markdown "$out/engine.md"
echo "== pit-bench moe"
$bin moe --markdown "$out/moe.md"
echo "== pit-bench sparse"
$bin sparse --markdown "$out/sparse.md"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  echo "== PyTorch peers"
  PYTHONUNBUFFERED=1 python3 bench/torch_dense_ops.py --markdown "$out/torch_dense_ops.md"
  PYTHONUNBUFFERED=1 python3 bench/torch_moe.py --markdown "$out/torch_moe.md"
else
  echo "bench/run.sh: PyTorch with CUDA not available: peer skipped"
fi
echo "== training throughput (pit-train vs PyTorch eager)"
if [[ -f data/brown/brown_train.h5 ]] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  bench/train_throughput.sh "$out"
else
  echo "bench/run.sh: data/brown or PyTorch with CUDA missing: training throughput skipped"
fi
