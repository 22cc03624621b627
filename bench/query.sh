#!/usr/bin/env bash
# make bench, phases 2 and 3: queries and answers. The kit's cmp peers (Prometheus :9190 with a 7d
# out-of-order window, VictoriaMetrics :8528 without response cache) and a fresh Vigil (:9391) get
# byte-identical data by remote write (gen-remote-write.py: SERIES series x SPAN at 15 s, ending on an
# hour in the past); query_bench.py times bench/queries.txt as range queries on all three, alternating
# systems, REPS times each; compare.py then compares Prometheus and Vigil on the same queries and range.
# Usage: query.sh VIGIL_BINARY SERIES SPAN REPS STEP OUT_DIR    env: PEERS_KIT, PEERS_WORK
# Writes OUT_DIR/{gen.log,queries.json,compare.txt,compare.json,query.env}. Exit 0 even when the answers
# differ (query.env has compare_rc): the report decides; exit 1 when the harness itself breaks.
set -euo pipefail
VIGIL=$1 SERIES=$2 SPAN=$3 REPS=$4 STEP=$5 OUT=$6
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_KIT:?}/common.sh"
D=$W/data-query VPORT=9391
P=http://127.0.0.1:9190 V=http://127.0.0.1:8528 G=http://127.0.0.1:$VPORT
mkdir -p "$OUT"; E=$OUT/query.env; : >"$E"
put() { echo "$1=$2" >>"$E"; }
if alive q-vigil; then echo "q-vigil is already running (pid $(pid_of q-vigil))" >&2; exit 1; fi
trap 'stop_bg q-vigil >/dev/null; "$KIT/stop-peers.sh" cmp >/dev/null' EXIT
trap 'exit 130' INT TERM
rm -rf "$D" "$W/data-cmp"; mkdir -p "$D"

"$KIT/start-peers.sh" cmp
# Like the cmp Prometheus: no scraping, a 7d out-of-order window.
printf '%s\n' 'scrape_configs: []' 'storage: {tsdb: {out_of_order_time_window: 7d}}' >"$W/conf/vigil-query.yml"
start_bg q-vigil "$VPORT" "$VIGIL" --config.file="$W/conf/vigil-query.yml" --storage.tsdb.path="$D" \
  --web.listen-address="127.0.0.1:$VPORT" --log.level=warn
# A process that exits before its start time is read leaves "PID " in its pid file, which the kit's
# alive() would take for running: drop such a file rather than ever signal that pid.
read -r _ st <"$W/pids/q-vigil.pid" || st=
[ -n "$st" ] || { rm -f "$W/pids/q-vigil.pid"; echo "Vigil exited at once; see $W/logs/q-vigil.log" >&2; exit 1; }
WATCH=q-vigil wait_up "$G/-/ready"

END=$(( ($(date +%s) - 600) / 3600 * 3600 ))   # an hour boundary in the past: the same data every run
echo "phase 2: remote write of $SERIES series x $SPAN at 15 s into Prometheus, VictoriaMetrics and Vigil"
rc=0
python3 "$KIT/gen-remote-write.py" --series "$SERIES" --duration "$SPAN" --end "$END" \
  --url "$P/api/v1/write" --url "$V/api/v1/write" --url "$G/api/v1/write" 2>"$OUT/gen.log" || rc=$?
cat "$OUT/gen.log"
put gen_rc "$rc"
[ "$rc" = 0 ] || { echo "remote write failed (exit $rc): a receiver refused requests" >&2; exit 1; }
curl -fs -o /dev/null "$V/internal/force_flush"   # VictoriaMetrics makes fresh rows searchable ~1 s later otherwise
sleep 2
# The generator prints the range with full 30m windows: "--start S --end E".
read -r START STOP < <(sed -n 's/.*--start \([0-9]*\) --end \([0-9]*\).*/\1 \2/p' "$OUT/gen.log")
[ -n "${START:-}" ] && [ -n "${STOP:-}" ] || { echo "no query range in gen.log" >&2; exit 1; }
put start "$START"; put end "$STOP"; put step "$STEP"

rc=0
python3 "$HERE/query_bench.py" --system "prometheus=$P" --system "victoria-metrics=$V" --system "vigil=$G" \
  --queries "$HERE/queries.txt" --start "$START" --end "$STOP" --step "$STEP" --reps "$REPS" --out "$OUT/queries.json" || rc=$?
put query_bench_rc "$rc"
for n in cmp-prometheus cmp-victoria-metrics q-vigil; do
  put "$n.hwm_mib" "$(awk '$1 == "VmHWM:" {printf "%.1f", $2 / 1024}' "/proc/$(pid_of "$n")/status" 2>/dev/null || echo -)"
done

echo "phase 3: answers, Prometheus (A) vs Vigil (B), compare.py --rtol 1e-12"
rc=0
python3 "$KIT/compare.py" --a "$P" --b "$G" --queries "$HERE/queries.txt" --start "$START" --end "$STOP" \
  --step "$STEP" --mode range --rtol 1e-12 --fail-empty --timeout 300 --json "$OUT/compare.json" \
  >"$OUT/compare.txt" 2>&1 || rc=$?
cat "$OUT/compare.txt"
put compare_rc "$rc"
