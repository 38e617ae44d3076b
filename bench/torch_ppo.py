#!/usr/bin/env python3
"""PyTorch side of `deno task bench:ppo`: one PPO iteration of the same shape
as the Deno engine's (src/stages/ppo.ts, src/train/ppo_update.ts), timed per
phase on the CPU, so the engine's rollouts/s has a reference measured in the
same run on the same machine.

The Deno bench writes an input JSON (model shapes, PPO settings and the
prompt token ids of every iteration) and reads the one JSON line this prints.
An iteration: sample every response (KV cache, the PPO temperature, exactly
max_new_tokens each), score them with the reward model, old and reference
log-probs and values, KL-penalised rewards, GAE with whitening or RLOO group
advantages, then epochs x shuffled minibatches of the clipped policy loss and
the clipped value loss, each an AdamW step with gradient clipping.

The line also says which BLAS the process loaded (torch.__config__ says only
how it was built; /proc/self/maps says what is mapped) and a 512^3 f32 matmul
rate measured here, so a reader can tell a slowed-down PyTorch. Needs Debian's
python3-torch with libopenblas0-pthread.

    python3 bench/torch_ppo.py --input FILE --threads 2
"""
import argparse
import ctypes
import json
import math
import os
import re
import time

import torch
import torch.nn.functional as F

MASKED = -1e9  # finite, so a fully masked (padding) query row stays finite


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


class Block(torch.nn.Module):
    """Llama block: RMSNorm, grouped-query attention with rotate-half RoPE, SwiGLU."""

    def __init__(self, c):
        super().__init__()
        d, hd, bias = c["hidden"], c["head_dim"], c["attention_bias"]
        self.heads, self.kv_heads, self.head_dim = c["heads"], c["kv_heads"], hd
        self.n1 = RMSNorm(d, c["rms_eps"])
        self.q = torch.nn.Linear(d, self.heads * hd, bias=bias)
        self.k = torch.nn.Linear(d, self.kv_heads * hd, bias=bias)
        self.v = torch.nn.Linear(d, self.kv_heads * hd, bias=bias)
        self.o = torch.nn.Linear(self.heads * hd, d, bias=False)
        self.n2 = RMSNorm(d, c["rms_eps"])
        self.gate = torch.nn.Linear(d, c["intermediate"], bias=False)
        self.up = torch.nn.Linear(d, c["intermediate"], bias=False)
        self.down = torch.nn.Linear(c["intermediate"], d, bias=False)

    def forward(self, x, cos, sin, mask, cache, at):
        B, T, _ = x.shape
        h = self.n1(x)
        split = lambda t, n: t.view(B, T, n, self.head_dim).transpose(1, 2)
        q = rope(split(self.q(h), self.heads), cos, sin)
        k = rope(split(self.k(h), self.kv_heads), cos, sin)
        v = split(self.v(h), self.kv_heads)
        if cache is not None:
            cache["k"][:, :, at:at + T] = k
            cache["v"][:, :, at:at + T] = v
            k, v = cache["k"][:, :, :at + T], cache["v"][:, :, :at + T]
        if self.kv_heads < self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        a = torch.softmax(s.masked_fill(mask, MASKED), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, -1))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(torch.nn.Module):
    """The engine's CausalLM: an LM head (tied or not) or a scalar score head."""

    def __init__(self, c, head):
        super().__init__()
        self.c = c
        self.embed = torch.nn.Embedding(c["vocab"], c["hidden"])
        self.blocks = torch.nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"], c["rms_eps"])
        self.lm = None
        self.score = None
        if head == "lm" and not c["tied"]:
            self.lm = torch.nn.Linear(c["hidden"], c["vocab"], bias=False)
        if head == "score":
            self.score = torch.nn.Linear(c["hidden"], 1, bias=False)
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(c["max_pos"]).float(), inv)
        emb = torch.cat([ang, ang], dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self.init_as_engine()

    def init_as_engine(self):
        # As CausalLM.init: normal(0, 0.02) weights, unit norms, zero biases, zero score head.
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "n1" in name or "n2" in name or name.startswith("norm"):
                    p.fill_(1)
                elif name.endswith("bias") or name.startswith("score"):
                    p.zero_()
                else:
                    p.normal_(0, 0.02)

    def hidden(self, ids, positions=None, key_start=None, caches=None, at=0):
        B, T = ids.shape
        if positions is None:
            positions = torch.arange(at, at + T).expand(B, T)
        cos = self.cos[positions].unsqueeze(1)
        sin = self.sin[positions].unsqueeze(1)
        mask = attention_mask(B, T, at, key_start)
        x = self.embed(ids)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, mask, None if caches is None else caches[i], at)
        return self.norm(x)

    def logits(self, h):
        return F.linear(h, self.embed.weight if self.lm is None else self.lm.weight)

    def scores(self, h):
        return self.score(h).squeeze(-1)


