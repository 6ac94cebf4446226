#!/usr/bin/env python3
"""Training and forward speed of Palimpsest next to PyTorch + transformers on the same model and batch.

    train_vs_pytorch.py [--preset tiny] [--steps 5] [--rounds 2] [--threads 2] [--palimpsest PATH]

Runs `palimpsest bench train --json` (a training phase, then a no-grad forward phase) and an
equivalent HF LlamaForCausalLM loop (AdamW with fused=True, then forward under torch.no_grad) in
separate processes, interleaved round by round (the machine is noisy: compare only side by side),
and prints tokens/s, GFLOP/s (6N + 12·L·S·d per token for training, a third for forward) and
peak RSS of each, plus the ratios (median over rounds of the per-round ratio).
Never run it next to another heavy job.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# vocab, hidden, intermediate, layers, heads, kv heads, batch, seq (Models' ModelPreset and ENGINE.md)
PRESETS = {
    "pilot": (768, 128, 352, 4, 4, 2, 8, 128),
    "tiny": (2048, 128, 352, 4, 4, 2, 8, 128),
    "small": (8192, 512, 1408, 8, 8, 4, 4, 256),
    "medium": (32000, 1024, 2816, 12, 16, 8, 2, 256),
}


def torch_worker(preset, steps, threads, batch, seq):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.set_num_threads(threads)
    v, d, f, layers, heads, kv, b0, s0 = PRESETS[preset]
    b, s = batch or b0, seq or s0
    config = LlamaConfig(vocab_size=v, hidden_size=d, intermediate_size=f, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=2048,
                         tie_word_embeddings=False)
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).float()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01, eps=1e-8, fused=True)
    g = torch.Generator().manual_seed(2)
    times = []
    loss = None
    for step in range(steps + 1):
        ids = torch.randint(0, v, (b, s), generator=g)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        t1 = time.perf_counter()
        if step > 0:
            times.append(t1 - t0)
    n = sum(p.numel() for p in model.parameters()) - v * d
    flops = 6 * n + 12 * layers * s * d

    def report(phase, times, flops, loss):
        tok_s = b * s * steps / sum(times)
        print(json.dumps({"preset": preset, "phase": phase, "batch": b, "seq": s, "steps": steps, "threads": threads,
                          "tokens_per_s": round(tok_s, 1), "gflops": round(tok_s * flops / 1e9, 2),
                          "median_step_s": round(sorted(times)[len(times) // 2], 4),
                          "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                          "last_loss": round(float(loss), 4)}))

    report("train", times, flops, loss)
    g = torch.Generator().manual_seed(3)
    times = []
    with torch.no_grad():
        for step in range(steps + 1):
            ids = torch.randint(0, v, (b, s), generator=g)
            t0 = time.perf_counter()
            loss = model(input_ids=ids, labels=ids).loss
            t1 = time.perf_counter()
            if step > 0:
                times.append(t1 - t0)
    report("forward", times, flops / 3, loss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--palimpsest", default=os.path.join(ROOT, ".build", "release", "palimpsest"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        torch_worker(a.preset, a.steps, a.threads, a.batch, a.seq)
        return
    if not os.path.exists(a.palimpsest):
        sys.exit(f"{a.palimpsest} not found: build it with `swift build -c release --product palimpsest`")
    extra = (["--batch", str(a.batch)] if a.batch else []) + (["--seq", str(a.seq)] if a.seq else [])
    rows = []
    for r in range(a.rounds):
        for name, cmd in [
            ("palimpsest", [a.palimpsest, "bench", "train", "--preset", a.preset, "--steps", str(a.steps),
                            "--threads", str(a.threads), "--json"] + extra),
            ("pytorch", [sys.executable, os.path.abspath(__file__), "--worker", "--preset", a.preset,
                         "--steps", str(a.steps), "--threads", str(a.threads)] + extra),
        ]:
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            for line in out.strip().splitlines():
                if not line.startswith("{"):
                    continue
                result = json.loads(line)
                result["engine"], result["round"] = name, r
                rows.append(result)
                print(f"round {r} {name:10s} {result.get('phase', 'train'):7s} {result['tokens_per_s']:9.1f} tok/s "
                      f"{result['gflops']:7.2f} GFLOP/s median step {result['median_step_s']:.3f} s  "
                      f"peak RSS {result['peak_rss_mib']} MiB", flush=True)
    for phase in ("train", "forward"):
        ratios, rss = [], []
        for r in range(a.rounds):
            pick = {x["engine"]: x for x in rows if x["round"] == r and x.get("phase", "train") == phase}
            if len(pick) == 2:
                ratios.append(pick["palimpsest"]["tokens_per_s"] / pick["pytorch"]["tokens_per_s"])
                rss.append(pick["palimpsest"]["peak_rss_mib"] / pick["pytorch"]["peak_rss_mib"])
        if ratios:
            print(f"{a.preset} {phase}: tokens/s ratio palimpsest/pytorch per round "
                  f"{', '.join(f'{x:.2f}' for x in ratios)} (median {sorted(ratios)[len(ratios) // 2]:.2f}x); "
                  f"peak RSS ratio median {sorted(rss)[len(rss) // 2]:.2f}")


if __name__ == "__main__":
    main()
