"""Reference values for the engine's ops from HF transformers' own Llama modules (PyTorch, fp32).

Writes Tests/EngineTests/Fixtures/engine_ops.json: inputs, outputs and gradients of
L = sum(out * r) for LlamaRMSNorm, apply_rotary_pos_emb with Llama-3-scaled frequencies and a
position offset, eager GQA causal attention (repeat_kv), SiLU·up, log-softmax gather and
cross-entropy with ignore_index. Usage: /work/venv/bin/python scripts/reference/engine_ops.py
"""
import json
import pathlib
import torch
import torch.nn.functional as F
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb, eager_attention_forward)

torch.manual_seed(1234)
out = {}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def leaf(*shape):
    return torch.randn(*shape, dtype=torch.float32, requires_grad=True)


# RMSNorm over [2, 3, 8]
x, w = leaf(2, 3, 8), leaf(8)
norm = LlamaRMSNorm(8, eps=1e-6)
norm.weight = torch.nn.Parameter(w.detach().clone())
y = norm(x)
r = torch.randn_like(y)
(y * r).sum().backward()
out["rmsnorm"] = dict(x=flat(x), w=flat(w), eps=1e-6, y=flat(y), r=flat(r), dx=flat(x.grad), dw=flat(norm.weight.grad))

# RoPE, Llama-3 scaling, head_dim 8, 3 heads, positions 3..<8, input laid out [B, T, H*D]
cfg = LlamaConfig(hidden_size=24, num_attention_heads=3, num_key_value_heads=3, head_dim=8, max_position_embeddings=64,
                  rope_theta=500000.0,
                  rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                    original_max_position_embeddings=16))
rot = LlamaRotaryEmbedding(cfg)
B, T, H, D, off = 2, 5, 3, 8, 3
q = leaf(B, T, H * D)
pos = torch.arange(off, off + T)[None].expand(B, T)
cos, sin = rot(q, pos)
qh = q.view(B, T, H, D).transpose(1, 2)
q_rot, _ = apply_rotary_pos_emb(qh, qh, cos, sin)
q_rot = q_rot.transpose(1, 2).reshape(B, T, H * D)
r = torch.randn_like(q_rot)
(q_rot * r).sum().backward()
out["rope"] = dict(batch=B, length=T, heads=H, headDim=D, offset=off, invFreq=flat(rot.inv_freq), x=flat(q), y=flat(q_rot),
                   r=flat(r), dx=flat(q.grad))

# Eager GQA causal attention: 4 query heads over 2 kv heads, head_dim 4, T = 5
B, T, H, KV, D = 2, 5, 4, 2, 4
q, k, v = leaf(B, T, H * D), leaf(B, T, KV * D), leaf(B, T, KV * D)


class Module(torch.nn.Module):
    num_key_value_groups = H // KV
    training = False


mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
o, _ = eager_attention_forward(Module(), q.view(B, T, H, D).transpose(1, 2), k.view(B, T, KV, D).transpose(1, 2),
                               v.view(B, T, KV, D).transpose(1, 2), mask, scaling=D ** -0.5)
o = o.reshape(B, T, H * D)
r = torch.randn_like(o)
(o * r).sum().backward()
out["attention"] = dict(batch=B, length=T, heads=H, kvHeads=KV, headDim=D, q=flat(q), k=flat(k), v=flat(v), y=flat(o),
                        r=flat(r), dq=flat(q.grad), dk=flat(k.grad), dv=flat(v.grad))

# SwiGLU product
g, u = leaf(3, 7), leaf(3, 7)
y = F.silu(g) * u
r = torch.randn_like(y)
(y * r).sum().backward()
out["swiglu"] = dict(gate=flat(g), up=flat(u), y=flat(y), r=flat(r), dgate=flat(g.grad), dup=flat(u.grad))

# Log-softmax gather and cross-entropy with ignore_index -100, logits [2, 3, 11]
logits = leaf(2, 3, 11)
targets = torch.tensor([[1, 10, -100], [0, 5, 7]])
logp = logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1) * (targets != -100)
r = torch.randn_like(logp)
(logp * r).sum().backward()
gather_grad = logits.grad.clone()
logits.grad = None
ce = F.cross_entropy(logits.view(-1, 11), targets.view(-1), ignore_index=-100)
ce.backward()
out["loss"] = dict(logits=flat(logits), targets=targets.reshape(-1).tolist(), logp=flat(logp), r=flat(r),
                   dlogitsGather=flat(gather_grad), ce=float(ce), dlogitsCE=flat(logits.grad))

path = pathlib.Path(__file__).resolve().parents[2] / "Tests/EngineTests/Fixtures/engine_ops.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, separators=(",", ":")))
print("wrote", path, path.stat().st_size, "bytes")
