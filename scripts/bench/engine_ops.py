"""PyTorch timings of the engine's non-GEMM ops at the tiny model's shapes, for a side-by-side
comparison with `PALIMPSEST_BENCH=1 swift test -c release --filter EngineBenchmarks`.
Usage: /work/venv/bin/python scripts/bench/engine_ops.py  (2 threads, best of 20, ms)."""
import time
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
B, T, C, H, KV, D, I, V = 8, 128, 128, 4, 2, 32, 352, 2048


def bench(label, fn, repeats=20):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:34s} {best * 1e3:8.3f} ms")


x = torch.randn(B, T, C, requires_grad=True)
w = torch.randn(C, requires_grad=True)


def rms():
    v = x.pow(2).mean(-1, keepdim=True)
    (w * (x * torch.rsqrt(v + 1e-5))).sum().backward()


bench("rmsNorm fwd+bwd [1024,128]", rms)
q = torch.randn(B, T, H * D, requires_grad=True)
k = torch.randn(B, T, KV * D, requires_grad=True)
v = torch.randn(B, T, KV * D, requires_grad=True)


def attn(grad):
    qh = q.view(B, T, H, D).transpose(1, 2)
    kh = k.view(B, T, KV, D).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    vh = v.view(B, T, KV, D).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True)
    if grad:
        o.sum().backward()


with torch.no_grad():
    bench("attention fwd (no grad)", lambda: attn(False))
bench("attention fwd+bwd", lambda: attn(True))
g = torch.randn(B, T, I, requires_grad=True)
u = torch.randn(B, T, I, requires_grad=True)
bench("swiglu fwd+bwd [1024,352]", lambda: (F.silu(g) * u).sum().backward())
logits = torch.randn(B, T, V, requires_grad=True)
targets = torch.randint(0, V, (B, T))
with torch.no_grad():
    bench("logSoftmaxGather fwd [1024,2048]", lambda: logits.log_softmax(-1).gather(-1, targets[..., None]))
bench("crossEntropy fwd+bwd [1024,2048]", lambda: F.cross_entropy(logits.view(-1, V), targets.view(-1)).backward())
table = torch.randn(V, C, requires_grad=True)
bench("embedding fwd+bwd", lambda: F.embedding(targets, table).sum().backward())
a = torch.randn(B, T, C, requires_grad=True)
bench("add fwd+bwd [1024,128]", lambda: (x + a).sum().backward())
