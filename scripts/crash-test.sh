#!/usr/bin/env bash
# Crash test (issue 11): runs the built-in `smoke` experiment once uninterrupted, then again in a
# second directory: first with a file-size limit (a full disk), then killed with SIGKILL at seeded
# random moments KILLS times, resumed after each kill, and finally run to the end. Passes when
#   - every metric, comparison and unit file (datasets, tokenizer, checkpoints) of the killed
#     run is byte-identical to the uninterrupted run's (done.json records hold timings and
#     are compared by unit instead), and
#   - `palimpsest status --verify` finds no leftover temporary file, no unknown unit directory,
#     no truncated JSON/JSONL/safetensors file, no checkpoint that fails to load or holds a
#     non-finite value, and every done.json matches its unit.
# Uses the release binary (built by `swift build -c release --product palimpsest`).
# Environment: KILLS (default 5), SEED (default 11), PALIMPSEST (binary), KEEP=1 keeps the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PALIMPSEST:-.build/release/palimpsest}
KILLS=${KILLS:-5}
SEED=${SEED:-11}
[ -x "$BIN" ] || { echo "crash-test: $BIN not found; build it with: swift build -c release --product palimpsest" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/palimpsest-crash.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "crash-test: runs kept in $work"; else trap 'rm -rf "$work"' EXIT; fi
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

done_units() { { grep -F '"event":"done"' "$1/log.jsonl" 2>/dev/null || true; } | wc -l; }

"$BIN" demo --print-spec smoke > "$work/smoke.yaml"
t0=$(now)
"$BIN" run "$work/smoke.yaml" --out "$work/reference" > "$work/reference.log" 2>&1 \
    || { cat "$work/reference.log" >&2; echo "crash-test: the uninterrupted run failed" >&2; exit 1; }
reference_seconds=$(since "$t0")
echo "crash-test: uninterrupted run: ${reference_seconds} s"

# Disk full, simulated with a file-size limit (RLIMIT_FSIZE; SIGXFSZ ignored so that write()
# fails with EFBIG as it does with ENOSPC on a full disk; works as root, unlike chmod): the
# first attempt of the second run must stop with an error naming the file and leave a store
# that verifies, which the attempts below then resume.
set +e
bash -c 'trap "" XFSZ; ulimit -f 256; exec "$0" run "$1" --out "$2"' "$BIN" "$work/smoke.yaml" "$work/killed" > "$work/diskfull.log" 2>&1
rc=$?
set -e
if [ "$rc" = 0 ] || ! grep -q "File too large" "$work/diskfull.log"; then
    cat "$work/diskfull.log" >&2; echo "crash-test: the run with a 256 KiB file-size limit did not fail with a clear error (rc $rc)" >&2; exit 1
fi
"$BIN" status --verify "$work/killed" > "$work/diskfull.verify" 2>&1 \
    || { cat "$work/diskfull.verify" >&2; echo "crash-test: the store is inconsistent after the disk-full failure" >&2; exit 1; }
echo "crash-test: disk full: failed cleanly ($(grep -m1 "File too large" "$work/diskfull.log" | cut -c1-160))"

# Kill points, seeded, scaled by the uninterrupted run's own unit times: kill i picks a unit
# the killed run has not finished yet, among those that took at least 0.5 s in the
# uninterrupted run (all when none did), from the first 1/(KILLS − i + 1) of them in that run's
# order, so the kills spread over the whole run (training, unlearning, comparison, report).
# The run is killed 10–50% of that unit's uninterrupted time after the unit starts, so every
# kill lands while a unit runs, however fast or slow the machine is (unless this run is over
# twice as fast as the uninterrupted one).
units=$("$BIN" status "$work/reference" | awk '/units finished/ { print $3 }')
# "unit seconds" per finished unit, in finishing order (log keys are sorted: seconds < time < unit).
grep -F '"event":"done"' "$work/reference/log.jsonl" \
    | sed -E 's/.*"seconds":"([0-9.]+)".*"unit":"([^"]*)".*/\2 \1/' > "$work/unit-seconds"
finished_ids() { { grep -F '"event":"done"' "$work/killed/log.jsonl" 2>/dev/null || true; } | sed -E 's/.*"unit":"([^"]*)".*/\1/'; }
starts() { { grep -F '"event":"start"' "$work/killed/log.jsonl" 2>/dev/null || true; } | grep -cF "\"unit\":\"$1\"" || true; }
pick() {
    finished_ids > "$work/killed-done"
    awk -v seed="$SEED" -v i="$1" -v n="$KILLS" '
        FILENAME == ARGV[1] { finished[$1] = 1; next }
        !($1 in finished) { id[m] = $1; s[m] = $2; m++; if ($2 >= 0.5) long++ }
        END {
            if (m == 0) exit
            for (k = 0; k < m; k++) if (long == 0 || s[k] >= 0.5) e[c++] = k
            srand(seed * 1000 + i)
            k = e[int(rand() * c / (n - i + 1))]
            printf "%s %.3f %.3f\n", id[k], s[k], (0.1 + 0.4 * rand()) * s[k]
        }' "$work/killed-done" "$work/unit-seconds"
}
t1=$(now)
landed=0
for i in $(seq 1 "$KILLS"); do
    read -r unit seconds delay <<< "$(pick "$i")" || true
    [ -n "${unit:-}" ] || { echo "crash-test: kill $i: every unit has finished already"; break; }
    before=$(starts "$unit")
    "$BIN" run "$work/smoke.yaml" --out "$work/killed" >> "$work/killed.log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ "$(starts "$unit")" -le "$before" ]; do sleep 0.05; done
    sleep "$delay"
    if kill -KILL "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        landed=$((landed + 1))
        echo "crash-test: kill $i: ${delay} s into unit ${unit//\\\//\/} (${seconds} s uninterrupted; units finished now: $(done_units "$work/killed") of $units)"
    else
        wait "$pid" 2>/dev/null || true
        echo "crash-test: kill $i: the run had already ended (warning: this kill tested nothing)"
    fi
done
"$BIN" run "$work/smoke.yaml" --out "$work/killed" >> "$work/killed.log" 2>&1 \
    || { tail -20 "$work/killed.log" >&2; echo "crash-test: the resumed run failed" >&2; exit 1; }
echo "crash-test: killed and resumed run: $(since "$t1") s"

fail=0
for dir in reference killed; do
    if ! "$BIN" status --verify "$work/$dir" > "$work/$dir.verify" 2>&1; then
        echo "crash-test: store check failed for the $dir run:" >&2; cat "$work/$dir.verify" >&2; fail=1
    fi
    if ! grep -q "store verified: no errors" "$work/$dir.verify"; then fail=1; fi
    total=$(awk '/units finished/ { print ($1 == $3) ? "all" : "some" }' "$work/$dir.verify")
    [ "$total" = all ] || { echo "crash-test: the $dir run did not finish every unit" >&2; fail=1; }
done
for f in metrics.jsonl metrics.csv comparisons.jsonl; do
    cmp -s "$work/reference/$f" "$work/killed/$f" || { echo "crash-test: $f differs from the uninterrupted run's" >&2; fail=1; }
done
# Every unit file but the timing records, by content.
checksums() { (cd "$1/units" && find . -type f ! -name done.json -print0 | sort -z | xargs -0 sha256sum); }
if ! diff <(checksums "$work/reference") <(checksums "$work/killed") > "$work/units.diff"; then
    echo "crash-test: unit files differ from the uninterrupted run's:" >&2; head -20 "$work/units.diff" >&2; fail=1
fi
# done.json records: same units, same outputs.
outputs() { (cd "$1/units" && for d in */; do printf '%s ' "$d"; grep -v '"seconds"' "$d/done.json" | tr -d ' \n'; echo; done); }
diff <(outputs "$work/reference") <(outputs "$work/killed") > /dev/null \
    || { echo "crash-test: done.json records differ" >&2; fail=1; }
if [ "$fail" = 0 ]; then
    echo "crash-test: passed ($landed of $KILLS kills mid-run, seed $SEED, $(since "$t0") s in all)"
else
    KEEP=1; trap - EXIT; echo "crash-test: FAILED; runs kept in $work" >&2; exit 1
fi
