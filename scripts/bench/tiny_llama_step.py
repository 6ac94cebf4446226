"""PyTorch forward+backward of HF LlamaForCausalLM at the tiny config, 2 threads, best of 8;
the Swift counterpart is TinyLlamaStepBenchmark (PALIMPSEST_BENCH=1 swift test -c release
--filter TinyLlamaStepBenchmark). Usage: /work/venv/bin/python scripts/bench/tiny_llama_step.py"""
import time
import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.set_num_threads(2)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=2048, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False)
model = LlamaForCausalLM(cfg)
B, T = 8, 128
ids = torch.randint(0, 2048, (B, T))
labels = torch.randint(0, 2048, (B, T))
fwd = total = float("inf")
for _ in range(8):
    t0 = time.perf_counter()
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits.view(-1, 2048), labels.view(-1))
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    model.zero_grad(set_to_none=True)
    fwd, total = min(fwd, t1 - t0), min(total, t2 - t0)
print(f"torch tiny llama step: forward {fwd * 1e3:.1f} ms, forward+backward {total * 1e3:.1f} ms, {B * T / total:.0f} tok/s")
