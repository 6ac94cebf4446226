#!/usr/bin/env python3
"""How much faster PyTorch's training step is with `zero_grad(set_to_none=True)` than with False.

    /path/to/venv/bin/python scripts/bench/torch_zero_grad.py --preset small --pairs 15

The PyTorch side of train_vs_pytorch.py (same model, AdamW(fused=True), batch and threads) takes
steps in pairs, one with each setting, the order alternating; each timed step follows an untimed
one reset the same way. Prints the median of the per-pair ratios with quartiles. It decides which
setting train_vs_pytorch.py gives the reference (the faster one).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_vs_pytorch import PRESETS, torch_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch
    model, opt, v, b, s = torch_model(a.preset, a.threads, None, None)
    g = torch.Generator().manual_seed(2)

    def step(to_none):
        ids = torch.randint(0, v, (b, s), generator=g)
        t0 = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=to_none)
        return time.perf_counter() - t0

    for to_none in (False, True, False):
        step(to_none)
    ratios = []
    for i in range(a.pairs):
        seconds = {}
        for to_none in ((False, True) if i % 2 == 0 else (True, False)):
            step(to_none)
            seconds[to_none] = step(to_none)
        ratios.append(seconds[False] / seconds[True])
    q = statistics.quantiles(ratios, n=4)
    print(f"{a.preset}: set_to_none=True is {statistics.median(ratios):.3f}x as fast as False "
          f"(quartiles {q[0]:.3f}-{q[2]:.3f}), {a.pairs} pairs")


if __name__ == "__main__":
    main()
