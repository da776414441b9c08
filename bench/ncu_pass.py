#!/usr/bin/env python3
"""Lists the kernels of one pass, with their durations and total, from an Nsight Compute CSV.

The pass is the last one in the file: it starts `--before` launches ahead of the last launch of
the kernel named by `--marker` (by default MoE's dispatch, `routing_kernel`) and runs to the end.
For example, the kernels of one moe_ffn forward + backward (bench/moe.cpp's trace mode):

    PIT_BENCH_MOE_TRACE=1 ncu --metrics gpu__time_duration.sum --csv build-gpu/pit-bench moe > moe.csv
    python3 bench/ncu_pass.py moe.csv

Nsight Compute runs each kernel alone, its caches flushed and clocks at base unless told
otherwise, so the durations are for comparing kernels with each other, not the pass's wall time.
"""
import argparse
import csv
import sys

TO_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="ncu --csv output with the gpu__time_duration.sum metric")
    ap.add_argument("--marker", default="routing_kernel", help="a kernel launched once a pass")
    ap.add_argument("--before", type=int, default=0, help="launches of the pass ahead of the marker")
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        rows = [r for r in csv.reader(f) if len(r) > 5]
    if not rows or "Kernel Name" not in rows[0]:
        print(f"ncu_pass: no Nsight Compute CSV table in {args.csv}", file=sys.stderr)
        return 1
    head, rows = rows[0], rows[1:]
    name, value, unit = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
    marks = [i for i, r in enumerate(rows) if args.marker in r[name]]
    if not marks:
        print(f"ncu_pass: no launch of a kernel named like '{args.marker}'", file=sys.stderr)
        return 1
    first = max(0, marks[-1] - args.before)
    total = 0.0
    for r in rows[first:]:
        us = float(r[value].replace(",", "")) * TO_US.get(r[unit], 1.0)
        total += us
        print(f"{us:9.1f} us  {r[name][:120]}")
    print(f"total {total:.1f} us over {len(rows) - first} kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
