#!/usr/bin/env python3
"""Side-by-side sgemm throughput: Palimpsest's GEMM against OpenBLAS (through numpy).

By default both run in one process, call for call: `palimpsest bench gemm --reference LIB`
loads the OpenBLAS library that numpy ships and times one Palimpsest call and one OpenBLAS call
back to back (the order alternating), `--repeats` pairs per shape, so both see the same state of
a noisy machine; the ratio is the median of the per-pair ratios. `--separate` instead runs
Palimpsest in its own process and OpenBLAS through numpy, `--rounds` rounds in alternation
(medians of each): coarser, since the machine's speed changes between the two.

    swift build -c release --product palimpsest
    /work/venv/bin/python scripts/bench/gemm_vs_openblas.py [--threads 1,2] [--repeats 15] [--quick]
"""
import argparse
import ctypes
import glob
import json
import os
import statistics
import subprocess
import sys
import time

# These may be set on the machine to pin OpenBLAS to an older kernel or a smaller cache, which
# would slow numpy down; compare against OpenBLAS as it configures itself.
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)

import numpy as np  # noqa: E402  (after the environment is cleaned)

# The forward products of the small and tiny models and their two backward products
# (same list as `palimpsest bench gemm`).
FORWARD = [(2048, 512, 1408), (2048, 1408, 512), (2048, 512, 8192), (2048, 1024, 2816), (2048, 512, 512),
           (1024, 128, 352), (1024, 128, 2048)]


def cases(quick):
    out = []
    for m, k, n in FORWARD:
        out.append((m, k, n, False, True))
        if not quick:
            out.append((m, n, k, False, False))
            out.append((n, m, k, True, False))
    return out


class OpenBLAS:
    """Sets numpy's OpenBLAS thread count and reports its configuration."""

    def __init__(self):
        self.limits = None
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
            self.limits = threadpool_limits
            self.info = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
        except ImportError:
            self.info = None
        libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*.so*"))
        self.lib = ctypes.CDLL(libs[0]) if libs else None
        self.set_threads_fn = self._symbol("set_num_threads")

    def _symbol(self, name):
        if self.lib is None:
            return None
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                fn = getattr(self.lib, prefix + name + suffix, None)
                if fn is not None:
                    return fn
        return None

    def describe(self):
        if self.info:
            return "; ".join(f"{i.get('filepath')}: {i.get('version')} {i.get('architecture')} "
                             f"threading={i.get('threading_layer')}" for i in self.info)
        parts = []
        for name in ("get_config", "get_corename"):
            fn = self._symbol(name)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                parts.append(fn().decode())
        return " / ".join(parts) if parts else "unknown OpenBLAS (neither threadpoolctl nor its symbols found)"

    def set_threads(self, n):
        if self.set_threads_fn is not None:
            self.set_threads_fn(n)
        elif self.limits is not None:
            self.limits(n)  # keeps the limit for the life of the process
        else:
            sys.exit("cannot set OpenBLAS threads: install threadpoolctl")


def numpy_gflops(m, k, n, ta, tb, repeats):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    A = a.T if ta else a
    B = b.T if tb else b
    out = np.empty((m, n), dtype=np.float32)
    times = []
    for rep in range(repeats + 1):
        t0 = time.perf_counter()
        np.matmul(A, B, out=out)
        t1 = time.perf_counter()
        if rep > 0:  # the first call warms up, as in `palimpsest bench gemm`
            times.append(t1 - t0)
    return 2.0 * m * n * k / statistics.median(times) / 1e9