def attention_mask(B, T, at, key_start):
    """True where a query may not see a key: the future, and left padding of the prompt."""
    keys = torch.arange(at + T)
    mask = (keys[None, :] > (at + torch.arange(T))[:, None])[None, None]
    if key_start is not None:
        mask = mask | (keys[None, :] < key_start[:, None])[:, None, None, :]
    return mask


def pad_length(n):
    return (n + 7) // 8 * 8


@torch.no_grad()
def generate(model, prompts, max_new, temperature, pad, gen):
    """As src/generate/generate.ts: left-padded prefill, then one token per step."""
    B = len(prompts)
    P = pad_length(max(len(p) for p in prompts))
    c = model.c
    ids = torch.full((B, P), pad, dtype=torch.long)
    key_start = torch.tensor([P - len(p) for p in prompts])
    for b, p in enumerate(prompts):
        ids[b, P - len(p):] = torch.tensor(p)
    positions = (torch.arange(P)[None, :] - key_start[:, None]).clamp(min=0)
    shape = (B, c["kv_heads"], P + max_new, c["head_dim"])
    caches = [{"k": torch.zeros(shape), "v": torch.zeros(shape)} for _ in range(c["layers"])]
    h = model.hidden(ids, positions, key_start, caches, 0)
    out = torch.empty(B, max_new, dtype=torch.long)
    logprobs = torch.empty(B, max_new)
    for s in range(max_new):
        logits = model.logits(h[:, -1])
        lsm = F.log_softmax(logits / temperature if temperature > 0 else logits, dim=-1)
        if temperature > 0:
            tok = torch.multinomial(lsm.exp(), 1, generator=gen)
        else:
            tok = lsm.argmax(-1, keepdim=True)
        out[:, s:s + 1] = tok
        logprobs[:, s:s + 1] = lsm.gather(-1, tok)
        if s + 1 < max_new:
            h = model.hidden(tok, (P + s - key_start)[:, None], key_start, caches, P + s)
    return out.tolist()


def right_padded(seqs, T, pad):
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
    return ids


def token_logprobs(model, ids, temperature=1.0):
    """log pi(token j+1 | ..j) and the entropy at j < T-1, as src/train/ppo.ts."""
    T = ids.shape[1]
    logits = model.logits(model.hidden(ids)[:, :T - 1])
    lsm = F.log_softmax(logits / temperature if temperature != 1 else logits, dim=-1)
    logp = lsm.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    entropy = -(lsm.exp() * lsm).sum(-1)
    return logp, entropy


def token_values(model, ids):
    return model.scores(model.hidden(ids))[:, :ids.shape[1] - 1]


@torch.no_grad()
def reward_scores(rm, kind, seqs, starts, pad, batch=128):
    """As scoreAll with the reward model's scorer (src/stages/reward_train.ts)."""
    out = []
    for i in range(0, len(seqs), batch):
        part, st = seqs[i:i + batch], starts[i:i + batch]
        T = pad_length(max(len(s) for s in part))
        ids = right_padded(part, T, pad)
        if kind == "logprob":
            logp, _ = token_logprobs(rm, ids)
            mask = torch.zeros(len(part), T - 1)
            for b, s in enumerate(part):
                mask[b, max(st[b], 1) - 1:len(s) - 1] = 1
            mean = (logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)
            out.append(mean * 1.0 + 0.0)  # the fitted scale and bias; 1 and 0 here
        else:
            last = torch.tensor([len(s) - 1 for s in part])
            out.append(rm.scores(rm.hidden(ids)).gather(-1, last[:, None]).squeeze(-1))
    return torch.cat(out)


