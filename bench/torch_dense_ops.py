#!/usr/bin/env python3
"""Peer for `pit-bench dense`: the same ops, shapes and dtype in PyTorch eager on the same GPU.

Timed like pit-bench: CUDA events around each run after warm-up, median of 50 runs.
Usage: python3 bench/torch_dense_ops.py [--markdown FILE]
"""
import argparse

import torch
import torch.nn.functional as F

from torch_timing import time_gpu, write_markdown

TOKENS, MODEL, FFN, HEADS, SEQ = 16384, 1024, 4096, 16, 1024
HEAD_DIM, BATCH = MODEL // HEADS, TOKENS // SEQ


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", default="")
    args = parser.parse_args()
    dev, dt = "cuda", torch.bfloat16
    rnd = lambda *s: torch.randn(*s, device=dev, dtype=dt)
    rows = []

    def row(op, shape, fn):
        ms = time_gpu(fn)
        rows.append((op, shape, ms))
        print(f"{op:<28} {shape:<32} {ms:10.4f} ms", flush=True)

    with torch.no_grad():
        x, w1, h, w2, dy = rnd(TOKENS, MODEL), rnd(FFN, MODEL), rnd(TOKENS, FFN), rnd(MODEL, FFN), rnd(TOKENS, FFN)
        row("linear fwd (x W1^T)", f"{TOKENS}x{MODEL} @ {MODEL}x{FFN}", lambda: x @ w1.t())
        row("linear fwd (h W2^T)", f"{TOKENS}x{FFN} @ {FFN}x{MODEL}", lambda: h @ w2.t())
        row("linear bwd dX (dY W1)", f"{TOKENS}x{FFN} @ {FFN}x{MODEL}", lambda: dy @ w1)
        row("linear bwd dW (dY^T X)", f"{FFN}x{TOKENS} @ {TOKENS}x{MODEL}", lambda: dy.t() @ x)
        bh = BATCH * HEADS
        q, k, p, v = rnd(bh, SEQ, HEAD_DIM), rnd(bh, SEQ, HEAD_DIM), rnd(bh, SEQ, SEQ), rnd(bh, SEQ, HEAD_DIM)
        row("attention Q K^T", f"{bh}x{SEQ}x{HEAD_DIM} @ {HEAD_DIM}x{SEQ}", lambda: torch.bmm(q, k.transpose(1, 2)))
        row("attention P V", f"{bh}x{SEQ}x{SEQ} @ {SEQ}x{HEAD_DIM}", lambda: torch.bmm(p, v))
        g = rnd(TOKENS, FFN)
        row("gelu fwd", f"{TOKENS}x{FFN}", lambda: F.gelu(h, approximate="tanh"))
        row("gelu bwd", f"{TOKENS}x{FFN}", lambda: torch.ops.aten.gelu_backward(g, h, approximate="tanh"))
        h16 = h.half()
        row("gelu fwd (f16)", f"{TOKENS}x{FFN}", lambda: F.gelu(h16, approximate="tanh"))
        row("bias grad (sum dim 0)", f"{TOKENS}x{FFN}", lambda: g.sum(0))
        a, b = rnd(TOKENS, MODEL), rnd(TOKENS, MODEL)
        row("add (residual)", f"{TOKENS}x{MODEL}", lambda: a + b)
        r = BATCH * HEADS * SEQ
        s, gs = rnd(r, SEQ), rnd(r, SEQ)
        row("softmax fwd", f"{r}x{SEQ}", lambda: torch.softmax(s, -1))
        y = torch.softmax(s, -1)
        row("softmax bwd", f"{r}x{SEQ}", lambda: torch.ops.aten._softmax_backward_data(gs, y, -1, dt))

        xl, gl = rnd(TOKENS, MODEL), rnd(TOKENS, MODEL)
        wl, bl = torch.ones(MODEL, device=dev, dtype=dt), torch.zeros(MODEL, device=dev, dtype=dt)
        row("layernorm fwd", f"{TOKENS}x{MODEL}", lambda: F.layer_norm(xl, (MODEL,), wl, bl, 1e-5))
        _, mean, rstd = torch.ops.aten.native_layer_norm(xl, (MODEL,), wl, bl, 1e-5)
        row("layernorm bwd", f"{TOKENS}x{MODEL}",
            lambda: torch.ops.aten.native_layer_norm_backward(gl, xl, (MODEL,), mean, rstd, wl, bl, [True, True, True]))
        table = rnd(50304, MODEL)
        ids = torch.randint(0, 50304, (TOKENS,), device=dev)
        row("embedding fwd", f"{TOKENS}x{MODEL}", lambda: F.embedding(ids, table))
        rows_ce, vocab = 8192, 50304
        logits = rnd(rows_ce, vocab)
        targets = torch.randint(0, vocab, (rows_ce,), device=dev)
        row("cross-entropy fwd", f"{rows_ce}x{vocab}", lambda: F.cross_entropy(logits, targets))
    # Fresh leaves every call: reused ones would add each backward's gradient into the last one's
    # (an extra pass over the 824 MB logits gradient that pit never makes).
    def ce_both():
        F.cross_entropy(logits.detach().requires_grad_(True), targets).backward()

    row("cross-entropy fwd+bwd", f"{rows_ce}x{vocab}", ce_both)
    q, k, v, do = (rnd(BATCH, HEADS, SEQ, HEAD_DIM) for _ in range(4))
    with torch.no_grad():
        row("attention fwd (fused)", f"{BATCH}x{HEADS}x{SEQ}x{HEAD_DIM} causal",
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    def attention_both():
        qg, kg, vg = (t.detach().requires_grad_(True) for t in (q, k, v))
        F.scaled_dot_product_attention(qg, kg, vg, is_causal=True).backward(do)

    row("attention fwd+bwd (fused)", f"{BATCH}x{HEADS}x{SEQ}x{HEAD_DIM} causal", attention_both)

    if args.markdown:
        write_markdown(args.markdown, f"PyTorch {torch.__version__} eager, bf16, {torch.cuda.get_device_name()}",
                       ("op", "shape", "ms"), rows)


if __name__ == "__main__":
    main()
