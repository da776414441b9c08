#!/usr/bin/env python3
"""Where a kernel's warps stall, from Nsight Compute's SASS source page.

Reads the CSV that `ncu -i REPORT.ncu-rep --page source --print-source sass --csv` prints (the
report taken with `--section SourceCounters`) and shows the warp-stall samples by reason, the
instructions with the most samples (each with the preceding instructions, so that the producer
of a waited-on register is in view), and the warp instructions executed.

Usage: bench/ncu_stalls.py SOURCE.csv [--top N] [--context N]
"""
import argparse
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    # A "Kernel Name" line may come first; the header is the row that names the columns.
    for i, row in enumerate(rows):
        if "Address" in row and "Source" in row and SAMPLES in row:
            header, body = row, rows[i + 1:]
            break
    else:
        sys.exit(f"ncu_stalls: {path} has no SASS source table (was the report taken with "
                 f"--section SourceCounters, and printed with --page source --print-source sass --csv?)")
    col = {name: j for j, name in enumerate(header)}
    reasons = [name for name in header if name.startswith("stall_") and "(Not Issued)" not in name]
    instrs = []
    for row in body:
        if len(row) != len(header):
            continue
        def num(name):
            v = row[col[name]] if name in col else ""
            try:
                return int(float(v))
            except ValueError:
                return 0
        instrs.append({
            "address": row[col["Address"]],
            "sass": row[col["Source"]].strip(),
            "samples": num(SAMPLES),
            "executed": num(EXECUTED),
            "reasons": {r: num(r) for r in reasons},
        })
    return instrs, reasons


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=12, help="instructions to show (default 12)")
    ap.add_argument("--context", type=int, default=3, help="instructions before each (default 3)")
    args = ap.parse_args()
    instrs, reasons = read(args.csv)
    total = sum(i["samples"] for i in instrs)
    if total == 0:
        sys.exit(f"ncu_stalls: no warp-stall samples in {args.csv}")
    executed = sum(i["executed"] for i in instrs)
    print(f"{len(instrs)} SASS instructions, {executed} warp instructions executed, {total} stall samples")
    by_reason = {r: sum(i["reasons"][r] for i in instrs) for r in reasons}
    for r, n in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        if n:
            print(f"  {r[len('stall_'):]:<20} {n:8d}  {100.0 * n / total:5.1f}%")
    print(f"\nthe {args.top} instructions with the most samples:")
    order = sorted(range(len(instrs)), key=lambda k: -instrs[k]["samples"])[:args.top]
    for k in order:
        i = instrs[k]
        top = sorted(i["reasons"].items(), key=lambda kv: -kv[1])[:2]
        why = ", ".join(f"{r[len('stall_'):]} {n}" for r, n in top if n)
        print(f"{i['samples']:6d} {100.0 * i['samples'] / total:5.1f}%  {i['sass']}   ({why}; executed {i['executed']})")
        for j in range(max(0, k - args.context), k):
            print(f"{'':14s}  before: {instrs[j]['sass']}")


if __name__ == "__main__":
    main()