def kl_rewards(logp, ref, mask, scores, beta):
    kl = (logp - ref) * mask
    rewards = -beta * kl
    last = (mask * torch.arange(mask.shape[1])).argmax(-1)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards, kl


def gae(rewards, values, mask, gamma, lam):
    B, W = rewards.shape
    adv = torch.zeros(B, W)
    nxt = torch.zeros(B)
    next_value = torch.zeros(B)
    for t in range(W - 1, -1, -1):
        m = mask[:, t] > 0
        a = rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * nxt
        nxt = torch.where(m, a, nxt)
        next_value = torch.where(m, values[:, t], next_value)
        adv[:, t] = torch.where(m, a, torch.zeros(B))
    return adv, (adv + values) * mask


def group_advantages(rewards, mask, k):
    ret = (rewards * mask).sum(-1).view(-1, k)
    loo = ret - (ret.sum(-1, keepdim=True) - ret) / (k - 1)
    return loo.reshape(-1, 1) * mask


def mixed_groups(scores, k):
    g = scores.view(-1, k)
    mixed = (g != g[:, :1]).any(-1)
    return torch.arange(len(scores)).view(-1, k)[mixed].reshape(-1).tolist()


def whiten(x, mask):
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / (n - 1).clamp(min=1)
    return (x - mean) / torch.sqrt(var + 1e-8) * mask


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1)


def policy_step(m, ids, old, adv, mask, p):
    logp, entropy = token_logprobs(m["policy"], ids, p["temperature"])
    ratio = torch.exp(logp - old)
    clipped = ratio.clamp(1 - p["clip"], 1 + p["clip"])
    loss = masked_mean(torch.maximum(-adv * ratio, -adv * clipped), mask)
    clipfrac = masked_mean(((ratio - 1).abs() > p["clip"]).float(), mask)
    step(m["policy_opt"], m["policy"], loss, p["max_grad_norm"])
    return [loss.detach(), clipfrac.detach(), masked_mean(entropy.detach(), mask)]


def value_step(m, ids, old, returns, mask, p):
    v = token_values(m["value"], ids)
    v_clipped = old + (v - old).clamp(-p["value_clip"], p["value_clip"])
    loss = 0.5 * masked_mean(torch.maximum((v - returns) ** 2, (v_clipped - returns) ** 2), mask)
    step(m["value_opt"], m["value"], loss, p["max_grad_norm"])
    return loss.detach()


def step(opt, model, loss, max_grad_norm):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    opt.step()


def rollout_batch(prompts, gens, pad):
    """Right-padded ids [B, T] (T-1 a multiple of 8) and the response mask [B, T-1]."""
    seqs = [p + g for p, g in zip(prompts, gens)]
    T = pad_length(max(len(s) for s in seqs) - 1) + 1
    mask = torch.zeros(len(seqs), T - 1)
    for b, s in enumerate(seqs):
        mask[b, len(prompts[b]) - 1:len(s) - 1] = 1
    return seqs, right_padded(seqs, T, pad), mask


def ppo_update(m, ids, mask, scores, p, gen):
    """Old/ref log-probs and values, then the minibatch steps; seconds of each part."""
    t0 = time.perf_counter()
    with torch.no_grad():
        logp, _ = token_logprobs(m["policy"], ids, p["temperature"])
        ref, _ = token_logprobs(m["ref"], ids, p["temperature"])
        values = token_values(m["value"], ids) if m["value"] is not None else None
    t1 = time.perf_counter()
    rewards, _ = kl_rewards(logp, ref, mask, scores, p["kl_coef"])
    group = values is None
    k = p["samples_per_prompt"]
    if group:
        adv, returns = group_advantages(rewards, mask, k), None
    else:
        adv, returns = gae(rewards, values, mask, p["gamma"], p["lam"])
    if p["whiten"]:
        adv = whiten(adv, mask)
    rows = mixed_groups(scores, k) if group else list(range(len(scores)))
    stats = []
    for _ in range(p["epochs"]):
        order = torch.tensor(rows)[torch.randperm(len(rows), generator=gen)]
        for at in range(0, len(order), p["mini_batch"]):
            r = order[at:at + p["mini_batch"]]
            stats += policy_step(m, ids[r], logp[r], adv[r], mask[r], p)
            if not group:
                stats.append(value_step(m, ids[r], values[r], returns[r], mask[r], p))
    host = torch.stack(stats).tolist() if stats else []
    if not all(math.isfinite(x) for x in host):
        raise SystemExit("torch_ppo.py: a loss is not finite")
    return t1 - t0, time.perf_counter() - t1, len(rows)


