"""GPU timing for the PyTorch peer scripts in bench/, the same way pit-bench times (bench/timer.h):
CUDA events around each run after warm-up, the median of many runs."""
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
