#!/usr/bin/env python3
"""Turn pit-train's metrics (JSON lines) into PNG curves, or draw the sparse masks of a checkpoint.

    scripts/plot.py runs/moe/metrics.jsonl [-o runs/moe/curves.png] [--title TEXT]
    scripts/plot.py --masks runs/prune_mnist/checkpoints/step-00003000.h5 [-o masks.png]

Each line of the metrics file is one JSON object with at least "step" and "split" ("train" or
"valid"); the plot draws every numeric field that occurs (loss, bits per byte, accuracy, learning
rate, throughput) against the step, one panel per field, train and valid in one panel where both
have it; the sparse layers' densities ("density/<layer>") share one panel.
With --masks it draws the mask of every sparse layer in the checkpoint (the tensors ending in
"tile_mask": one pixel per pruning unit, kept units dark), one panel per layer, with its density.
Needs matplotlib (Debian/Ubuntu: apt-get install python3-matplotlib), and h5py for --masks
(apt-get install python3-h5py).
"""
import argparse
import json
import os
import sys
from collections import defaultdict

# Panels in this order when present; any other numeric field follows.
PREFERRED = ["loss", "bpb", "bits_per_token", "ppl", "accuracy", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "step_ms",
             "sparsity", "moe_aux_loss", "moe_z_loss"]
SKIP = {"step", "split", "time", "epoch", "eta_s", "memory_mb", "count", "batches"}


def read_metrics(path):
    series = defaultdict(lambda: defaultdict(list))  # field -> split -> [(step, value)]
    if not os.path.isfile(path):
        sys.exit(f"plot.py: {path}: no such file; pit-train writes its metrics to <run.out_dir>/metrics.jsonl, "
                 "runs/<run.name>/metrics.jsonl by default (metrics.file in the config sets another)")
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


def read_masks(path):
    """[(layer path, 2-D array of 0/1)] for every tensor named .../tile_mask in the checkpoint."""
    try:
        import h5py
    except ImportError:
        sys.exit("plot.py: --masks needs h5py: apt-get install python3-h5py (or pip install h5py)")
    masks = []
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and name.endswith("/tile_mask") and len(obj.shape) == 2:
                    layer = name[: -len("/tile_mask")]
                    for prefix in ("tensors/model/", "model/"):
                        layer = layer.split(prefix, 1)[-1]
                    masks.append((layer.removesuffix("/sparse"), obj[()] != 0))
            f.visititems(visit)
    except OSError as e:
        sys.exit(f"plot.py: cannot read {path}: {e}")
    return masks


def plot_masks(plt, args):
    masks = read_masks(args.masks)
    if not masks:
        sys.exit(f"plot.py: {args.masks} holds no sparse layer (no tensor named .../tile_mask)")
    cols = min(3, len(masks))
    rows = (len(masks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, (layer, m) in zip(axes.flat, masks):
        ax.imshow(m, cmap="Greys", vmin=0, vmax=1, interpolation="nearest", aspect="auto")  # black: kept
        ax.set_title(f"{layer}: {100.0 * m.mean():.1f}% of {m.size} units kept", fontsize=9)
        ax.set_xlabel("input (unit column)")
        ax.set_ylabel("output (unit row)")
    for ax in axes.flat[len(masks):]:
        ax.set_visible(False)
    fig.suptitle(args.title or args.masks)
    fig.tight_layout()
    out = args.output or os.path.splitext(args.masks)[0] + "_masks.png"
    fig.savefig(out, dpi=110)
    print(f"plot.py: wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics", nargs="?", help="metrics.jsonl written by pit-train")
    ap.add_argument("--masks", metavar="CHECKPOINT", help="draw the sparse masks of this checkpoint instead")
    ap.add_argument("-o", "--output", help="PNG to write (default: next to the metrics, curves.png; "
                                           "with --masks, <checkpoint>_masks.png)")
    ap.add_argument("--title", help="figure title (default: the input path)")
    args = ap.parse_args()
    if bool(args.metrics) == bool(args.masks):
        ap.error("give a metrics file, or --masks CHECKPOINT")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: matplotlib is missing: apt-get install python3-matplotlib (or pip install matplotlib)")
    if args.masks:
        plot_masks(plt, args)
        return

    series = read_metrics(args.metrics)
    if not series:
        sys.exit(f"plot.py: {args.metrics} holds no metrics yet")
    # The sparse layers' densities ("density/<layer>") share one panel, a line per layer.
    densities = {k[len("density/"):]: v.get("train", []) for k, v in series.items() if k.startswith("density/")}
    for k in [k for k in series if k.startswith("density/")]:
        del series[k]
    fields = [k for k in PREFERRED if k in series] + sorted(k for k in series if k not in PREFERRED)
    if densities:
        fields.append("density per layer")
    cols = 2 if len(fields) > 1 else 1
    rows = (len(fields) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax, field in zip(axes.flat, fields):
        if field == "density per layer":
            for layer, points in sorted(densities.items()):
                if points:
                    steps, values = zip(*points)
                    ax.plot(steps, values, label=layer if len(densities) <= 8 else None)
            ax.set_xlabel("step")
            ax.set_ylabel(field)
            ax.grid(True, alpha=0.3)
            if len(densities) <= 8:
                ax.legend(fontsize=7)
            continue
        for split, points in sorted(series[field].items()):
            steps, values = zip(*points)
            ax.plot(steps, values, label=split, marker="o" if split != "train" else None, markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel(field)
        if field in ("loss", "bpb", "bits_per_token", "ppl"):
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
