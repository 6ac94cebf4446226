#!/usr/bin/env bash
# The whole test suite under the address sanitizer (an optimised build, in its own scratch
# directory so it does not disturb .build/release). Slow: run it by hand before a release, not in CI.
#
#     bash scripts/asan.sh [extra swift test arguments, e.g. --filter EngineTests]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-test-data.sh
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
exec swift test -c release --sanitize=address --scratch-path .build-asan "$@"
