#!/usr/bin/env bash
# Capture cost (issue 12): sysbench oltp_write_only against a leader mariadbd with its
# binlog on (ROW, FULL), direct vs through shoal with [capture] mode = "local" (every
# write transaction runs as XA and commits once its row images are fsynced in shoal's
# WAL), and through a shoal without capture (the proxy's own share), alternating per pair,
# in one run. Prints the ratios (target >= 0.6x direct).
#
# Environment: CAPTURE_THREADS="8 32", CAPTURE_SECONDS=20, CAPTURE_PAIRS=3,
# BENCH_TABLE_SIZE=100000, SHOAL_BIN (default target/release/shoal).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=proxy-tests/bench/lib.sh
source "$HERE/lib.sh"
: "${CAPTURE_THREADS:=8 32}" "${CAPTURE_SECONDS:=20}" "${CAPTURE_PAIRS:=3}" "${BENCH_TABLE_SIZE:=100000}"
export BENCH_TABLE_SIZE
bench_start capture

start_mariadb "$BENCH_TMP/db" --server-id=1 --log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL
[ "$(sql -e 'SELECT @@log_bin')" = 1 ] || die "the leader's binlog is off"
prepare_sysbench
start_shoal "$BENCH_TMP/shoal-plain" 64
PLAIN_PORT=$SHOAL_PORT
SHOAL_EXTRA_TOML="[node]
data_dir = \"$BENCH_TMP/shoal/data\"
[capture]
mode = \"local\"
[binlog]
server_id = 9100" start_shoal "$BENCH_TMP/shoal" 64

RESULTS="$BENCH_TMP/capture.tsv"
: >"$RESULTS"
for threads in $CAPTURE_THREADS; do
  for pair in $(seq 1 "$CAPTURE_PAIRS"); do
    read -r dqps dp95 _ derr _ <<<"$(run_sysbench oltp_write_only "$threads" auto "$DB_PORT" "$CAPTURE_SECONDS")"
    read -r sqps sp95 _ serr _ <<<"$(run_sysbench oltp_write_only "$threads" auto "$SHOAL_PORT" "$CAPTURE_SECONDS")"
    read -r pqps pp95 _ _ _ <<<"$(run_sysbench oltp_write_only "$threads" auto "$PLAIN_PORT" "$CAPTURE_SECONDS")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$threads" "$pair" "$dqps" "$dp95" "$derr" "$sqps" "$sp95" "$serr" "$pqps" >>"$RESULTS"
    log "write_only threads=$threads pair $pair: direct $dqps qps p95 $dp95 ms | shoal+capture $sqps qps p95 $sp95 ms | shoal without capture $pqps qps"
  done
done
api=$(sed -n 's/^bind_address = "\(.*\)"/\1/p' "$BENCH_TMP/shoal/shoal.toml" | head -1)
scrape=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://$api/metrics').read().decode())" 2>/dev/null || true)
entries=$(awk '/^shoal_capture_transactions_total\{outcome="committed"\}/ {print $2}' <<<"$scrape")
wait_sum=$(awk '/^shoal_capture_durable_wait_seconds_sum/ {print $2}' <<<"$scrape")
wait_count=$(awk '/^shoal_capture_durable_wait_seconds_count/ {print $2}' <<<"$scrape")
python3 - "$RESULTS" "${entries:-?}" "${wait_sum:-0}" "${wait_count:-0}" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print("\n### Capture: oltp_write_only, direct vs through shoal with [capture] mode = \"local\"\n")
print("| threads | direct qps | shoal+capture qps | ratio to direct | shoal without capture qps | capture's own ratio | direct p95 ms | shoal+capture p95 ms |")
print("|---|---|---|---|---|---|---|---|")
for t in sorted({r[0] for r in rows}, key=int):
    rs = [r for r in rows if r[0] == t]
    d = [float(r[2]) for r in rs]; s = [float(r[5]) for r in rs]
    p = [float(r[8]) for r in rs]
    ratio = statistics.median(b / a for a, b in zip(d, s) if a > 0)
    own = statistics.median(b / a for a, b in zip(p, s) if a > 0)
    print(f"| {t} | {statistics.median(d):.0f} | {statistics.median(s):.0f} | {ratio:.2f} | {statistics.median(p):.0f} | {own:.2f} | "
          f"{statistics.median(float(r[3]) for r in rs):.2f} | {statistics.median(float(r[6]) for r in rs):.2f} |")
wait_ms = float(sys.argv[3]) / max(float(sys.argv[4]), 1) * 1000
print(f"\ncommitted captured transactions: {sys.argv[2]}; mean XA PREPARE to durable: {wait_ms:.2f} ms (target ratio >= 0.60)")
PY