def iteration(m, prompts, cfg, gen):
    p = cfg["ppo"]
    pad = cfg["pad_id"]
    t0 = time.perf_counter()
    gens = generate(m["policy"], prompts, p["max_new_tokens"], p["temperature"], pad, gen)
    t1 = time.perf_counter()
    seqs, ids, mask = rollout_batch(prompts, gens, pad)
    scores = reward_scores(m["rm"], cfg["reward"]["kind"], seqs, [len(x) for x in prompts], pad)
    if p["reward_output"] == "probability":
        scores = torch.sigmoid(scores)
    # Every response runs to max_new_tokens, so each takes the no-EOS penalty.
    scores = scores - p["no_eos_penalty"]
    t2 = time.perf_counter()
    logprobs_s, update_s, trained = ppo_update(m, ids, mask, scores, p, gen)
    total = time.perf_counter() - t0
    phases = {"generate": t1 - t0, "score": t2 - t1, "logprobs": logprobs_s, "update": update_s}
    return phases, total, trained


def build_models(cfg):
    torch.manual_seed(0)
    p = cfg["ppo"]
    policy = Model(cfg["policy"], "lm")
    ref = Model(cfg["policy"], "lm")
    ref.load_state_dict(policy.state_dict())
    ref.requires_grad_(False)
    value = Model(cfg["policy"], "score") if p["advantage"] == "gae" else None
    rm = Model(cfg["reward"], "lm" if cfg["reward"]["kind"] == "logprob" else "score")
    if rm.score is not None:
        # A trained head is not zero; with a zero one every score ties (as ppo_bench.ts).
        torch.nn.init.uniform_(rm.score.weight, -0.1, 0.1)
    rm.requires_grad_(False)
    adamw = lambda model, lr: torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0
    )
    return {
        "policy": policy,
        "ref": ref,
        "value": value,
        "rm": rm,
        "policy_opt": adamw(policy, p["lr"]),
        "value_opt": None if value is None else adamw(value, p["value_lr"]),
    }


def count(model):
    return None if model is None else sum(t.numel() for t in model.parameters())


def loaded_blas():
    """The BLAS libraries this process has mapped, and OpenBLAS's own report."""
    with open("/proc/self/maps") as f:
        libs = sorted({l.split()[-1] for l in f if re.search(r"blas|mkl", l.split()[-1], re.I)})
    built = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    info = {
        "built_with": built.group(1) if built else None,
        "loaded": libs,
        "openblas": any("openblas" in lib for lib in libs),
    }
    for lib in libs:
        if "openblas" in lib:
            so = ctypes.CDLL(lib)
            so.openblas_get_config.restype = ctypes.c_char_p
            info["openblas_config"] = so.openblas_get_config().decode()
            info["openblas_threads"] = so.openblas_get_num_threads()
            break
    return info


def matmul_gflops(n=512, reps=20):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True, help="JSON written by bench/ppo_bench.ts")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.input) as f:
        cfg = json.load(f)
    m = build_models(cfg)
    gen = torch.Generator().manual_seed(0)
    warmup = cfg["warmup"]
    timed = []
    for i, prompts in enumerate(cfg["prompts"]):
        result = iteration(m, prompts, cfg, gen)
        if i >= warmup:
            timed.append(result)
    n = len(timed)
    seconds = sum(t for _, t, _ in timed) / n
    phases = {k: sum(ph[k] for ph, _, _ in timed) / n for k in timed[0][0]}
    print(json.dumps({
        "rollouts_per_s": round(len(cfg["prompts"][0]) / seconds, 3),
        "iteration_s": round(seconds, 4),
        "phases": {k: round(v, 4) for k, v in phases.items()},
        "trained_rows": timed[-1][2],
        "params": {
            "policy": count(m["policy"]),
            "ref": count(m["ref"]),
            "value": count(m["value"]),
            "reward": count(m["rm"]),
        },
        "torch": {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "blas": loaded_blas(),
        },
        "matmul_512_gflops": round(matmul_gflops(), 2),
    }), flush=True)


if __name__ == "__main__":
    main()
