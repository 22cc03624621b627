#!/usr/bin/env bash
# make bench / make bench-smoke: Vigil side by side with Prometheus 2.42 and VictoriaMetrics 1.79, the
# Debian packages run by ../shared/peers (nothing is downloaded). Usage: bench/run.sh full|smoke VIGIL_BINARY
#   1. scrape + ingest (bench/ingest.sh): all three scrape the same synthetic targets at once; CPU s, peak
#      RSS, data dir bytes, bytes/sample after each one's compaction, samples stored (checked equal);
#   2. queries (bench/query.sh, query_bench.py): identical remote-written data, bench/queries.txt timed as
#      range queries, systems alternating; median per query and system;
#   3. answers: the same queries compared Prometheus vs Vigil by compare.py (rtol 1e-12).
# Then bench/report.py prints the Markdown report ending in the line
#   ratio cpu=… rss=… disk=… query_p50_worst=… answers=identical|different
# full: 50 targets x 2,000 series every 5 s for 180 s; 10,000 series x 6 h; 5 repetitions (~6 min on 2
#       cores; at most 8 + 15 min: each phase runs under a time limit).
#       Writes bench/results/<date>-<commit>.md and the "make bench" part of BENCHMARKS.md.
# smoke: 5 targets x 1,000 series for 30 s; 1,000 series x 2 h; 1 repetition (< 2 min); writes nothing in
#       the repository. Both exit 1 when the harness breaks (a system stored nothing, counts differ, a
#       query fails, answers differ), never because of a ratio.
# Env: PEERS_WORK (default: a fresh temp dir, deleted after a successful run), PEERS_KIT (../shared/peers).
# Uses ports 127.0.0.1:9290, 8628, 9390 (phase 1), 9190, 8528, 9391 (phase 2), 19000.. (targets).
set -euo pipefail
MODE=${1:-} VIGIL=${2:-}
case $MODE in
full)  DUR=180 N=50 S=2000 QS=10000 QSPAN=6h REPS=5 STEP=60 LIMIT1=480 LIMIT2=900 ;;
smoke) DUR=30 N=5 S=1000 QS=1000 QSPAN=2h REPS=1 STEP=60 LIMIT1=150 LIMIT2=150 ;;
*) echo "usage: bench/run.sh full|smoke VIGIL_BINARY" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd) B=$(cd "$(dirname "$0")" && pwd)
fail() { echo "bench: FAILED: $*" >&2; exit 1; }
[ -x "$VIGIL" ] || fail "no Vigil binary at '$VIGIL'"
VIGIL=$(cd "$(dirname "$VIGIL")" && pwd)/$(basename "$VIGIL")
export PEERS_KIT=${PEERS_KIT:-$ROOT/../shared/peers}
[ -f "$PEERS_KIT/common.sh" ] || fail "the peers kit is missing at $PEERS_KIT"
for p in prometheus victoria-metrics python3 curl; do
  command -v $p >/dev/null || fail "$p is not installed (run $PEERS_KIT/install.sh)"
done
TMP=
if [ -z "${PEERS_WORK:-}" ]; then TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench.XXXXXX"); export PEERS_WORK=$TMP; fi
mkdir -p "$PEERS_WORK/bench"
# Safety net: whatever a phase left running is stopped by its recorded pid (stop-peers.sh all only
# reads $PEERS_WORK/pids, i.e. what this run started).
trap '[ ! -d "$PEERS_WORK/pids" ] || "$PEERS_KIT/stop-peers.sh" all >/dev/null 2>&1' EXIT
R=$PEERS_WORK/bench T0=$(date +%s)
echo "bench ($MODE): Vigil $VIGIL, work dir $PEERS_WORK"

# Each phase runs under a time limit; on TERM its own trap stops what it started.
ok=1
timeout -k 90 "$LIMIT1" "$B/ingest.sh" "$VIGIL" "$DUR" "$N" "$S" "$R/ingest.env" || { rc=$?; ok=0; echo "bench: phase 1 failed (exit $rc)" >&2; }
timeout -k 90 "$LIMIT2" "$B/query.sh" "$VIGIL" "$QS" "$QSPAN" "$REPS" "$STEP" "$R/query" || { rc=$?; ok=0; echo "bench: phases 2-3 failed (exit $rc)" >&2; }

OUT=() 
if [ "$MODE" = full ]; then
  C=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  OUT=(--out "$B/results/$(date -u +%F)-$C.md" --benchmarks "$ROOT/BENCHMARKS.md")
else
  OUT=(--out "$R/report.md")
fi
rc=0
python3 "$B/report.py" --work "$R" --mode "$MODE" --targets "$N" --series "$S" --window "$DUR" \
  --q-series "$QS" --q-span "$QSPAN" --vigil "$VIGIL" --repo "$ROOT" "${OUT[@]}" || rc=$?
echo "bench ($MODE) took $(( $(date +%s) - T0 )) s"
[ "$ok" = 1 ] && [ "$rc" = 0 ] || fail "the harness check failed; logs and data are in $PEERS_WORK"
[ -z "$TMP" ] || rm -rf "$TMP"
