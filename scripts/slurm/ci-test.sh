#!/usr/bin/env bash
# End-to-end test of the Slurm executor (CI runs it after the test suite, as root on a fresh
# machine): starts the one-node cluster of local-cluster.sh (installing Slurm if missing), runs
# the built-in `smoke` experiment once with the local executor and once through Slurm, waits
# for the jobs (bounded), and checks that the metrics are byte-equal. Stops the cluster on exit.
#
#   scripts/slurm/ci-test.sh                 # needs .build/release/palimpsest (or PALIMPSEST_BIN)
#
# PALIMPSEST_SLURM_CI_TIMEOUT (seconds, default 900) bounds the wait for the jobs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN="${PALIMPSEST_BIN:-$ROOT/.build/release/palimpsest}"
TIMEOUT="${PALIMPSEST_SLURM_CI_TIMEOUT:-900}"
[ -x "$BIN" ] || { echo "ci-test: $BIN not found; build it first: swift build -c release --product palimpsest" >&2; exit 1; }
BIN=$(readlink -f "$BIN")

START=$(date +%s)
WORK=$(mktemp -d /tmp/palimpsest-slurm-ci.XXXXXX)
export PALIMPSEST_SLURM_STATE="$WORK/cluster"
export SLURM_CONF="$PALIMPSEST_SLURM_STATE/slurm.conf"
# Results are bit-reproducible for a fixed thread count: both runs use the same one (Slurm
# tasks inherit the environment of sbatch).
export PALIMPSEST_THREADS="${PALIMPSEST_THREADS:-2}"

cleanup() {
  local rc=$?
  if [ -n "${JOBS:-}" ] && command -v scancel >/dev/null; then scancel ${JOBS//,/ } 2>/dev/null || true; fi
  bash scripts/slurm/local-cluster.sh stop || true
  if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "ci-test: FAILED (rc $rc); files kept in $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo "== ci-test [$(( $(date +%s) - START ))s] $*"; }

step "starting the one-node Slurm cluster"
bash scripts/slurm/local-cluster.sh start

"$BIN" demo --print-spec smoke > "$WORK/smoke.yaml"

step "smoke with the local executor"
"$BIN" run "$WORK/smoke.yaml" --out "$WORK/local"

step "smoke through Slurm"
"$BIN" run "$WORK/smoke.yaml" --executor slurm --out "$WORK/slurm" --time 30 | tee "$WORK/submit.log"
JOBS=$(grep -oE '"(jobID|reportJobID)" : "[0-9]+"' "$WORK/slurm/slurm/jobs.json" | grep -oE '[0-9]+' | paste -sd, -)
[ -n "$JOBS" ] || { echo "ci-test: no jobs recorded in $WORK/slurm/slurm/jobs.json" >&2; exit 1; }
REPORT_JOB=$(grep -oE '"reportJobID" : "[0-9]+"' "$WORK/slurm/slurm/jobs.json" | grep -oE '[0-9]+' | tail -1)

show_logs() {
  "$BIN" status "$WORK/slurm" || true
  squeue -h -r -t all -j "$JOBS" -o '%i %T %r' 2>/dev/null || true
  for f in "$WORK"/slurm/slurm/logs/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
  tail -n 20 "$PALIMPSEST_SLURM_STATE"/log/*.log 2>/dev/null || true
}

step "waiting for jobs $JOBS (at most ${TIMEOUT}s)"
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  active=$(squeue -h -j "$JOBS" -o '%i' 2>/dev/null | wc -l || true)
  [ "$active" = 0 ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "ci-test: Slurm jobs still active after ${TIMEOUT}s" >&2; show_logs >&2; exit 1
  fi
  sleep 1
done
"$BIN" status "$WORK/slurm"
state=$(scontrol show job "$REPORT_JOB" 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | cut -d= -f2 || true)
if [ "$state" != COMPLETED ] || [ ! -f "$WORK/slurm/metrics.jsonl" ]; then
  echo "ci-test: the report job $REPORT_JOB ended as '${state:-unknown}'" >&2; show_logs >&2; exit 1
fi

step "comparing metrics"
fail=0
n=0
for f in metrics.jsonl metrics.csv comparisons.jsonl $(cd "$WORK/local" && find units -name 'metrics.jsonl' -o -name 'comparisons.jsonl' | sort); do
  n=$((n + 1))
  if ! cmp -s "$WORK/local/$f" "$WORK/slurm/$f"; then
    echo "ci-test: $f differs between the local and the Slurm run" >&2
    diff <(head -c 2000 "$WORK/local/$f") <(head -c 2000 "$WORK/slurm/$f" 2>/dev/null) >&2 || true
    fail=1
  fi
done
[ "$fail" = 0 ] || exit 1
[ "$(wc -l < "$WORK/local/metrics.jsonl")" -gt 0 ] || { echo "ci-test: no metrics were written" >&2; exit 1; }
echo "$n metrics files are byte-equal"

step "submitting again: nothing is left to run"
"$BIN" run "$WORK/smoke.yaml" --executor slurm --out "$WORK/slurm" | tee "$WORK/resubmit.log"
grep -q "nothing to submit" "$WORK/resubmit.log" || { echo "ci-test: the second submission did not skip the finished units" >&2; exit 1; }

step "passed"
