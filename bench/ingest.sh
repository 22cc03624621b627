#!/usr/bin/env bash
# make bench, phase 1: scrape + ingest. Prometheus (:9290), VictoriaMetrics (:8628) and Vigil (:9390)
# scrape the same synthetic targets (the kit's bench-targets.py on 127.0.0.1:19000..) at the same time,
# each into a fresh data dir under $PEERS_WORK/data-bench. The method is the kit's bench.sh (same
# targets, config, peers and helpers); on top of it, Vigil's own compaction (its snapshot block) is
# measured, and the samples each system stored in the window are counted for the equality check.
# Usage: ingest.sh VIGIL_BINARY DUR TARGETS SERIES OUT_FILE     env: PEERS_KIT, PEERS_WORK, INTERVAL=5
# Writes key=value lines (system.figure=value) to OUT_FILE; stops everything it started on exit.
set -euo pipefail
VIGIL=$1 DUR=$2 N=$3 S=$4 OUT=$5 I=${INTERVAL:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
. "${PEERS_KIT:?}/common.sh"   # W (=$PEERS_WORK), KIT, start_bg, stop_bg, alive, wait_up, stat_f, pid_of
D=$W/data-bench VPORT=9390
SYS="prometheus victoria-metrics vigil"
declare -A URL=([prometheus]=http://127.0.0.1:9290 [victoria-metrics]=http://127.0.0.1:8628 [vigil]=http://127.0.0.1:$VPORT)
declare -A DIR=([prometheus]=$D/prom [victoria-metrics]=$D/vm [vigil]=$D/vigil)
for n in $SYS targets; do
  if alive "bench-$n"; then echo "bench-$n is already running (pid $(pid_of "bench-$n"))" >&2; exit 1; fi
done
trap 'for n in vigil prometheus victoria-metrics targets; do stop_bg bench-$n >/dev/null; done' EXIT
trap 'exit 130' INT TERM
rm -rf "$D"; mkdir -p "$D/vigil" "$W/bench"; : >"$OUT"
put() { echo "$1=$2" >>"$OUT"; }

{ echo "# written by bench/ingest.sh: $N targets x ~$S series, every ${I}s"
  echo "global: {scrape_interval: ${I}s, scrape_timeout: ${I}s}"
  echo "scrape_configs: [{job_name: bench, static_configs: [{targets: ["
  for i in $(seq 0 $((N - 1))); do echo "  '127.0.0.1:$((19000 + i))',"; done
  echo "]}]}]"; } >"$W/conf/bench.yml"
TS=$(date +%s)
start_bg bench-targets 19000 python3 "$KIT/bench-targets.py" --targets "$N" --series "$S" --duration $((DUR + 600))
WATCH=bench-targets wait_up "http://127.0.0.1:$((19000 + N - 1))/metrics"
"$KIT/start-peers.sh" bench
start_bg bench-vigil "$VPORT" "$VIGIL" --config.file="$W/conf/bench.yml" --storage.tsdb.path="$D/vigil" \
  --web.listen-address="127.0.0.1:$VPORT" --web.enable-admin-api --log.level=warn
# A process that exits before its start time is read leaves "PID " in its pid file, which the kit's
# alive() would take for running: drop such a file rather than ever signal that pid.
read -r _ st <"$W/pids/bench-vigil.pid" || st=
[ -n "$st" ] || { rm -f "$W/pids/bench-vigil.pid"; echo "Vigil exited at once; see $W/logs/bench-vigil.log" >&2; exit 1; }
WATCH=bench-vigil wait_up "${URL[vigil]}/-/ready"
# Every system has started scraping (first scrape within one interval) before the window opens.
sleep $((I + 2))

HZ=$(getconf CLK_TCK)
cpu() { stat_f "$(pid_of "bench-$1")" 12-13 | awk -v hz="$HZ" '{printf "%.2f", ($1 + $2) / hz}' || true; }
busy() { awk -v hz="$HZ" '/^cpu /{printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat; }
mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$(pid_of "bench-$1")/status" 2>/dev/null || true; }
du_b() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}' || true; }
metric() { curl -fs "$1/metrics" | awk -v re="$2" '$0 ~ re {s += $NF} END {printf "%.0f", s}' || true; }
snapshot() {  # snapshot URL DATA_DIR KEY: POST the snapshot API; bytes and samples (from meta.json) of the result
  local t0 name; t0=$(date +%s.%N)
  name=$(curl -fs -XPOST "$1/api/v1/admin/tsdb/snapshot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["name"])') || {
    echo "snapshot of $1 failed" >&2; return 0; }
  put "$3.compact_s" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')"
  put "$3.compact_bytes" "$(du_b "$2/snapshots/$name")"
  put "$3.compact_samples" "$(python3 -c 'import json,sys; print(sum(json.load(open(f))["stats"]["numSamples"] for f in sys.argv[1:]))' \
    "$2"/snapshots/"$name"/*/meta.json 2>/dev/null || echo 0)"
}
declare -A C0
for s in $SYS targets; do C0[$s]=$(cpu $s); done
B0=$(busy) T0=$(date +%s)
put loadavg_start "$(cut -d' ' -f1 /proc/loadavg)"
echo "phase 1: measuring ${DUR}s: $SYS scraping $N targets x $S series every ${I}s"
sleep "$DUR"
T1=$(date +%s) B1=$(busy)
ours=0
for s in $SYS targets; do
  c=$(cpu $s); put "$s.cpu" "$(awk -v a="$c" -v b="${C0[$s]}" 'BEGIN {printf "%.2f", a - b}')"
  ours=$(awk -v o="$ours" -v a="$c" -v b="${C0[$s]}" 'BEGIN {printf "%.2f", o + a - b}')
done
put others_cpu "$(awk -v a="$B1" -v b="$B0" -v o="$ours" 'BEGIN {printf "%.2f", a - b - o}')"
put loadavg_end "$(cut -d' ' -f1 /proc/loadavg)"
put window_s $((T1 - T0))
for s in $SYS; do
  alive "bench-$s" || { echo "$s exited during the window; see $W/logs/bench-$s.log" >&2; exit 1; }
  put "$s.hwm_mib" "$(mib $s VmHWM)"; put "$s.rss_mib" "$(mib $s VmRSS)"
done
curl -fs -o /dev/null "${URL[victoria-metrics]}/internal/force_flush" || true   # VM buffers ~1 s of rows
for s in $SYS; do put "$s.dir_bytes" "$(du_b "${DIR[$s]}")"; done

# Compaction, each system's own: Prometheus writes its head as a snapshot block, VictoriaMetrics merges
# its parts, Vigil writes its head as a snapshot block (POST /api/v1/admin/tsdb/snapshot).
snapshot "${URL[prometheus]}" "${DIR[prometheus]}" prometheus
snapshot "${URL[vigil]}" "${DIR[vigil]}" vigil
t0=$(date +%s.%N)
curl -fs -o /dev/null "${URL[victoria-metrics]}/internal/force_merge"   # runs in the background
for _ in $(seq 120); do sleep 0.5; [ "$(metric "${URL[victoria-metrics]}" '^vm_active_force_merges')" = 0 ] && break; done
curl -fs -o /dev/null "${URL[victoria-metrics]}/internal/force_flush"
put victoria-metrics.compact_s "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')"
put victoria-metrics.compact_samples "$(metric "${URL[victoria-metrics]}" '^vm_rows\{type="storage/')"
put victoria-metrics.compact_bytes "$(du_b "${DIR[victoria-metrics]}")"
for s in $SYS; do put "$s.hwm_compact_mib" "$(mib $s VmHWM)"; done

# What each stored, through its own query API: the whole run (for bytes/sample), and the targets'
# own series in the window (for the equality check: every system scraped the same targets).
for s in $SYS; do
  for kv in $(python3 "$KIT/bench-stats.py" "${URL[$s]}" "$T1" $((T1 - TS + 60))); do put "$s.${kv%%=*}" "${kv#*=}"; done
  for kv in $(python3 "$HERE/window_count.py" "${URL[$s]}" "$T1" $((T1 - T0))); do put "$s.${kv%%=*}" "${kv#*=}"; done
done

echo "phase 1 done: $OUT"