def palimpsest_gflops(binary, m, k, n, ta, tb, threads, repeats):
    shape = f"{m}x{k}x{n}:{'T' if ta else 'N'}{'T' if tb else 'N'}"
    cmd = [binary, "bench", "gemm", "--json", "--threads", str(threads), "--repeats", str(repeats), "--shape", shape]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert (row["m"], row["k"], row["n"], row["transA"], row["transB"], row["threads"]) == (m, k, n, ta, tb, threads)
    return float(row["gflops"])


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(root, ".build", "release", "palimpsest"))
    ap.add_argument("--build", action="store_true", help="run `swift build -c release --product palimpsest` first")
    ap.add_argument("--separate", action="store_true",
                    help="time Palimpsest in its own process and OpenBLAS through numpy, in alternating rounds")
    ap.add_argument("--rounds", type=int, default=5, help="with --separate: alternating rounds per shape and thread count")
    ap.add_argument("--repeats", type=int, default=None,
                    help="pairs of calls per shape (default 15); with --separate, timed calls per measurement (default 5)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--pause", type=float, default=0.5,
                    help="seconds of rest before each measurement, so OpenBLAS's spinning threads go idle")
    ap.add_argument("--quick", action="store_true", help="forward products only")
    ap.add_argument("--shape", action="append", default=[],
                    help="MxKxN:TT (e.g. 2048x512x1408:NT); repeatable; default: the model shapes")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()

    if args.build:
        subprocess.run(["swift", "build", "-c", "release", "--product", "palimpsest"], cwd=root, check=True)
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run `swift build -c release --product palimpsest` (or pass --build)")

    if args.shape:
        todo = []
        for s in args.shape:
            dims, _, flags = s.partition(":")
            m, k, n = (int(x) for x in dims.split("x"))
            flags = flags or "NN"
            todo.append((m, k, n, flags[0] == "T", flags[1] == "T"))
    else:
        todo = cases(args.quick)
    thread_counts = [int(t) for t in args.threads.split(",")]

    blas = OpenBLAS()
    print(f"numpy {np.__version__}, OpenBLAS: {blas.describe()}")
    if not args.separate:
        if blas.lib is None:
            sys.exit("numpy's OpenBLAS library was not found next to numpy: use --separate")
        in_process(args, blas, todo, thread_counts)
        return
    args.repeats = args.repeats or 5
    kernel = subprocess.run([args.binary, "bench", "gemm", "--shape", "16x16x16", "--repeats", "1"],
                            capture_output=True, text=True).stdout.splitlines()[:1]
    print(f"palimpsest: {args.binary} ({kernel[0] if kernel else '?'})")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {args.rounds} alternating rounds, median of each")
    print_header()
    rows = []
    for threads in thread_counts:
        blas.set_threads(threads)
        for (m, k, n, ta, tb) in todo:
            ours, theirs = [], []
            for _ in range(args.rounds):
                # OpenBLAS's idle threads spin for a while after each call (its THREAD_TIMEOUT, about
                # 2^28 cycles): without a pause they would take a core from the next measurement.
                time.sleep(args.pause)
                ours.append(palimpsest_gflops(args.binary, m, k, n, ta, tb, threads, args.repeats))
                time.sleep(args.pause)
                theirs.append(numpy_gflops(m, k, n, ta, tb, args.repeats))
            p, o = statistics.median(ours), statistics.median(theirs)
            rows.append(report_row(m, k, n, ta, tb, threads, round(p, 2), round(o, 2), round(p / o, 3)))
    summarize(args, rows, thread_counts)


def in_process(args, blas, todo, thread_counts):
    repeats = args.repeats or 15
    print(f"load average before: {os.getloadavg()[0]:.2f}; {repeats} alternating pairs of calls per shape, in one process")
    print_header()
    rows = []
    for threads in thread_counts:
        for (m, k, n, ta, tb) in todo:
            shape = f"{m}x{k}x{n}:{'T' if ta else 'N'}{'T' if tb else 'N'}"
            cmd = [args.binary, "bench", "gemm", "--json", "--threads", str(threads), "--repeats", str(repeats),
                   "--reference", blas.lib._name, "--shape", shape]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(report_row(m, k, n, ta, tb, threads, r["gflops"], r["reference_gflops"], r["ratio"]))
    summarize(args, rows, thread_counts)


def report_row(m, k, n, ta, tb, threads, ours, theirs, ratio):
    """Prints one table row and returns it as a dict (the --json rows)."""
    print(f"{m:>6} {k:>6} {n:>6}   {'T' if ta else 'N'}  {'T' if tb else 'N'}  {threads:>3}  "
          f"{ours:>10.1f}  {theirs:>9.1f}  {100 * ratio:4.0f}%", flush=True)
    return {"m": m, "k": k, "n": n, "transA": ta, "transB": tb, "threads": threads,
            "palimpsest_gflops": ours, "openblas_gflops": theirs, "ratio": ratio}


def print_header():
    header = f"{'M':>6} {'K':>6} {'N':>6}  tA tB  thr  {'palimpsest':>10}  {'openblas':>9}  ratio"
    print(header)
    print("-" * len(header))


def summarize(args, rows, thread_counts):
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for threads in thread_counts:
        ratios = [r["ratio"] for r in rows if r["threads"] == threads]
        print(f"threads={threads}: min ratio {100 * min(ratios):.0f}%, median {100 * statistics.median(ratios):.0f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
