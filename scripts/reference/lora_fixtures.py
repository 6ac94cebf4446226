#!/usr/bin/env python3
"""LoRA reference fixtures for Tests/ModelsTests (run with /work/venv/bin/python).

    lora_fixtures.py              write the fixtures into Tests/ModelsTests/Fixtures/
    lora_fixtures.py verify DIR.. load adapters Palimpsest saved with PEFT (PeftModel.from_pretrained) on
                                  their base checkpoint and compare logits with DIR/palimpsest_logits.json.
                                  The directories come from
                                  PALIMPSEST_EXPORT_DIR=/tmp/lx swift test --filter LoRAExportTests
                                  (then: lora_fixtures.py verify /tmp/lx/*)

Each fixture applies a PEFT LoraConfig to one of the committed model fixtures (model_fixtures.py)
and sets A and B to seeded random values (B non-zero, so the adapters change the output), then writes
  lora_NAME/                        the adapter as PEFT saves it (adapter_config.json + adapter_model.safetensors)
  lora_NAME.reference.json          base fixture, input ids, labels, loss
  lora_NAME.reference.safetensors   logits [B, T, V] and the loss gradient of every lora_A / lora_B weight
                                    (PEFT's saved names, without ".default")
"""
import json
import os
import shutil
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures")

# name: (base fixture, LoraConfig arguments, seed)
CASES = {
    "llama": ("llama_linear", dict(r=4, lora_alpha=8, lora_dropout=0.0,
                                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]), 7),
    # Non-integer scale (3/2), a subset of modules, biases on q/k/v, tied embeddings.
    "qwen2": ("qwen2_sharded", dict(r=2, lora_alpha=3, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"]), 8),
}

B, T = 2, 9
PROMPT = [3, 5]  # the first PROMPT[b] labels of row b are -100


def write_case(name, base, lora_args, seed):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(os.path.join(OUT, base), dtype=torch.float32)
    config = LoraConfig(task_type="CAUSAL_LM", bias="none", **lora_args)
    peft_model = get_peft_model(model, config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_" in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    peft_model.train()  # dropout is 0, so train mode changes nothing but enables gradients
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (B, T), generator=g)
    labels = ids.clone()
    for b in range(B):
        labels[b, :PROMPT[b]] = -100
    out = peft_model(input_ids=ids, labels=labels)
    out.loss.backward()
    tensors = {"logits": out.logits.detach().contiguous()}
    for pname, p in peft_model.named_parameters():
        if p.requires_grad:
            assert "lora_" in pname, pname
            tensors[pname.replace(".default", "")] = p.grad.detach().contiguous()
    adapter_dir = os.path.join(OUT, f"lora_{name}")
    shutil.rmtree(adapter_dir, ignore_errors=True)
    peft_model.peft_config["default"].base_model_name_or_path = base
    peft_model.save_pretrained(adapter_dir)
    os.remove(os.path.join(adapter_dir, "README.md"))  # PEFT's model card template
    save_file(tensors, os.path.join(OUT, f"lora_{name}.reference.safetensors"))
    with open(os.path.join(OUT, f"lora_{name}.reference.json"), "w") as f:
        json.dump({"base": base, "input_ids": ids.tolist(), "labels": labels.tolist(), "loss": float(out.loss),
                   "scaling": lora_args["lora_alpha"] / lora_args["r"]}, f)
    # Merged model gives the same logits (PEFT's own merge, as a sanity check of the fixture).
    with torch.no_grad():
        merged = peft_model.merge_and_unload()
        delta = float((merged(input_ids=ids).logits - out.logits.detach()).abs().max())
    print(f"lora_{name}: loss {float(out.loss):.6f}, {len(tensors) - 1} gradients, merged logits max|delta| {delta:.2e}")


def verify(directory):
    """Loads a Palimpsest-saved adapter with PEFT on its base checkpoint and compares logits."""
    with open(os.path.join(directory, "palimpsest_logits.json")) as f:
        ref = json.load(f)
    base = AutoModelForCausalLM.from_pretrained(os.path.join(directory, "base"), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, os.path.join(directory, "adapter"))
    model.eval()
    ids = torch.tensor(ref["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    theirs = torch.tensor(ref["logits"]).reshape(logits.shape)
    delta = float((logits - theirs).abs().max())
    scale = float(logits.abs().max())
    with model.disable_adapter(), torch.no_grad():
        effect = float((model(input_ids=ids).logits - logits).abs().max())
    ok = delta <= 1e-4 * scale and effect > 1e-3
    print(f"{directory}: PEFT {type(model).__name__} logits max|delta| {delta:.3e} (max|logit| {scale:.3f}; "
          f"the adapter moves logits by up to {effect:.3f}) -> {'OK' if ok else 'MISMATCH'}")
    return ok


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "verify":
        sys.exit(0 if all([verify(d) for d in sys.argv[2:]]) else 1)
    torch.set_num_threads(1)
    for name, (base, args, seed) in CASES.items():
        write_case(name, base, args, seed)


if __name__ == "__main__":
    main()
