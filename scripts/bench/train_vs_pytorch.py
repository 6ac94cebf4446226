#!/usr/bin/env python3
"""Training and forward speed of Palimpsest next to PyTorch + transformers on the same model and batch.

    train_vs_pytorch.py [--preset tiny] [--steps 10] [--threads 2] [--palimpsest PATH] [--separate --rounds 2]

Times Palimpsest (`palimpsest bench train`) and an equivalent HF LlamaForCausalLM loop (AdamW
with fused=True; the forward pass under torch.no_grad) on the same shapes, and prints tokens/s,
GFLOP/s (6N + 12·L·S·d per token for training, a third for forward) and peak RSS of each.

By default both engines stay loaded in two processes and take steps in lockstep: one Palimpsest
step, one PyTorch step (the order alternating), `--steps` pairs per phase after a warm-up pair,
with a short rest before each step so that neither engine's idle threads take a core from the
other. Both see the same state of the (noisy, shared) machine, and the ratio reported is the
median of the per-pair ratios. `--separate` instead runs each engine's whole loop in its own
process, round by round (`--rounds`), and compares per-round throughput: coarser.
Never run it next to another heavy job.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lockstep import Engine, ratio_stats, run_pairs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# vocab, hidden, intermediate, layers, heads, kv heads, batch, seq (Models' ModelPreset and ENGINE.md)
PRESETS = {
    "pilot": (768, 128, 352, 4, 4, 2, 8, 128),
    "tiny": (2048, 128, 352, 4, 4, 2, 8, 128),
    "small": (8192, 512, 1408, 8, 8, 4, 4, 256),
    "medium": (32000, 1024, 2816, 12, 16, 8, 2, 256),
}


def torch_model(preset, threads, batch, seq):
    """The PyTorch side in its fastest CPU setup: AdamW(fused=True), and gradients dropped between
    steps (`zero_grad(set_to_none=True)`, torch's default), so that backward writes fresh buffers
    instead of adding into zeroed ones: 4-13% faster per step than `set_to_none=False`
    (scripts/bench/torch_zero_grad.py). Palimpsest's trainer does the same with `resetGrad`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.set_num_threads(threads)
    v, d, f, layers, heads, kv, b0, s0 = PRESETS[preset]
    config = LlamaConfig(vocab_size=v, hidden_size=d, intermediate_size=f, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=2048,
                         tie_word_embeddings=False)
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).float()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01, eps=1e-8, fused=True)
    return model, opt, v, batch or b0, seq or s0


def torch_lockstep_worker(preset, threads, batch, seq):
    """The PyTorch side of the lockstep protocol (the same as `palimpsest bench train --lockstep`)."""
    import torch
    model, opt, v, b, s = torch_model(preset, threads, batch, seq)
    g = torch.Generator().manual_seed(2)
    print(json.dumps({"ready": True, "parameters": sum(p.numel() for p in model.parameters())}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        ids = torch.randint(0, v, (b, s), generator=g)
        t0 = time.perf_counter()
        if command == "train":
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)  # see torch_model
        elif command == "forward":
            with torch.no_grad():
                loss = model(input_ids=ids, labels=ids).loss
        else:
            sys.exit(f"unknown command {command!r}")
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "loss": loss.item()}), flush=True)
    print(json.dumps({"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}), flush=True)


def lockstep(a):
    extra = (["--batch", str(a.batch)] if a.batch else []) + (["--seq", str(a.seq)] if a.seq else [])
    commands = {
        "palimpsest": [a.palimpsest, "bench", "train", "--preset", a.preset, "--threads", str(a.threads), "--lockstep"] + extra,
        "pytorch": [sys.executable, os.path.abspath(__file__), "--worker", "--lockstep", "--preset", a.preset,
                    "--threads", str(a.threads)] + extra,
    }
    procs = {name: Engine(name, cmd) for name, cmd in commands.items()}
    params = {name: p.reply()["parameters"] for name, p in procs.items()}
    if params["palimpsest"] != params["pytorch"]:
        sys.exit(f"the two models differ: {params}")
    v, d, f, layers, heads, kv, b0, s0 = PRESETS[a.preset]
    tokens = (a.batch or b0) * (a.seq or s0)
    n = params["palimpsest"] - v * d
    flops = {"train": 6 * n + 12 * layers * (a.seq or s0) * d}
    flops["forward"] = flops["train"] / 3

    print(f"{a.preset}: {params['palimpsest']} parameters, {tokens} tokens per step, {a.threads} threads; "
          f"{a.steps} lockstep pairs per phase after one warm-up pair")
    results = {}
    for phase in ("train", "forward"):
        times = run_pairs(procs, phase, a.steps, a.pause)
        results[phase] = (times, ratio_stats(times, "pytorch", "palimpsest"))
    rss = {}
    for name, p in procs.items():
        rss[name] = p.close()["peak_rss_mib"]
    for phase, (times, (ratios, ratio, q1, q3)) in results.items():
        for name in procs:
            med = statistics.median(times[name])
            print(f"{name:10s} {phase:7s} {tokens / med:9.1f} tok/s {tokens * flops[phase] / med / 1e9:7.2f} GFLOP/s "
                  f"median step {med:.4f} s  peak RSS {rss[name]} MiB")
        print(f"{a.preset} {phase}: palimpsest/pytorch tokens/s, median of {len(ratios)} pair ratios "
              f"{ratio:.2f}x (quartiles {q1:.2f}-{q3:.2f}); peak RSS ratio {rss['palimpsest'] / rss['pytorch']:.2f}")


def torch_worker(preset, steps, threads, batch, seq):
    import torch
    model, opt, v, b, s = torch_model(preset, threads, batch, seq)
    d, layers = PRESETS[preset][1], PRESETS[preset][3]
    g = torch.Generator().manual_seed(2)
    times = []
    loss = None
    for step in range(steps + 1):
        ids = torch.randint(0, v, (b, s), generator=g)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)  # see torch_model
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
    ap.add_argument("--steps", type=int, default=10, help="lockstep pairs per phase (with --separate: steps per round)")
    ap.add_argument("--separate", action="store_true", help="whole loops in separate processes, round by round")
    ap.add_argument("--rounds", type=int, default=2, help="with --separate: rounds")
    ap.add_argument("--pause", type=float, default=0.05, help="seconds of rest before each lockstep step")
    ap.add_argument("--lockstep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--palimpsest", default=os.path.join(ROOT, ".build", "release", "palimpsest"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker and a.lockstep:
        torch_lockstep_worker(a.preset, a.threads, a.batch, a.seq)
        return
    if a.worker:
        torch_worker(a.preset, a.steps, a.threads, a.batch, a.seq)
        return
    if not os.path.exists(a.palimpsest):
        sys.exit(f"{a.palimpsest} not found: build it with `swift build -c release --product palimpsest`")
    if not a.separate:
        lockstep(a)
        return
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
                  f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}x); "
                  f"peak RSS ratio median {statistics.median(rss):.2f}")


if __name__ == "__main__":
    main()
