#!/usr/bin/env python3
"""Peers for `pit-bench moe`: MoE expert FFNs in PyTorch eager on the same GPU and shape
(T = 16384 tokens, d = 1024, ffn = 4096, E = 64, bf16, top-1 and top-2, uniform and skewed routing
where expert 0 takes ~10% of the first slots), forward and forward + backward, routing given:
  grouped_mm  dropless: sort the assignments by expert, permute the tokens, torch._grouped_mm for
              both expert GEMMs, gate-weighted index_add back (sort and copies included);
  padded bmm  capacity factor 1.25: tokens scattered into [E, C, d] slots (overflow dropped),
              torch.bmm, gathered back;
  loop        one x[idx] @ W_e pair per expert;
  dense FFN   hidden k * ffn (the same FLOPs per token).
Timed like pit-bench: CUDA events around each run after warm-up, median of 50 runs.
Usage: python3 bench/torch_moe.py [--markdown FILE] [--peers grouped_mm,dense] [--routing DIR]
  --peers: only these (comma-separated: grouped_mm, padded, loop, dense); all by default.
  --routing DIR: the expert ids pit-bench moe used (PIT_BENCH_MOE_ROUTING_OUT=DIR wrote
             DIR/routing_top<k>_<uniform|skewed>.i32), so that both route the same tokens to the
             same experts; without it, ids drawn here by the same rule.
"""
import argparse
import math

import torch
import torch.nn.functional as F

from torch_timing import time_gpu, write_markdown

T, D, FFN, E = 16384, 1024, 4096, 64


def routing(k, skewed, seed):
    """expert ids [T, k] (distinct per token); skewed: expert 0 takes ~10% of the first slots."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randperm(E, generator=g)[:k] for _ in range(T)])
    if skewed:
        pick = torch.rand(T, generator=g) < 0.1
        for t in torch.nonzero(pick).flatten().tolist():
            row = ids[t]
            j = (row == 0).nonzero()
            if len(j):  # expert 0 already chosen: move it to the first slot
                row[j[0, 0]] = row[0].item()
            row[0] = 0
    return ids.cuda()


def routing_from(folder, k, skewed):
    """pit-bench moe's ids [T, k] for this case (raw int32 written under PIT_BENCH_MOE_ROUTING_OUT)."""
    path = f"{folder}/routing_top{k}_{'skewed' if skewed else 'uniform'}.i32"
    with open(path, "rb") as f:
        data = f.read()
    if len(data) != 4 * T * k:
        raise SystemExit(f"torch_moe.py: {path} holds {len(data)} bytes, expected {4 * T * k} (T={T}, k={k})")
    ids = torch.frombuffer(bytearray(data), dtype=torch.int32).view(T, k).to(torch.int64)
    if int(ids.min()) < 0 or int(ids.max()) >= E:
        raise SystemExit(f"torch_moe.py: {path} has expert ids outside 0..{E - 1}")
    return ids.cuda()


def grouped_mm_experts(x, ids, gates, w1, w2):
    """w1 [E, d, ffn], w2 [E, ffn, d] (grouped_mm takes B as [groups, K, N])."""
    k = ids.shape[1]
    flat = ids.flatten()
    order = torch.argsort(flat, stable=True)
    token = order // k
    counts = torch.bincount(flat, minlength=E)
    offs = torch.cumsum(counts, 0).to(torch.int32)
    xs = x.index_select(0, token)
    h = F.gelu(torch._grouped_mm(xs, w1, offs=offs), approximate="tanh")
    o = torch._grouped_mm(h, w2, offs=offs)
    o = o * gates.flatten()[order].unsqueeze(1).to(o.dtype)
    return torch.zeros_like(x).index_add(0, token, o)


def padded_bmm_experts(x, ids, gates, w1, w2, factor=1.25):
    k = ids.shape[1]
    cap = math.ceil(factor * T * k / E)
    flat = ids.flatten()
    # Position of each assignment in its expert's buffer: first choices first, in token order.
    slot_major = flat.view(T, k).t().flatten()  # [k * T]: slot j's assignments, then slot j + 1's
    onehot = F.one_hot(slot_major, E)
    pos = (torch.cumsum(onehot, 0) - 1).gather(1, slot_major.unsqueeze(1)).squeeze(1)
    keep = pos < cap
    tok = torch.arange(T, device=x.device).repeat(k)
    gate = gates.t().flatten()
    dest = slot_major * cap + pos
    buf = torch.zeros(E * cap, x.shape[1], device=x.device, dtype=x.dtype)
    buf = buf.index_copy(0, dest[keep], x.index_select(0, tok[keep])).view(E, cap, -1)
    h = F.gelu(torch.bmm(buf, w1), approximate="tanh")
    o = torch.bmm(h, w2).view(E * cap, -1)
    o = o.index_select(0, dest[keep]) * gate[keep].unsqueeze(1).to(o.dtype)
    return torch.zeros_like(x).index_add(0, tok[keep], o)


