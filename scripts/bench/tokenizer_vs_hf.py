"""Side-by-side tokenizer encode throughput: Swift (palimpsest) vs HF tokenizers, interleaved.

Usage:
  /work/venv/bin/python scripts/bench/tokenizer_vs_hf.py --tokenizer .test-data/llama3/tokenizer.json \
      [--input corpus.txt] [--mb 10] [--rounds 3] [--palimpsest .build/release/palimpsest]

Without --input a ~10 MB corpus (prose and code: the .py/.txt/.md/.rst files of the Python installation,
sorted, so every run sees the same text) is written to .test-data/bench/corpus.txt. Both sides encode the
same lines without special tokens on one thread; the best of each side's rounds is reported, plus a
checksum of the ids proving both produced the same tokens.
"""
import argparse
import json
import os
import subprocess
import sys
import sysconfig
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_corpus(path, megabytes):
    roots = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]]
    files = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith((".py", ".txt", ".md", ".rst")):
                    files.append(os.path.join(dirpath, f))
    out, total = [], 0
    limit = int(megabytes * 1e6)
    for f in files:
        try:
            with open(f, "rb") as fh:
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        for line in text.split("\n"):
            if not line.strip():
                continue
            out.append(line)
            total += len(line.encode("utf-8")) + 1
        if total >= limit:
            break
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")


def checksum(batch):
    h, n, mask = 0, 0, (1 << 64) - 1
    for enc in batch:
        for i in enc.ids:
            h = (h * 1000003 + i + 1) & mask
            n += 1
    return n, h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--input")
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--palimpsest", default=os.path.join(ROOT, ".build", "release", "palimpsest"))
    args = ap.parse_args()
    path = args.input
    if path is None:
        path = os.path.join(ROOT, ".test-data", "bench", "corpus.txt")
        if not os.path.exists(path):
            build_corpus(path, args.mb)
    with open(path, "rb") as fh:
        lines = fh.read().decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    nbytes = sum(len(l.encode("utf-8")) for l in lines)
    tok = Tokenizer.from_file(args.tokenizer)
    hf_best, swift_best, swift_batch = float("inf"), float("inf"), 0.0
    hf_sum = swift_sum = None
    for r in range(args.rounds):
        t0 = time.perf_counter()
        # encode_batch_fast (tokenizers >= 0.20) skips offset tracking: the fastest HF path.
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
        batch = encode(lines, add_special_tokens=False)
        hf_best = min(hf_best, time.perf_counter() - t0)
        hf_sum = checksum(batch)
        res = subprocess.run([args.palimpsest, "bench", "tokenizer", "--tokenizer", args.tokenizer, "--input", path,
                              "--repeats", "1", "--json"], check=True, capture_output=True, text=True)
        js = json.loads(res.stdout.strip().splitlines()[-1])
        swift_best = min(swift_best, js["bytes"] / 1e6 / js["mbps_1"])
        swift_batch = max(swift_batch, js["mbps_n"])
        swift_sum = (js["tokens"], js["hash"])
        print(f"round {r + 1}: HF {nbytes / 1e6 / hf_best:.2f} MB/s, Swift {js['mbps_1']:.2f} MB/s", file=sys.stderr)
    hf_mbps, swift_mbps = nbytes / 1e6 / hf_best, nbytes / 1e6 / swift_best
    print(f"corpus: {path} ({nbytes / 1e6:.2f} MB, {len(lines)} lines)")
    print(f"{'':24}{'MB/s':>10}")
    print(f"{'HF tokenizers (1 thread)':24}{hf_mbps:10.2f}")
    print(f"{'Swift (1 thread)':24}{swift_mbps:10.2f}")
    print(f"{'Swift (all cores)':24}{swift_batch:10.2f}")
    print(f"ratio Swift/HF (1 thread): {swift_mbps / hf_mbps:.2f}x")
    same = hf_sum == swift_sum
    print(f"ids identical: {same} (tokens HF {hf_sum[0]}, Swift {swift_sum[0]})")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
