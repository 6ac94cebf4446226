#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer for a bounded time (Linux; see docs/hostile-inputs.md).
#
#   bash scripts/fuzz.sh [SECONDS [TARGET ...]]     default: 25 s for each target
#   FUZZ_SEED=N bash scripts/fuzz.sh ...            libFuzzer's seed (default: a fresh one each run)
#
# CI passes a fixed FUZZ_SEED so that it replays the same inputs every time (a gate, not a
# search); fuzzing with fresh seeds for longer is how new findings are made (docs/hostile-inputs.md).
#
# Builds Sources/Fuzz (one binary, the target chosen by its first argument) with coverage
# instrumentation into .build/fuzz, separate from the ordinary build, linking libFuzzer's
# no-main runtime so the binary keeps its own main. Each target starts from the seed corpus in
# Fuzz/corpus/TARGET; new inputs go to .build/fuzz/corpus/TARGET, a crashing, hanging or
# over-allocating input to .build/fuzz/findings/TARGET. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
SECONDS_PER_TARGET="${1:-25}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(safetensors config tokenizer tokenizer-config encode spec stages dataset adapter-config score-input)

if [ "$(uname -s)" != Linux ]; then
    echo "fuzz.sh: libFuzzer with Swift is set up for Linux only; skipping" >&2
    exit 0
fi
SWIFTC="$(readlink -f "$(command -v swiftc)")"
RUNTIME="$(ls "$(dirname "$SWIFTC")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a 2>/dev/null | head -1)"
[ -n "$RUNTIME" ] || { echo "fuzz.sh: libclang_rt.fuzzer_no_main not found next to $SWIFTC" >&2; exit 1; }

BUILD=.build/fuzz
start=$(date +%s)
# -sanitize=fuzzer reaches only the frontend (coverage instrumentation): given to the driver it
# would also link libFuzzer's own main.
swift build -c release --build-path "$BUILD" --product palimpsest-fuzz \
    -Xswiftc -Xfrontend -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING \
    -Xcc -fsanitize=fuzzer-no-link \
    -Xlinker "$RUNTIME" -Xlinker -lstdc++
BIN="$BUILD/release/palimpsest-fuzz"
echo "fuzz.sh: build took $(( $(date +%s) - start )) s"

# Swift's backtracer would otherwise catch the trap before libFuzzer saves the input.
export SWIFT_BACKTRACE=enable=no
SEED_ARGS=()
[ -z "${FUZZ_SEED:-}" ] || SEED_ARGS=(-seed="$FUZZ_SEED")
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$BUILD/corpus/$t" "$BUILD/findings/$t"
    log="$BUILD/$t.log"
    echo "fuzz.sh: $t for $SECONDS_PER_TARGET s"
    if ! "$BIN" "$t" ${SEED_ARGS[@]+"${SEED_ARGS[@]}"} -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
            -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t/" \
            "$BUILD/corpus/$t" "Fuzz/corpus/$t" > "$log" 2>&1; then
        echo "fuzz.sh: $t FOUND A PROBLEM (input in $BUILD/findings/$t/):" >&2
        grep -E "ERROR|==|Fatal|Test unit written|SUMMARY" "$log" | head -20 >&2
        # The input itself, so that a finding on a CI machine can be reproduced from its log.
        for f in "$BUILD/findings/$t"/*; do
            [ -f "$f" ] || continue
            echo "fuzz.sh: $(basename "$f") ($(wc -c < "$f") bytes), first 512 as C escapes:" >&2
            head -c 512 "$f" | od -An -c | tr -s ' ' >&2
        done
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "fuzz.sh: $t: ${runs:-?} runs, ${speed:-?} exec/s"
done
echo "fuzz.sh: total $(( $(date +%s) - start )) s"
exit $status