def loop_experts(x, ids, gates, w1, w2):
    y = torch.zeros_like(x)
    k = ids.shape[1]
    for e in range(E):
        t, j = torch.nonzero(ids == e, as_tuple=True)
        if t.numel() == 0:
            continue
        o = F.gelu(x[t] @ w1[e], approximate="tanh") @ w2[e]
        y = y.index_add(0, t, o * gates[t, j].unsqueeze(1).to(o.dtype))
    return y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", default="")
    parser.add_argument("--peers", default="grouped_mm,padded,loop,dense",
                        help="comma-separated subset of grouped_mm, padded, loop, dense")
    parser.add_argument("--routing", default="",
                        help="folder of pit-bench moe's routing (PIT_BENCH_MOE_ROUTING_OUT)")
    args = parser.parse_args()
    known = {"grouped_mm", "padded", "loop", "dense"}
    peers = [p for p in args.peers.split(",") if p]
    if not peers or not set(peers) <= known:
        parser.error(f"--peers: choose from {', '.join(sorted(known))}, got {args.peers!r}")
    torch.manual_seed(0)
    bf = torch.bfloat16
    x = torch.randn(T, D, device="cuda", dtype=bf)
    dy = torch.randn(T, D, device="cuda", dtype=bf)
    w1 = (0.03 * torch.randn(E, D, FFN, device="cuda")).to(bf)
    w2 = (0.03 * torch.randn(E, FFN, D, device="cuda")).to(bf)
    rows = []
    print(f"MoE experts in PyTorch {torch.__version__}: T={T} d={D} ffn={FFN} E={E}, bf16, routing "
          + (f"from {args.routing} (pit-bench moe's)" if args.routing else "drawn here"), flush=True)
    for k in (1, 2):
        d1 = (0.03 * torch.randn(D, k * FFN, device="cuda")).to(bf)
        d2 = (0.03 * torch.randn(k * FFN, D, device="cuda")).to(bf)
        gates = torch.full((T, k), 1.0 / k, device="cuda")
        dense = lambda xx, a, b: F.gelu(xx @ a, approximate="tanh") @ b
        for skewed in (False, True):
            ids = routing_from(args.routing, k, skewed) if args.routing else routing(k, skewed, 10 + k)
            tag = f"top-{k} {'skewed' if skewed else 'uniform'}"
            # g: the gates, a leaf that needs a gradient in fwd+bwd (as pit-bench moe's: both sides
            # compute dgates).
            impls = [("grouped_mm", "grouped_mm", lambda xx, a, b, g: grouped_mm_experts(xx, ids, g, a, b), w1, w2),
                     ("padded", "padded bmm (cf 1.25)", lambda xx, a, b, g: padded_bmm_experts(xx, ids, g, a, b), w1, w2),
                     ("loop", "loop", lambda xx, a, b, g: loop_experts(xx, ids, g, a, b), w1, w2),
                     ("dense", "dense FFN (k x ffn)", lambda xx, a, b, g: dense(xx, a, b), d1, d2)]
            for key, name, fn, wa, wb in impls:
                if key not in peers:
                    continue
                with torch.no_grad():
                    fwd = time_gpu(lambda: fn(x, wa, wb, gates))

                def both():
                    xv = x.detach().requires_grad_()
                    a = wa.detach().requires_grad_()
                    b = wb.detach().requires_grad_()
                    g = gates.detach().requires_grad_()
                    fn(xv, a, b, g).backward(dy)

                bwd = time_gpu(both)
                rows.append((f"{name} {tag}", fwd, bwd))
                print(f"{name + ' ' + tag:<40} fwd {fwd:8.4f} ms   fwd+bwd {bwd:8.4f} ms", flush=True)
    if args.markdown:
        write_markdown(args.markdown, f"MoE experts in PyTorch {torch.__version__} eager, bf16",
                       ("implementation", "fwd ms", "fwd+bwd ms"), rows)


if __name__ == "__main__":
    main()
