#!/usr/bin/env python3
"""Reference fixtures for `palimpsest score` and `palimpsest generate` (run with /work/venv/bin/python).

    score_fixtures.py      write Tests/EvaluationTests/Fixtures/score_llama/ and its reference files

What it writes:
  score_llama/                   a tiny random LlamaForCausalLM checkpoint (save_pretrained, safetensors)
                                 with a byte-level BPE tokenizer.json trained here by `tokenizers`
                                 (a TemplateProcessing post-processor that puts <s> first), so that
                                 `palimpsest score --model score_llama` runs on it as on any HF directory
  score_llama.input.jsonl        the input file: {"text"}, {"prompt", "response"} (and the "completion"
                                 spelling), a prompt whose last token merges with the response, an empty
                                 response, an empty text, non-ASCII text, a blank line
  score_llama.expected.jsonl     one line per input, as the issue defines the output: {"loglik", "tokens",
                                 "mean_loglik"} (null when nothing is scored), plus "input_ids" and
                                 "scored_from" (the first scored position) so a test can say which part differs
  score_llama.generate.json      greedy continuations from transformers' generate() and their decoded text

How a line is scored (the definition the Swift side must meet):
  text             ids = Tokenizer.encode(text).ids (special tokens included); every token after the first
  prompt/response  ids = encode(prompt + response); the tokens after the longest common prefix of those ids
                   and encode(prompt).ids, so a token that straddles the seam counts as the response's
  loglik           sum over scored positions t of log_softmax(logits[t - 1])[ids[t]], logits from
                   LlamaForCausalLM in float32 on the single unpadded sequence
"""
import json
import os
import shutil

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EvaluationTests", "Fixtures")
NAME = "score_llama"

CORPUS = [
    "The cat sat on the mat. The cat is black and the mat is red.",
    "Question: what is two plus two?\nAnswer: four.",
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Café au lait, crème brûlée — 日本語のテキスト 🙂 and more text.",
    "Hello world! Hello there, how are you today?",
    "Unlearning removes what a model learned from one stage of its training.",
] * 4

INPUTS = [
    {"text": "The cat sat on the mat."},
    {"prompt": "Question: what is two plus two?\nAnswer:", "response": " four."},
    {"prompt": "The capital of France is", "response": " Paris."},
    # "ca" + "t" merge across the seam: the merged token is scored as the response's.
    {"prompt": "The ca", "response": "t sat on the mat."},
    {"prompt": "Hello", "completion": " world!"},
    None,  # a blank line: skipped, not an input
    {"text": "Café au lait — 日本語 🙂"},
    {"prompt": "Hello", "response": ""},
    {"text": ""},
    {"text": "Unlearning removes what a model learned, stage by stage."},
]

GENERATE = [("The cat", 12), ("Question: what is", 10)]


def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return tok


def main():
    torch.manual_seed(20261130)
    tok = build_tokenizer()
    vocab = tok.get_vocab_size()
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=False, bos_token_id=bos, eos_token_id=eos,
                         pad_token_id=tok.token_to_id("<pad>"), max_position_embeddings=128)
    model = LlamaForCausalLM(config).eval()
    # Wider than HF's init (std 0.02) so logits are O(1) and greedy decoding has clear margins.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / max(p.shape[-1], 1) ** 0.5)
        model.lm_head.weight.mul_(4.0)  # sharper next-token distributions: wider greedy margins

    path = os.path.join(OUT, NAME)
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path, safe_serialization=True)
    tok.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=1)

    # Reload both from disk, as a user of transformers and tokenizers would.
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()

    def logprobs(ids):
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        return torch.log_softmax(logits.double(), dim=-1)

    lines, expected = [], []
    for item in INPUTS:
        if item is None:
            lines.append("")
            continue
        lines.append(json.dumps(item, ensure_ascii=False))
        if "text" in item:
            ids = tok.encode(item["text"]).ids
            first = 1
        else:
            response = item.get("response", item.get("completion"))
            ids = tok.encode(item["prompt"] + response).ids
            prompt_ids = tok.encode(item["prompt"]).ids
            common = 0
            while common < min(len(ids), len(prompt_ids)) and ids[common] == prompt_ids[common]:
                common += 1
            first = max(common, 1)
        lp = logprobs(ids)
        scored = [lp[t - 1, ids[t]].item() for t in range(first, len(ids))]
        loglik = float(sum(scored))
        expected.append({"loglik": loglik, "tokens": len(scored),
                         "mean_loglik": loglik / len(scored) if scored else None,
                         "input_ids": ids, "scored_from": first})

    with open(os.path.join(OUT, NAME + ".input.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, NAME + ".expected.jsonl"), "w") as f:
        for e in expected:
            f.write(json.dumps(e) + "\n")

    generations, min_gap = [], float("inf")
    for prompt, new in GENERATE:
        ids = tok.encode(prompt).ids
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=new,
                                 output_scores=True, return_dict_in_generate=True)
        tokens = out.sequences[0, len(ids):].tolist()
        for s in out.scores:
            top = torch.topk(s[0], 2).values
            min_gap = min(min_gap, (top[0] - top[1]).item())
        generations.append({"prompt": prompt, "max_new_tokens": new, "prompt_ids": ids, "tokens": tokens,
                            "text": tok.decode(tokens, skip_special_tokens=True)})
    with open(os.path.join(OUT, NAME + ".generate.json"), "w") as f:
        json.dump(generations, f, indent=1, ensure_ascii=False)
    print(f"vocab {vocab}; {len(expected)} scored inputs; smallest greedy top-1/top-2 logit gap {min_gap:.4f}")
    for e in expected:
        print(e["tokens"], round(e["loglik"], 4), e["input_ids"][:12])
    for g in generations:
        print(repr(g["prompt"]), "->", repr(g["text"]), g["tokens"])


if __name__ == "__main__":
    main()
