#!/usr/bin/env python3
"""Lists the kernels of one pass, with their durations and total, from an Nsight Compute CSV.

The pass is the last one in the file: it starts `--before` launches ahead of the last launch of
the kernel named by `--marker` (by default MoE's dispatch, `routing_kernel`) and runs to the end.
With `--ends N`, the marker is a kernel that ends a pass and launches N times in each (a training
step's AdamW, one launch a parameter: `--marker adamw --ends 4` for a block of four parameters): the pass is the launches after
the marker's last launch of the pass before, up to its last launch.
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
    ap.add_argument("--ends", type=int, default=0, help="the marker ends a pass, launching this many times in each")
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
    if args.ends > 0:
        if len(marks) <= args.ends:
            print(f"ncu_pass: '{args.marker}' launched {len(marks)} times: fewer than two passes of {args.ends}",
                  file=sys.stderr)
            return 1
        first, last = marks[-1 - args.ends] + 1, marks[-1] + 1
    else:
        first, last = max(0, marks[-1] - args.before), len(rows)
    total = 0.0
    for r in rows[first:last]:
        us = float(r[value].replace(",", "")) * TO_US.get(r[unit], 1.0)
        total += us
        print(f"{us:9.1f} us  {r[name][:120]}")
    print(f"total {total:.1f} us over {last - first} kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
