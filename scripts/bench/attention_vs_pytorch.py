#!/usr/bin/env python3
"""One layer's causal self-attention: Palimpsest next to PyTorch, in lockstep.

    attention_vs_pytorch.py [--preset tiny] [--steps 40] [--threads 2] [--palimpsest PATH]

The PyTorch side is what transformers' LlamaAttention runs with attn_implementation="sdpa" (its
default) once q, k and v are projected and rotated: the [B, T, H, D] → [B, H, T, D] transposes,
`repeat_kv` for grouped-query heads, `scaled_dot_product_attention(is_causal=True)` and the
transpose back. `forward` runs under torch.no_grad; `train` runs the forward pass and its
backward into q, k and v. The Palimpsest side is `palimpsest bench attention --lockstep`, whose
inputs have the same shapes. Both engines step in alternation (see lockstep.py), and the ratio
reported is the median of the per-pair ratios. Needs torch (the /work/venv of the other scripts).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lockstep import Engine, ratio_stats, run_pairs  # noqa: E402
from train_vs_pytorch import PRESETS, ROOT  # noqa: E402


def worker(preset, threads, batch, seq):
    """The PyTorch side of the lockstep protocol."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    _, d, _, _, heads, kv, b0, s0 = PRESETS[preset]
    b, s, hd = batch or b0, seq or s0, d // heads
    g = torch.Generator().manual_seed(5)
    q = torch.randn(b, s, heads * hd, generator=g, requires_grad=True)
    k = torch.randn(b, s, kv * hd, generator=g, requires_grad=True)
    v = torch.randn(b, s, kv * hd, generator=g, requires_grad=True)
    seed = torch.randn(b, s, heads * hd, generator=g)

    def attention():
        qh = q.view(b, s, heads, hd).transpose(1, 2)
        kh = k.view(b, s, kv, hd).transpose(1, 2)
        vh = v.view(b, s, kv, hd).transpose(1, 2)
        n = heads // kv  # transformers' repeat_kv
        kh = kh[:, :, None].expand(b, kv, n, s, hd).reshape(b, heads, s, hd)
        vh = vh[:, :, None].expand(b, kv, n, s, hd).reshape(b, heads, s, hd)
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
        return out.transpose(1, 2).reshape(b, s, heads * hd)

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        t0 = time.perf_counter()
        if command == "train":
            attention().backward(seed)
        elif command == "forward":
            with torch.no_grad():
                attention()
        else:
            sys.exit(f"unknown command {command!r}")
        seconds = time.perf_counter() - t0
        q.grad = k.grad = v.grad = None
        print(json.dumps({"seconds": seconds}), flush=True)
    print(json.dumps({"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, default=40, help="lockstep pairs per phase")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--pause", type=float, default=0.02)
    ap.add_argument("--palimpsest", default=os.path.join(ROOT, ".build", "release", "palimpsest"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.preset, a.threads, a.batch, a.seq)
        return
    if not os.path.exists(a.palimpsest):
        sys.exit(f"{a.palimpsest} not found: build it with `swift build -c release --product palimpsest`")
    extra = (["--batch", str(a.batch)] if a.batch else []) + (["--seq", str(a.seq)] if a.seq else [])
    procs = {
        "palimpsest": Engine("palimpsest", [a.palimpsest, "bench", "attention", "--preset", a.preset,
                                            "--threads", str(a.threads), "--lockstep"] + extra),
        "pytorch": Engine("pytorch", [sys.executable, os.path.abspath(__file__), "--worker", "--preset", a.preset,
                                      "--threads", str(a.threads)] + extra),
    }
    for p in procs.values():
        p.reply()
    print(f"{a.preset} attention, {a.threads} threads, {a.steps} lockstep pairs per phase after a warm-up pair")
    for phase in ("forward", "train"):
        times = run_pairs(procs, phase, a.steps, a.pause)
        _, ratio, q1, q3 = ratio_stats(times, "pytorch", "palimpsest")
        print(f"{phase:8s} palimpsest {statistics.median(times['palimpsest']) * 1e3:8.3f} ms   pytorch "
              f"{statistics.median(times['pytorch']) * 1e3:8.3f} ms   palimpsest is {ratio:.2f}x as fast "
              f"(quartiles {q1:.2f}-{q3:.2f})")
    for p in procs.values():
        p.close()


if __name__ == "__main__":
    main()
