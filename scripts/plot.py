#!/usr/bin/env python3
"""Turn pit-train's metrics (JSON lines) into PNG curves.

    scripts/plot.py runs/moe/metrics.jsonl [-o runs/moe/curves.png] [--title TEXT]

Each line of the metrics file is one JSON object with at least "step" and "split" ("train" or
"valid"); the plot draws every numeric field that occurs (loss, bits per byte, accuracy, learning
rate, throughput) against the step, one panel per field, train and valid in one panel where both
have it. Needs matplotlib (Debian/Ubuntu: apt-get install python3-matplotlib).
"""
import argparse
import json
import os
import sys
from collections import defaultdict

# Panels in this order when present; any other numeric field follows.
PREFERRED = ["loss", "bpb", "ppl", "accuracy", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "step_ms",
             "sparsity", "aux_loss"]
SKIP = {"step", "split", "time", "epoch", "eta_s", "memory_mb", "count", "batches"}


def read_metrics(path):
    series = defaultdict(lambda: defaultdict(list))  # field -> split -> [(step, value)]
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot.py: {path}:{n}: not a JSON line ({e}); is this a pit-train metrics file?")
            if "step" not in rec:
                continue
            split = rec.get("split", "train")
            for key, value in rec.items():
                if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                series[key][split].append((rec["step"], value))
    return series


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics", help="metrics.jsonl written by pit-train")
    ap.add_argument("-o", "--output", help="PNG to write (default: next to the metrics, curves.png)")
    ap.add_argument("--title", help="figure title (default: the metrics path)")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: matplotlib is missing: apt-get install python3-matplotlib (or pip install matplotlib)")

    series = read_metrics(args.metrics)
    if not series:
        sys.exit(f"plot.py: {args.metrics} holds no metrics yet")
    fields = [k for k in PREFERRED if k in series] + sorted(k for k in series if k not in PREFERRED)
    cols = 2 if len(fields) > 1 else 1
    rows = (len(fields) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax, field in zip(axes.flat, fields):
        for split, points in sorted(series[field].items()):
            steps, values = zip(*points)
            ax.plot(steps, values, label=split, marker="o" if split != "train" else None, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel(field)
        if field in ("loss", "bpb", "ppl"):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax in axes.flat[len(fields):]:
        ax.set_visible(False)
    fig.suptitle(args.title or args.metrics)
    fig.tight_layout()
    out = args.output or os.path.join(os.path.dirname(args.metrics), "curves.png")
    fig.savefig(out, dpi=110)
    print(f"plot.py: wrote {out}")


if __name__ == "__main__":
    main()
