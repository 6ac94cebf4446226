"""Reference for Training's StageTrainer: 3 SFT steps of AdamW on a tiny HF Llama.

Writes Tests/TrainingTests/Fixtures/loop_sft/{initial,final}/ (config.json + model.safetensors)
and loop_sft/run.json (examples, options, per-step losses). The Swift test loads `initial`, trains
with StageTrainer (no shuffling, batch 2, constant lr, AdamW with weight decay on matrices only),
and compares the parameters with `final`.

Run: /work/venv/bin/python scripts/reference/loop_fixtures.py
"""
import json
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TrainingTests", "Fixtures", "loop_sft")
torch.manual_seed(0)
torch.use_deterministic_algorithms(True)

config = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=10000.0,
                     max_position_embeddings=64, tie_word_embeddings=False, initializer_range=0.2,
                     attention_bias=False, mlp_bias=False)
model = LlamaForCausalLM(config).float()
model.save_pretrained(os.path.join(OUT, "initial"), safe_serialization=True)

gen = torch.Generator().manual_seed(1)
def rand_ids(n):
    return [int(x) for x in torch.randint(1, 40, (n,), generator=gen)]

# Six examples of different prompt/response lengths: 3 batches of 2 (right-padded with 0).
shapes = [(3, 5), (2, 7), (4, 4), (1, 6), (5, 3), (2, 2)]
examples = [{"prompt": rand_ids(p), "response": rand_ids(r)} for p, r in shapes]

lr, betas, eps, wd = 1e-2, (0.9, 0.999), 1e-8, 0.01
decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n and "bias" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "norm" not in n and "bias" not in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=lr, betas=betas, eps=eps, foreach=False)

losses = []
model.train()
for step in range(3):
    batch = examples[2 * step: 2 * step + 2]
    length = max(len(e["prompt"]) + len(e["response"]) for e in batch)
    ids, labels = [], []
    for e in batch:
        seq = e["prompt"] + e["response"]
        ids.append(seq + [0] * (length - len(seq)))
        labels.append([-100] * len(e["prompt"]) + e["response"] + [-100] * (length - len(seq)))
    out = model(input_ids=torch.tensor(ids), labels=torch.tensor(labels))
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    losses.append(out.loss.item())

model.save_pretrained(os.path.join(OUT, "final"), safe_serialization=True)
for d in ("initial", "final"):
    gc = os.path.join(OUT, d, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)
with open(os.path.join(OUT, "run.json"), "w") as f:
    json.dump({"examples": examples, "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
               "weight_decay": wd, "batch_size": 2, "losses": losses}, f)
print("losses", losses)
