#!/usr/bin/env python3
"""PyTorch's own f32 matmul on the CPU, for `bench/kernel_times.ts --torch`:
the same products, timed in the same run, one JSON line each. Reports which
BLAS the process loaded, since a reference BLAS or a mis-set OpenBLAS makes
PyTorch several times slower and the ratio meaningless."""
import json
import sys
import time

import torch


def loaded_blas():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    return sorted(libs)


def bench(name, a, b, flops, reps):
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    ms = (time.perf_counter() - t0) / reps * 1000
    return {"name": name, "kernel": "torch", "ms": round(ms, 4), "gflops": round(flops / ms / 1e6, 1)}


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    adapter = f"pytorch {torch.__version__} cpu, {threads} threads, blas {loaded_blas()}"
    for n in (256, 512, 1024, 2048):
        a, b = torch.rand(n, n, generator=g) - 0.5, torch.rand(n, n, generator=g) - 0.5
        row = bench(f"matmul {n}x{n}x{n} nn", a, b, 2 * n**3, 20 if n <= 1024 else 5)
        print(json.dumps({**row, "adapter": adapter}), flush=True)
    for d in (128, 256):
        T = 4096
        x, w = torch.rand(T, d, generator=g), torch.rand(4 * d, d, generator=g)
        gr = torch.rand(T, 4 * d, generator=g)
        flops = 2 * T * 4 * d * d
        for name, p, q in (
            (f"linear fwd {T}x{4 * d}x{d} nt", x, w.t()),
            (f"linear dX {T}x{d}x{4 * d} nn", gr, w),
            (f"linear dW {4 * d}x{d}x{T} tn", gr.t(), x),
        ):
            print(json.dumps({**bench(name, p, q, flops, 20), "adapter": adapter}), flush=True)


if __name__ == "__main__":
    main()
