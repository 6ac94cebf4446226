#!/usr/bin/env python3
"""Loading and greedy generation with a Qwen2.5-0.5B-shaped checkpoint: Palimpsest next to transformers.

    generate_vs_transformers.py [--palimpsest PATH] [--dir DIR] [--rounds 5] [--new-tokens 32] [--threads 2]

Both sides load the same random Float32 checkpoint (written once by `palimpsest bench memory` into
--dir) in a fresh process, continue the same 8-token prompt greedily, and report the load time,
tokens/s of generation (prompt included, as `bench memory` counts it), the two together (a
Float32 checkpoint that is only mapped at load pays for its pages during the first pass) and peak RSS. A round runs
one process of each, the order alternating; a first round warms the page cache and is not
counted. The ratios printed are medians of the per-round ratios. The two continuations must be the
same tokens: a parity check of the whole 24-layer model at this size.
Never run it next to another heavy job.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def transformers_child(directory, new_tokens, threads):
    """One load and one greedy generation with transformers, printed as bench memory's JSON fields."""
    import resource
    import time
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    loaded = time.perf_counter()
    vocab = model.config.vocab_size
    prompt = [(i * 7919) % vocab for i in range(8)]
    eos = model.config.eos_token_id
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos if isinstance(eos, int) else None)
    done = time.perf_counter()
    tokens = out[0, len(prompt):].tolist()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"load_s": loaded - t0, "tokens_per_s": len(tokens) / (done - loaded), "peak_rss_mib": rss,
                      "prompt": prompt, "tokens": tokens}))


def run_json(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])}... failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--palimpsest", default=os.path.join(ROOT, ".build/release/palimpsest"))
    ap.add_argument("--dir", default="/tmp/palimpsest-bench-memory")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return transformers_child(a.dir, a.new_tokens, a.threads)
    if a.rounds < 1 or a.new_tokens < 1:
        sys.exit("--rounds and --new-tokens must be >= 1")
    # Writes the checkpoint when --dir holds none (the measurement there runs in its own process).
    run_json([a.palimpsest, "bench", "memory", "--dir", a.dir, "--new-tokens", "1", "--json"])
    ours_cmd = [a.palimpsest, "bench", "memory", "--measure", "--dir", a.dir, "--new-tokens", str(a.new_tokens),
                "--threads", str(a.threads), "--json"]
    theirs_cmd = [sys.executable, os.path.abspath(__file__), "--child", "--dir", a.dir,
                  "--new-tokens", str(a.new_tokens), "--threads", str(a.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    rows = []
    for r in range(a.rounds + 1):
        if r % 2 == 0:
            ours, theirs = run_json(ours_cmd), run_json(theirs_cmd, env)
        else:
            theirs, ours = run_json(theirs_cmd, env), run_json(ours_cmd)
        if ours["prompt"] != theirs["prompt"] or ours["tokens"] != theirs["tokens"]:
            sys.exit(f"the continuations differ:\n  palimpsest   {ours['tokens']}\n  transformers {theirs['tokens']}")
        if r > 0:
            rows.append((ours, theirs))
        print(f"round {r}{' (warm-up)' if r == 0 else ''}: load {ours['load_s']:.2f} s / {theirs['load_s']:.2f} s, "
              f"{ours['tokens_per_s']:.2f} / {theirs['tokens_per_s']:.2f} tokens/s, "
              f"peak RSS {ours['peak_rss_mib']:.0f} / {theirs['peak_rss_mib']:.0f} MiB (palimpsest / transformers)",
              flush=True)

    def med(side, key):
        return statistics.median(row[side][key] for row in rows)

    def ratio(key, inverse=False):
        # A mapped checkpoint can load in under a millisecond, below what bench memory prints.
        values = [(t[key] / max(o[key], 1e-3)) if inverse else (o[key] / max(t[key], 1e-3)) for o, t in rows]
        return statistics.median(values), min(values), max(values)

    for o, t in rows:
        for side in (o, t):
            side["total_s"] = side["load_s"] + len(side["tokens"]) / side["tokens_per_s"]
    generated = len(rows[0][0]["tokens"])
    print(f"{generated} tokens generated greedily, identical on both sides, {len(rows)} rounds after a warm-up")
    for label, side in (("palimpsest", 0), ("transformers", 1)):
        print(f"{label:13s} load {med(side, 'load_s'):6.2f} s  {med(side, 'tokens_per_s'):6.2f} tokens/s  "
              f"load + generation {med(side, 'total_s'):6.2f} s  peak RSS {med(side, 'peak_rss_mib'):6.0f} MiB")
    for what, (m, lo, hi) in (("generation tokens/s, palimpsest/transformers", ratio("tokens_per_s")),
                              ("load speed (transformers' time / palimpsest's)", ratio("load_s", inverse=True)),
                              ("load + generation speed (transformers' time / palimpsest's)", ratio("total_s", inverse=True)),
                              ("peak RSS, palimpsest/transformers", ratio("peak_rss_mib"))):
        print(f"{what}: median {m:.2f}x (range {lo:.2f}-{hi:.2f})")


if __name__ == "__main__":
    main()
