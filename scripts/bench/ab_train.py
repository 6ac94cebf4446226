#!/usr/bin/env python3
"""Two Palimpsest builds (or one build under two environments) timed in lockstep on training steps.

    python3 scripts/bench/ab_train.py --preset tiny --steps 40 \
        --a .build/release/palimpsest --b /tmp/palimpsest-before [--a-env K=V ...] [--b-env K=V ...]

Both processes run `palimpsest bench train --lockstep` and take one step each in turn (the order
alternates), with a short rest before each, so that the host's drifting speed hits both alike.
Prints the median of the per-pair ratios (A's speed over B's) with quartiles, for train and
forward steps. With `--bench attention` a step is one layer's causal attention instead
(`palimpsest bench attention --lockstep`: forward, or forward and backward). Standard library only.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lockstep import Engine, ratio_stats, run_pairs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="binary A")
    ap.add_argument("--b", required=True, help="binary B (may equal A, with another environment)")
    ap.add_argument("--a-env", action="append", default=[], metavar="K=V")
    ap.add_argument("--b-env", action="append", default=[], metavar="K=V")
    ap.add_argument("--bench", default="train", choices=["train", "attention"],
                    help="what a step is: a model's training step, or one layer's attention (bench attention)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=30, help="pairs per phase")
    ap.add_argument("--pause", type=float, default=0.05)
    a = ap.parse_args()

    def start(name, binary, env_pairs):
        env = dict(os.environ)
        for pair in env_pairs:
            k, _, v = pair.partition("=")
            env[k] = v
        cmd = [binary, "bench", a.bench, "--preset", a.preset, "--threads", str(a.threads), "--lockstep"]
        return Engine(name, cmd, env)

    procs = {"A": start("A", a.a, a.a_env), "B": start("B", a.b, a.b_env)}
    for p in procs.values():
        p.reply()

    print(f"{a.preset}, {a.threads} threads, {a.steps} lockstep pairs per phase; ratio = B's time / A's time")
    for phase in ("train", "forward"):
        times = run_pairs(procs, phase, a.steps, a.pause)
        _, ratio, q1, q3 = ratio_stats(times, "B", "A")
        print(f"{phase:8s} A median {statistics.median(times['A']) * 1e3:8.2f} ms   B median "
              f"{statistics.median(times['B']) * 1e3:8.2f} ms   A is {ratio:.3f}x B (quartiles {q1:.3f}-{q3:.3f})")
    for p in procs.values():
        p.close()


if __name__ == "__main__":
    main()
