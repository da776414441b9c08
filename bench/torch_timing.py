"""Shared by the PyTorch peer scripts in bench/: GPU timing the way pit-bench times (bench/timer.h:
CUDA events around each run after warm-up, the median of many runs) and the Markdown table they
write for docs/BENCHMARKS.md."""
import statistics

import torch


def time_gpu(fn, warmup=5, runs=50):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in events)


def write_markdown(path, title, header, rows):
    """A '### title' table: header is the column names (a column whose name ends in 'ms' is right
    aligned), rows are tuples; floats are written with 4 decimals."""
    with open(path, "w") as f:
        f.write(f"### {title}\n\n| {' | '.join(header)} |\n")
        f.write("|" + "|".join("---:" if h.endswith("ms") else "---" for h in header) + "|\n")
        for row in rows:
            f.write("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |\n")
