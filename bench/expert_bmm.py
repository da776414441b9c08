"""cuBLAS (through torch.bmm) in MoE's expert shapes, for Nsight Compute to name its kernels.

Issue #7's layer (T = 16384, d = 1024, ffn = 4096, E = 64, bf16) at top-2 uniform gives each expert
512 rows: [64, 512, K] x [64, K, N] for (K, N) = (1024, 4096) (the up and gu GEMMs) and (4096, 1024)
(down, dx), with B row-major and transposed, two calls each. Run under ncu, e.g.

  ncu --section SpeedOfLight --section LaunchStats -k regex:"nvjet|gemm" -c 8 python3 bench/expert_bmm.py

(docs/BENCHMARKS.md, thirty-third session: the kernel names give cuBLAS's tiles and cluster shape.)
"""
import torch


def main() -> None:
    experts, rows = 64, 512
    for k, n in [(1024, 4096), (4096, 1024)]:
        a = torch.randn(experts, rows, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(experts, k, n, device="cuda", dtype=torch.bfloat16)
        bt = b.transpose(1, 2).contiguous().transpose(1, 2)
        for _ in range(2):
            torch.bmm(a, b)
        for _ in range(2):
            torch.bmm(a, bt)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
