#!/usr/bin/env bash
# Profiles shoal's hot path: a throwaway mariadbd + release shoal, sysbench through shoal,
# and `perf record` (cpu-clock, DWARF call graphs) attached to shoal; then a syscall
# count per query with `strace -c`.
#
#   bash proxy-tests/bench/profile.sh            # point_select, prepared, 32 threads, 15 s
#   PROFILE_TEST=oltp_point_select PROFILE_PS=disable PROFILE_THREADS=32 PROFILE_SECONDS=15 \
#     PROFILE_OUT=/tmp/shoal-profile bash proxy-tests/bench/profile.sh
#
# Writes to PROFILE_OUT (default: a temp dir, printed): perf.data, top-self.txt (functions
# by self time), top-children.txt (by inclusive time), folded.txt (collapsed stacks for
# any flamegraph tool, e.g. `inferno-flamegraph < folded.txt > flame.svg`), strace-*.txt.
# Needs perf (apt-get install linux-perf) — software event cpu-clock works where
# hardware counters are not exposed (VMs) — and strace.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=proxy-tests/bench/lib.sh
source "$HERE/lib.sh"

: "${PROFILE_TEST:=oltp_point_select}" "${PROFILE_PS:=auto}" "${PROFILE_THREADS:=32}" "${PROFILE_SECONDS:=15}"
: "${PROFILE_STRACE_EVENTS:=20000}" "${BENCH_POOL_MAX:=64}"
export BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-100000}"
SHOAL_BIN="${SHOAL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/shoal}"
command -v perf >/dev/null || die "perf not installed (apt-get install -y linux-perf)"
OUT="${PROFILE_OUT:-$(mktemp -d /tmp/shoal-profile.XXXXXX)}"
mkdir -p "$OUT"
BENCH_TMP="$(mktemp -d /tmp/shoal-bench.XXXXXX)"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$BENCH_TMP/bin" && cp "$SHOAL_BIN" "$BENCH_TMP/bin/shoal" && SHOAL_BIN="$BENCH_TMP/bin/shoal"

start_mariadb "$BENCH_TMP/db"
sql -e "CREATE USER $SB_USER@'%' IDENTIFIED BY '$SB_PASS'; GRANT ALL ON *.* TO $SB_USER@'%'; CREATE DATABASE $SB_DB;"
# shellcheck disable=SC2046
sysbench oltp_common $(sysbench_common "$DB_PORT") prepare >/dev/null
start_shoal "$BENCH_TMP/shoal" "$BENCH_POOL_MAX"

# Warm-up (pool filled, statements prepared), then record.
run_sysbench "$PROFILE_TEST" "$PROFILE_THREADS" "$PROFILE_PS" "$SHOAL_PORT" 3 >/dev/null
log "perf record on shoal pid $SHOAL_PID: $PROFILE_TEST ps=$PROFILE_PS threads=$PROFILE_THREADS ${PROFILE_SECONDS}s"
perf record -e cpu-clock -F 2999 --call-graph dwarf,16384 -p "$SHOAL_PID" -o "$OUT/perf.data" \
  >"$OUT/perf-record.log" 2>&1 &
PERF_PID=$!
BENCH_PIDS+=("$PERF_PID")
sleep 0.5
t0=$(cpu_ticks "$SHOAL_PID")
res=$(run_sysbench "$PROFILE_TEST" "$PROFILE_THREADS" "$PROFILE_PS" "$SHOAL_PORT" "$PROFILE_SECONDS")
t1=$(cpu_ticks "$SHOAL_PID")
kill -INT "$PERF_PID"
wait "$PERF_PID" || true
forget_pid "$PERF_PID"
read -r qps p95 queries _ _ <<<"$res"
echo "under perf: $qps qps, p95 $p95 ms, $queries queries, shoal CPU $(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / (queries > 0 ? queries : 1) )) us/query" \
  | tee "$OUT/summary.txt"

perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.5 \
  2>/dev/null | grep -v '^$' >"$OUT/top-self.txt" || true
perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none --percent-limit 2 \
  2>/dev/null | grep -v '^$' >"$OUT/top-children.txt" || true
perf script -i "$OUT/perf.data" 2>/dev/null | python3 "$HERE/collapse_perf.py" >"$OUT/folded.txt" || true

# Syscalls per query: strace -c over a fixed number of single-thread queries.
if command -v strace >/dev/null; then
  for ps in auto disable; do
    strace -c -f -p "$SHOAL_PID" -o "$OUT/strace-$ps.txt" &
    ST=$!
    BENCH_PIDS+=("$ST")
    sleep 1
    # shellcheck disable=SC2046
    sysbench oltp_point_select $(sysbench_common "$SHOAL_PORT") --threads=1 --events="$PROFILE_STRACE_EVENTS" \
      --time=0 --db-ps-mode="$ps" run >/dev/null 2>&1
    sleep 0.5
    kill -INT "$ST"
    wait "$ST" || true
    forget_pid "$ST"
    echo "strace ps=$ps: syscalls per query (over $PROFILE_STRACE_EVENTS point selects + connect):" | tee -a "$OUT/summary.txt"
    awk -v n="$PROFILE_STRACE_EVENTS" '$1 ~ /^[0-9.]+$/ && NF >= 5 { printf "  %-16s %6.2f\n", $NF, $4 / n }' \
      "$OUT/strace-$ps.txt" | sort -k2 -nr | head -8 | tee -a "$OUT/summary.txt"
  done
fi
log "profile in $OUT (top-self.txt, top-children.txt, folded.txt, summary.txt)"
