// Tokenizers: Hugging Face tokenizer.json encoding and decoding, chat templates, BPE training.
