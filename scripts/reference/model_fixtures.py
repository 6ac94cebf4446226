#!/usr/bin/env python3
"""Reference fixtures for Tests/ModelsTests (run with /work/venv/bin/python).

    model_fixtures.py              write the fixtures into Tests/ModelsTests/Fixtures/
    model_fixtures.py verify DIR.. load checkpoints Palimpsest wrote with transformers and compare
                                   their logits with DIR/palimpsest_logits.json. The directories come from
                                   PALIMPSEST_EXPORT_DIR=/tmp/px swift test --filter ExportTests
                                   (then: model_fixtures.py verify /tmp/px/*)

Each fixture model is a tiny random HF checkpoint saved with save_pretrained (safetensors), plus
  NAME.reference.json          input ids, attention mask, labels, loss, greedy generation
  NAME.reference.safetensors   logits [B, T, V] and the gradient of the loss for every parameter
Weights are drawn wider than HF's default init so logits are O(1) and greedy decoding has clear
margins (the script prints the smallest top-1/top-2 gap seen while generating).
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures")

MODELS = {
    # Llama 2 style: GQA, untied, no biases, linear rope scaling.
    "llama_linear": (LlamaForCausalLM, LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        rope_scaling={"rope_type": "linear", "factor": 2.0}, bos_token_id=1, eos_token_id=2,
        max_position_embeddings=128)),
    # Llama 3.2 style: tied, head_dim 12 != 32/4, llama3 rope scaling, attention and MLP biases.
    "llama3_tied": (LlamaForCausalLM, LlamaConfig(
        vocab_size=80, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=12, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True,
        attention_bias=True, mlp_bias=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
        bos_token_id=1, eos_token_id=[2, 3], max_position_embeddings=128)),
    # Qwen2.5 style: q/k/v biases, tied, GQA 4/1, sharded on disk.
    "qwen2_sharded": (Qwen2ForCausalLM, Qwen2Config(
        vocab_size=72, hidden_size=32, intermediate_size=56, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=5, max_position_embeddings=128)),
}

# Right-padded training batch: lengths 10, 7, 4; labels -100 on pads and on "prompt" tokens.
LENGTHS = [10, 7, 4]
PROMPT = [3, 0, 1]
T = max(LENGTHS)
GEN_PROMPTS = [[7, 19, 3, 11, 23], [5, 30]]
GEN_NEW = 32
PAD = 0


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def batch(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (len(LENGTHS), T), generator=g)
    mask = torch.zeros_like(ids)
    labels = ids.clone()
    for b, (n, p) in enumerate(zip(LENGTHS, PROMPT)):
        mask[b, :n] = 1
        ids[b, n:] = PAD
        labels[b, n:] = -100
        labels[b, :p] = -100
    return ids, mask, labels


def greedy_reference(model):
    """Batched left-padded greedy generation, checked against one prompt at a time."""
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD
    width = max(len(p) for p in GEN_PROMPTS)
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in GEN_PROMPTS])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in GEN_PROMPTS])
    out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=GEN_NEW, min_new_tokens=GEN_NEW,
                         output_scores=True, return_dict_in_generate=True)
    new = out.sequences[:, width:].tolist()
    margin = min(float((s.topk(2).values[:, 0] - s.topk(2).values[:, 1]).min()) for s in out.scores)
    for p, expect in zip(GEN_PROMPTS, new):
        single = model.generate(torch.tensor([p]), do_sample=False, max_new_tokens=GEN_NEW, min_new_tokens=GEN_NEW)
        assert single[0, len(p):].tolist() == expect, "batched and single greedy generation disagree"
    return new, margin


def write_model(name, cls, config, seed):
    torch.manual_seed(seed)
    model = cls(config).float()
    randomize(model, seed)
    model.eval()
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    shard = "20KB" if name.endswith("sharded") else "10GB"
    model.save_pretrained(path, safe_serialization=True, max_shard_size=shard)

    ids, mask, labels = batch(config.vocab_size, seed + 1)
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    tensors = {"logits": out.logits.detach().contiguous()}
    for pname, p in model.named_parameters():
        tensors["grad." + pname] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(OUT, name + ".reference.safetensors"))

    with torch.no_grad():
        generated, margin = greedy_reference(model)
    ref = {
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist(),
        "loss": float(out.loss), "max_abs_logit": float(out.logits.abs().max()),
        "generate": {"prompts": GEN_PROMPTS, "max_new_tokens": GEN_NEW, "new_tokens": generated,
                     "min_greedy_margin": margin},
    }
    with open(os.path.join(OUT, name + ".reference.json"), "w") as f:
        json.dump(ref, f)
    print(f"{name}: loss {float(out.loss):.6f}, max|logit| {ref['max_abs_logit']:.3f}, greedy margin {margin:.2e}, "
          f"params {sum(p.numel() for p in model.parameters())}")


def write_dtypes():
    """F32/F16/BF16 tensors for the reader, with the values torch converts them to."""
    g = torch.Generator().manual_seed(5)
    base = torch.randn(3, 5, generator=g) * 3
    base[0, 0] = 65504.0  # largest finite f16
    base[0, 1] = 1e-7     # subnormal in f16
    base[0, 2] = -0.0
    base[0, 3] = 1.00390625  # a BF16 tie case
    tensors = {"f32": base.clone(), "f16": base.to(torch.float16), "bf16": base.to(torch.bfloat16),
               "empty": torch.zeros(0, 4), "scalar": torch.tensor(2.5)}
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"), metadata={"format": "pt", "note": "dtypes"})
    expected = {k: {"shape": list(v.shape), "values": v.float().flatten().tolist()} for k, v in tensors.items()}
    # What F32 values become when rounded to each type, to check the writer.
    expected["round_f16"] = tensors["f16"].float().flatten().tolist()
    expected["round_bf16"] = tensors["bf16"].float().flatten().tolist()
    with open(os.path.join(OUT, "dtypes.json"), "w") as f:
        json.dump(expected, f)


def verify(directory):
    """Loads a Palimpsest-written checkpoint with transformers and compares logits."""
    from transformers import AutoModelForCausalLM
    with open(os.path.join(directory, "palimpsest_logits.json")) as f:
        ref = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    model.eval()
    ids = torch.tensor(ref["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    theirs = torch.tensor(ref["logits"]).reshape(logits.shape)
    delta = float((logits - theirs).abs().max())
    scale = float(logits.abs().max())
    ok = delta <= 1e-4 * scale
    print(f"{directory}: {type(model).__name__}, logits max|delta| {delta:.3e} (max|logit| {scale:.3f}) -> {'OK' if ok else 'MISMATCH'}")
    return ok


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "verify":
        sys.exit(0 if all([verify(d) for d in sys.argv[2:]]) else 1)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for i, (name, (cls, config)) in enumerate(MODELS.items()):
        write_model(name, cls, config, 100 + 10 * i)
    write_dtypes()


if __name__ == "__main__":
    main()
