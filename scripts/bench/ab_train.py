#!/usr/bin/env python3
"""Two Palimpsest builds (or one build under two environments) timed in lockstep on training steps.

    python3 scripts/bench/ab_train.py --preset tiny --steps 40 \
        --a .build/release/palimpsest --b /tmp/palimpsest-before [--a-env K=V ...] [--b-env K=V ...]

Both processes run `palimpsest bench train --lockstep` and take one step each in turn (the order
alternates), with a short rest before each, so that the host's drifting speed hits both alike.
Prints the median of the per-pair ratios (A's speed over B's) with quartiles, for train and
forward steps. Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="binary A")
    ap.add_argument("--b", required=True, help="binary B (may equal A, with another environment)")
    ap.add_argument("--a-env", action="append", default=[], metavar="K=V")
    ap.add_argument("--b-env", action="append", default=[], metavar="K=V")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=30, help="pairs per phase")
    ap.add_argument("--pause", type=float, default=0.05)
    a = ap.parse_args()

    def start(binary, env_pairs):
        env = dict(os.environ)
        for pair in env_pairs:
            k, _, v = pair.partition("=")
            env[k] = v
        cmd = [binary, "bench", "train", "--preset", a.preset, "--threads", str(a.threads), "--lockstep"]
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    procs = {"A": start(a.a, a.a_env), "B": start(a.b, a.b_env)}

    def reply(name):
        while True:
            line = procs[name].stdout.readline()
            if not line:
                sys.exit(f"{name} stopped")
            if line.startswith("{"):
                return json.loads(line)

    for name in procs:
        reply(name)

    def step(name, phase):
        time.sleep(a.pause)
        procs[name].stdin.write(phase + "\n")
        procs[name].stdin.flush()
        return reply(name)["seconds"]

    print(f"{a.preset}, {a.threads} threads, {a.steps} lockstep pairs per phase; ratio = B's time / A's time")
    for phase in ("train", "forward"):
        for name in procs:
            step(name, phase)  # warm-up
        ratios, times = [], {"A": [], "B": []}
        for i in range(a.steps):
            order = ["A", "B"] if i % 2 == 0 else ["B", "A"]
            for name in order:
                times[name].append(step(name, phase))
            ratios.append(times["B"][-1] / times["A"][-1])
        q = statistics.quantiles(ratios, n=4)
        print(f"{phase:8s} A median {statistics.median(times['A']) * 1e3:8.2f} ms   B median "
              f"{statistics.median(times['B']) * 1e3:8.2f} ms   A is {statistics.median(ratios):.3f}x B "
              f"(quartiles {q[0]:.3f}-{q[2]:.3f})")
    for p in procs.values():
        p.stdin.close()
        p.wait()


if __name__ == "__main__":
    main()
