#!/usr/bin/env python3
"""PyTorch side of `deno task bench:model`: the same Llama-style model, batch
and sampling loop, timed on the CPU, one JSON line per configuration.

Needs Debian's python3-torch with libopenblas0-pthread (with the default
reference BLAS PyTorch runs several times slower, which would make the ratio
meaningless).

    python3 bench/torch_reference.py --dims 128 256 --threads 2
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.heads = heads
        self.n1 = torch.nn.RMSNorm(d, eps=1e-5) if hasattr(torch.nn, "RMSNorm") else RMSNorm(d)
        self.qkv = torch.nn.Linear(d, 3 * d, bias=False)
        self.o = torch.nn.Linear(d, d, bias=False)
        self.n2 = torch.nn.RMSNorm(d, eps=1e-5) if hasattr(torch.nn, "RMSNorm") else RMSNorm(d)
        self.gate = torch.nn.Linear(d, hidden, bias=False)
        self.up = torch.nn.Linear(d, hidden, bias=False)
        self.down = torch.nn.Linear(hidden, d, bias=False)

    def forward(self, x, cos, sin, cache=None):
        B, T, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.n1(x)).split(d, dim=-1)
        q, k, v = (t.view(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        a = attention(q, k, v)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, d))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def attention(q, k, v):
    # torch 1.13 (Debian's) has no scaled_dot_product_attention.
    Tq, Tk = q.shape[2], k.shape[2]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if Tq > 1:
        mask = torch.ones(Tq, Tk, dtype=torch.bool).triu(Tk - Tq + 1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


class Model(torch.nn.Module):
    def __init__(self, vocab, d, layers, heads, hidden, max_pos):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, d)
        self.blocks = torch.nn.ModuleList(Block(d, heads, hidden) for _ in range(layers))
        self.norm = torch.nn.RMSNorm(d, eps=1e-5) if hasattr(torch.nn, "RMSNorm") else RMSNorm(d)
        self.head = torch.nn.Linear(d, vocab, bias=False)
        hd = d // heads
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(max_pos).float(), inv)
        emb = torch.cat([ang, ang], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, ids, start=0, caches=None):
        T = ids.shape[1]
        cos, sin = self.cos[start:start + T], self.sin[start:start + T]
        x = self.embed(ids)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, None if caches is None else caches[i])
        return self.head(self.norm(x))


def bench(d, threads, train_steps, sample_reps):
    torch.manual_seed(0)
    vocab, layers, heads, seq, batch = 64, 4, 4, 128, 32
    hidden = (8 * d // 3) // 8 * 8
    model = Model(vocab, d, layers, heads, hidden, 256)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(0, vocab, (batch, seq + 1))

    def train_step():
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), data[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    train_step()
    t0 = time.perf_counter()
    for _ in range(train_steps):
        train_step()
    train_tps = train_steps * batch * seq / (time.perf_counter() - t0)

    sample_batch, prompt_len, new = 64, 16, 112

    @torch.no_grad()
    def sample():
        caches = [{} for _ in range(layers)]
        ids = torch.randint(0, vocab, (sample_batch, prompt_len))
        logits = model(ids, 0, caches)[:, -1]
        pos = prompt_len
        for _ in range(new):
            tok = torch.multinomial(F.softmax(logits, dim=-1), 1)
            logits = model(tok, pos, caches)[:, -1]
            pos += 1

    sample()
    t0 = time.perf_counter()
    for _ in range(sample_reps):
        sample()
    sample_tps = sample_reps * sample_batch * new / (time.perf_counter() - t0)
    return {
        "config": f"d{d}",
        "params": params,
        "train_tokens_per_s": round(train_tps, 1),
        "sample_tokens_per_s": round(sample_tps, 1),
        "adapter": f"pytorch {torch.__version__} cpu, {threads} threads",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--sample-reps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for d in a.dims:
        print(json.dumps(bench(d, a.threads, a.train_steps, a.sample_reps)), flush=True)


if __name__ == "__main__":
    main()
