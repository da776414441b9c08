#!/usr/bin/env python3
"""PyTorch eager peer of pit-train's transformer LM (configs/moe.yaml, dense): the same model,
optimizer and precision, timed the way pit-train reports throughput (tokens per second over the
training steps after a warm-up). Run on the GPU machine next to `pit-train --config ...`:

    python3 bench/torch_train.py --d-model 512 --layers 8 --heads 8 --d-ff 2048 \
        --seq 256 --batch 32 --steps 60 --compute bf16 [--markdown FILE]

The model mirrors trainer/nn: token + learned position embeddings, pre-norm blocks (LayerNorm,
causal self-attention with a fused qkv projection, LayerNorm, Linear-GELU-Linear), a final
LayerNorm and an LM head tied to the embedding; dropout after the embeddings, the attention
projection and the FFN as pit's blocks do; AdamW with weight decay on matrices only and
gradient clipping at 1.0; bf16 autocast with f32 master weights. Tokens are random bytes:
throughput does not depend on their values.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, d_ff, dropout):
        super().__init__()
        self.heads = heads
        self.drop = nn.Dropout(dropout)
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        shape = (b, t, self.heads, d // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class LM(nn.Module):
    def __init__(self, vocab, d, layers, heads, d_ff, seq, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "fc2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.drop(self.tok(ids) + self.pos(pos))
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x) @ self.tok.weight.t()  # tied head


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--d-ff", type=int, default=2048)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dropout", type=float, default=0.1, help="after the embeddings, attention and FFN")
    ap.add_argument("--steps", type=int, default=60, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--compute", choices=["f32", "bf16"], default="bf16")
    ap.add_argument("--markdown", help="append a result row to this file")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "bench/torch_train.py needs a CUDA GPU"

    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = LM(args.vocab, args.d_model, args.layers, args.heads, args.d_ff, args.seq, args.dropout).to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.compute == "bf16")

    def step():
        ids = torch.randint(0, args.vocab, (args.batch, args.seq + 1), device=dev)
        with autocast:
            logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.float().view(-1, args.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.item()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tokens = args.batch * args.seq * args.steps
    params = sum(p.numel() for p in model.parameters())
    line = (f"PyTorch {torch.__version__} eager, {torch.cuda.get_device_name()}: {params / 1e6:.1f}M params, "
            f"{args.compute}, batch {args.batch} x {args.seq}: {tokens / dt:,.0f} tokens/s, "
            f"{1e3 * dt / args.steps:.2f} ms/step")
    print(line)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"| PyTorch eager | {tokens / dt:.0f} | {1e3 * dt / args.steps:.2f} |\n")


if __name__ == "__main__":
    main()
