#!/usr/bin/env bash
# The benchmark commands checked as the comparison scripts read them (run by CI, a few seconds):
# `bench train --json` (the fields issue #3 names, its GFLOP/s from 6N + 12·L·S·d, a loss near
# ln(vocabulary) for an untrained model), the `--lockstep` protocol that train_vs_pytorch.py,
# attention_vs_pytorch.py and ab_train.py drive, `bench attention --json`, `bench gemm --json`,
# and the errors for bad options. Only Python's standard library is used.
#
#     bash scripts/bench/smoke.sh [path/to/palimpsest]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${1:-.build/release/palimpsest}"
[ -x "$BIN" ] || { echo "bench smoke: no executable at $BIN (swift build -c release --product palimpsest)" >&2; exit 1; }

python3 - "$BIN" <<'PY'
import json, math, subprocess, sys

binary = sys.argv[1]
failures = []

def check(ok, what):
    if not ok:
        failures.append(what)

def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError(f"duplicate keys {sorted(dup)}")
    return dict(pairs)

def run(args, stdin=None, expect_rc=0):
    r = subprocess.run([binary] + args, input=stdin, capture_output=True, text=True, timeout=300)
    if r.returncode != expect_rc:
        failures.append(f"{' '.join(args)}: exit {r.returncode}, expected {expect_rc}; stderr: {r.stderr.strip()[-300:]}")
    return r

def objects(r, what):
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line, object_pairs_hook=no_duplicates))
        except ValueError as e:
            failures.append(f"{what}: not one JSON object per line ({e}): {line[:200]}")
    return out

def positive(o, key, what):
    v = o.get(key)
    check(isinstance(v, (int, float)) and v > 0 and math.isfinite(v), f"{what}: {key} = {v!r}, expected a positive number")

# tiny: vocab 2048, hidden 128, 4 layers, batch 8 x seq 128 (../shared/ENGINE.md).
vocab, hidden, layers, seq, batch = 2048, 128, 4, 128, 8

r = run(["bench", "train", "--preset", "tiny", "--steps", "2", "--json"])
lines = objects(r, "bench train --json")
check([o.get("phase") for o in lines] == ["train", "forward"], f"bench train --json: phases {[o.get('phase') for o in lines]}, expected train then forward")
for o in lines:
    what = f"bench train --json ({o.get('phase')})"
    check(o.get("preset") == "tiny" and o.get("batch") == batch and o.get("seq") == seq, f"{what}: preset/batch/seq {o.get('preset')}/{o.get('batch')}/{o.get('seq')}")
    for key in ("tokens_per_s", "gflops", "peak_rss_mb", "median_step_s"):
        positive(o, key, what)
    n = o.get("parameters", 0) - vocab * hidden  # without the input embedding
    per_token = 6 * n + 12 * layers * seq * hidden
    if o.get("phase") == "forward":
        per_token /= 3
    if isinstance(o.get("tokens_per_s"), (int, float)) and isinstance(o.get("gflops"), (int, float)):
        want = o["tokens_per_s"] * per_token / 1e9
        check(abs(o["gflops"] - want) <= 0.01 * want + 0.01, f"{what}: gflops {o['gflops']} but tokens/s x (6N + 12·L·S·d) gives {want:.2f}")
    loss = o.get("last_loss")
    check(isinstance(loss, (int, float)) and abs(loss - math.log(vocab)) < 0.5, f"{what}: last_loss {loss!r}, expected about ln({vocab}) = {math.log(vocab):.2f} for random tokens")

r = run(["bench", "train", "--preset", "tiny", "--steps", "1", "--phase", "forward", "--json"])
check([o.get("phase") for o in objects(r, "bench train --phase forward")] == ["forward"], "bench train --phase forward: expected one forward object")

r = run(["bench", "train", "--preset", "tiny", "--lockstep"], stdin="train\nforward\ntrain\n")
lines = objects(r, "bench train --lockstep")
check(len(lines) == 5, f"bench train --lockstep: {len(lines)} lines, expected ready, 3 steps and the peak RSS")
if len(lines) == 5:
    check(lines[0].get("ready") is True, "bench train --lockstep: first line is not ready")
    for o in lines[1:4]:
        positive(o, "seconds", "bench train --lockstep step")
    positive(lines[4], "peak_rss_mib", "bench train --lockstep end")
r = run(["bench", "train", "--preset", "tiny", "--lockstep"], stdin="bogus\n", expect_rc=64)
check("bogus" in r.stderr, "bench train --lockstep: an unknown command is not named in the error")

r = run(["bench", "attention", "--preset", "tiny", "--repeats", "2", "--json"])
lines = objects(r, "bench attention --json")
check([o.get("phase") for o in lines] == ["forward", "train"], f"bench attention --json: phases {[o.get('phase') for o in lines]}")
for o in lines:
    positive(o, "median_s", "bench attention --json")
    positive(o, "gflops", "bench attention --json")

r = run(["bench", "gemm", "--shape", "70x33x45:NT", "--repeats", "2", "--json"])
lines = objects(r, "bench gemm --json")
check(len(lines) == 1 and lines[0].get("m") == 70 and lines[0].get("k") == 33 and lines[0].get("n") == 45
      and lines[0].get("transA") is False and lines[0].get("transB") is True, f"bench gemm --json: {lines}")
for o in lines:
    positive(o, "gflops", "bench gemm --json")

for args, needle in ((["bench", "train", "--preset", "nope"], "nope"),
                     (["bench", "train", "--preset", "tiny", "--seq", "0"], "--seq"),
                     (["bench", "attention", "--preset", "nope"], "nope"),
                     (["bench", "gemm", "--shape", "12x"], "12x")):
    r = run(args, expect_rc=64)
    check(needle in r.stderr, f"{' '.join(args)}: the error does not name {needle!r}: {r.stderr.strip()[:200]}")

if failures:
    print("bench smoke: FAILED", file=sys.stderr)
    for f in failures:
        print("  " + f, file=sys.stderr)
    sys.exit(1)
print("bench smoke: passed (bench train, --lockstep, bench attention, bench gemm, bad options)")
PY
