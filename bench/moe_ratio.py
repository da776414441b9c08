#!/usr/bin/env python3
"""Issue #7's ratios from logs of `pit-bench moe` and `bench/torch_moe.py` taken in turns on one GPU
(bench/moe_vs_torch.sh): per routing case, each round's time of pit's layer over torch's
grouped_mm path (forward, and forward + backward) and the range over the rounds, then pit over
torch's dense FFN of the same FLOPs. A ratio below 1 means pit is faster.
Usage: python3 bench/moe_ratio.py PIT_LOG TORCH_LOG [PIT_LOG TORCH_LOG ...]   (one pair a round)
"""
import os
import re
import sys

CASES = ("top-1 uniform", "top-1 skewed", "top-2 uniform", "top-2 skewed")


def pit_times(path):
    """{(case, 'fwd' | 'fwd+bwd'): ms} from a `pit-bench moe` log."""
    out = {}
    pattern = re.compile(r"^moe_ffn (fwd|fwd\+bwd) (top-\d (?:uniform|skewed))\s+\S+ \S+ \S+ \S+\s+([0-9.]+)")
    with open(path) as f:
        for line in f:
            m = pattern.match(line)
            if m:
                out[(m.group(2), m.group(1))] = float(m.group(3))
    return out


def torch_times(path, peer):
    """{(case, 'fwd' | 'fwd+bwd'): ms} of one peer ('grouped_mm' or 'dense FFN') from a torch_moe.py log."""
    out = {}
    pattern = re.compile(r"^" + re.escape(peer) + r".*?(top-\d (?:uniform|skewed))\s+fwd\s+([0-9.]+) ms\s+fwd\+bwd\s+([0-9.]+) ms")
    with open(path) as f:
        for line in f:
            m = pattern.match(line)
            if m:
                out[(m.group(1), "fwd")] = float(m.group(2))
                out[(m.group(1), "fwd+bwd")] = float(m.group(3))
    return out


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    for path in argv:
        if not os.path.isfile(path):
            sys.exit(f"bench/moe_ratio.py: {path}: no such file (pass the logs of pit-bench moe and torch_moe.py)")
    rounds = [(pit_times(argv[i]), torch_times(argv[i + 1], "grouped_mm"), torch_times(argv[i + 1], "dense FFN"))
              for i in range(0, len(argv), 2)]
    complete = True
    for peer_index, peer in ((1, "grouped_mm"), (2, "dense FFN (k x ffn)")):
        print(f"pit / {peer} (per round; range)")
        for case in CASES:
            for mode in ("fwd", "fwd+bwd"):
                ratios, missing = [], []
                for n, r in enumerate(rounds, 1):
                    if (case, mode) in r[0] and (case, mode) in r[peer_index]:
                        ratios.append(r[0][(case, mode)] / r[peer_index][(case, mode)])
                    else:
                        missing.append(str(n))
                if missing:  # a partial table must not pass for a whole one
                    complete = False
                    print(f"  {case:<14} {mode:<8} missing from the logs of round(s) {', '.join(missing)}")
                if not ratios:
                    continue
                each = " ".join(f"{x:.3f}" for x in ratios)
                print(f"  {case:<14} {mode:<8} {each}   [{min(ratios):.3f}, {max(ratios):.3f}]")
    if not complete:
        sys.exit("bench/moe_ratio.py: some cases are missing from the logs (a failed or filtered run?)")


if __name__ == "__main__":
    main(sys.argv[1:])
