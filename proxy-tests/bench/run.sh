#!/usr/bin/env bash
# shoal benchmark: `make bench` (after `cargo build --release`).
#
# Starts its own mariadbd and a release shoal, prepares sysbench tables, then
#   1. sysbench matrix, direct vs through shoal, alternating (A B A B ...) per pair;
#   2. connection scale: N idle clients held + M active point-select clients;
#   3. large result: a 1,000,000-row (~200 MB) SELECT streamed direct vs through shoal.
# Prints one markdown report and appends it to docs/benchmarks.md.
#
# Environment (defaults = the full matrix of issue 6, ~2.5 h on 2 cores):
#   BENCH_QUICK=1           quick preset: 5 s runs, 1 pair, threads "1 32", point_select +
#                           read_only, both ps modes, 10 s scale runs (~3 min in total)
#   BENCH_SECONDS=20        seconds per sysbench run
#   BENCH_PAIRS=3           direct/shoal pairs per cell (ratio = median of pair ratios)
#   BENCH_THREADS="1 8 32 128"
#   BENCH_TESTS="oltp_point_select oltp_read_only oltp_read_write oltp_write_only"
#   BENCH_PS_MODES="auto disable"   sysbench --db-ps-mode (auto = server-side prepared)
#   BENCH_TABLE_SIZE=100000 rows in the one sysbench table
#   BENCH_POOL_MAX=64       shoal [limits] pool_connections_max
#   BENCH_SCALE=1           run the connection-scale part
#   BENCH_IDLE=10000        idle clients;  BENCH_ACTIVE=2000 active clients
#   BENCH_SCALE_SECONDS=20  seconds per active point-select run in the scale part
#   BENCH_LARGE=1           run the large-result part
#   BENCH_LARGE_ROWS=1000000  rows;  BENCH_LARGE_PAIRS=$BENCH_PAIRS
#   BENCH_MATRIX=1          run the sysbench matrix
#   BENCH_FLOOR=0           1 = also run each pair through a null relay (proxy-tests/bench/nullrelay.rs: copies
#                           bytes, no MySQL logic): the floor of any proxy hop here (+50 % time)
#   BENCH_APPEND=1          append the report to docs/benchmarks.md
#   BENCH_NOTE=""           free text recorded with the results
#   BENCH_KEEP=0            keep the temp dir (logs) after a successful run
#   BENCH_SETUP=1           run proxy-tests/setup.sh first
#   SHOAL_BIN               default ${CARGO_TARGET_DIR:-target}/release/shoal
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=proxy-tests/bench/lib.sh
source "$HERE/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  : "${BENCH_SECONDS:=5}" "${BENCH_PAIRS:=1}" "${BENCH_THREADS:=1 32}"
  : "${BENCH_TESTS:=oltp_point_select oltp_read_only}" "${BENCH_SCALE_SECONDS:=10}"
fi
: "${BENCH_SECONDS:=20}" "${BENCH_PAIRS:=3}" "${BENCH_THREADS:=1 8 32 128}"
: "${BENCH_TESTS:=oltp_point_select oltp_read_only oltp_read_write oltp_write_only}"
: "${BENCH_PS_MODES:=auto disable}" "${BENCH_TABLE_SIZE:=100000}" "${BENCH_POOL_MAX:=64}"
: "${BENCH_SCALE:=1}" "${BENCH_IDLE:=10000}" "${BENCH_ACTIVE:=2000}" "${BENCH_SCALE_SECONDS:=20}"
: "${BENCH_LARGE:=1}" "${BENCH_LARGE_ROWS:=1000000}" "${BENCH_LARGE_PAIRS:=$BENCH_PAIRS}"
: "${BENCH_MATRIX:=1}" "${BENCH_FLOOR:=0}" "${BENCH_APPEND:=1}" "${BENCH_NOTE:=}"
export BENCH_TABLE_SIZE
SHOAL_BIN="${SHOAL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/shoal}"
[ -x "$SHOAL_BIN" ] || die "no shoal binary at $SHOAL_BIN (run cargo build --release, or make bench)"

if [ "${BENCH_SETUP:-1}" = 1 ]; then
  bash "$ROOT/proxy-tests/setup.sh"
fi
for tool in sysbench mariadb mariadb-install-db python3; do
  command -v "$tool" >/dev/null || die "$tool not installed"
done
# One fd per client in shoal and in the idle-client process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((BENCH_IDLE + BENCH_ACTIVE + 500)) ] || log "warning: ulimit -n $(ulimit -n) is low for $BENCH_IDLE + $BENCH_ACTIVE clients"

BENCH_TMP="$(mktemp -d /tmp/shoal-bench.XXXXXX)"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
# A private copy: the target dir may be shared, and a rebuild must not swap the binary mid-run.
mkdir -p "$BENCH_TMP/bin" && cp "$SHOAL_BIN" "$BENCH_TMP/bin/shoal"
SHOAL_BIN="$BENCH_TMP/bin/shoal"
"$SHOAL_BIN" --version >/dev/null || die "$SHOAL_BIN does not run"
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T_START=$(date +%s)

# ---------------------------------------------------------------- servers and data
start_mariadb "$BENCH_TMP/db"
prepare_sysbench
start_shoal "$BENCH_TMP/shoal" "$BENCH_POOL_MAX"
CLK_TCK=$(getconf CLK_TCK)
if [ "$BENCH_FLOOR" = 1 ] && [ "$BENCH_MATRIX" = 1 ]; then
  relay_target="${CARGO_TARGET_DIR:-$ROOT/target}"
  (cd "$ROOT" && cargo build --release -q --example nullrelay) || die "cannot build the nullrelay example"
  RELAY_PORT=$(free_port)
  "$relay_target/release/examples/nullrelay" "127.0.0.1:$RELAY_PORT" "127.0.0.1:$DB_PORT" 2>"$BENCH_TMP/relay.log" &
  RELAY_PID=$!
  BENCH_PIDS+=("$RELAY_PID")
  sleep 0.5
  log "null relay pid $RELAY_PID on port $RELAY_PORT"
fi

# ---------------------------------------------------------------- 1. sysbench matrix
MATRIX="$BENCH_TMP/matrix.tsv"
: >"$MATRIX"
if [ "$BENCH_MATRIX" = 1 ]; then
  for ps in $BENCH_PS_MODES; do
    for test in $BENCH_TESTS; do
      for threads in $BENCH_THREADS; do
        for pair in $(seq 1 "$BENCH_PAIRS"); do
          res=$(run_sysbench "$test" "$threads" "$ps" "$DB_PORT" "$BENCH_SECONDS")
          read -r qps p95 queries errors _ <<<"$res"
          printf '%s\t%s\t%s\t%s\tdirect\t%s\t%s\t%s\t%s\t\n' "$test" "$threads" "$ps" "$pair" \
            "$qps" "$p95" "$queries" "$errors" >>"$MATRIX"
          t0=$(cpu_ticks "$SHOAL_PID")
          res=$(run_sysbench "$test" "$threads" "$ps" "$SHOAL_PORT" "$BENCH_SECONDS")
          read -r sqps sp95 squeries serrors _ <<<"$res"
          t1=$(cpu_ticks "$SHOAL_PID")
          cpu_us=$(python3 -c "print(f'{($t1-$t0)/$CLK_TCK*1e6/max($squeries,1):.2f}')")
          printf '%s\t%s\t%s\t%s\tshoal\t%s\t%s\t%s\t%s\t%s\n' "$test" "$threads" "$ps" "$pair" \
            "$sqps" "$sp95" "$squeries" "$serrors" "$cpu_us" >>"$MATRIX"
          log "$test ps=$ps threads=$threads pair $pair: direct $qps qps p95 $p95 | shoal $sqps qps p95 $sp95 cpu ${cpu_us}us/q"
          if [ "$BENCH_FLOOR" = 1 ]; then
            t0=$(cpu_ticks "$RELAY_PID")
            res=$(run_sysbench "$test" "$threads" "$ps" "$RELAY_PORT" "$BENCH_SECONDS")
            read -r rqps rp95 rqueries rerrors _ <<<"$res"
            t1=$(cpu_ticks "$RELAY_PID")
            cpu_us=$(python3 -c "print(f'{($t1-$t0)/$CLK_TCK*1e6/max($rqueries,1):.2f}')")
            printf '%s\t%s\t%s\t%s\trelay\t%s\t%s\t%s\t%s\t%s\n' "$test" "$threads" "$ps" "$pair" \
              "$rqps" "$rp95" "$rqueries" "$rerrors" "$cpu_us" >>"$MATRIX"
            log "  null relay $rqps qps p95 $rp95 cpu ${cpu_us}us/q"
          fi
        done
      done
    done
  done
fi

# ---------------------------------------------------------------- 2. connection scale
SCALE="$BENCH_TMP/scale.env"
: >"$SCALE"
backend_conns() {
  sql -e "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='$SB_USER'"
}
# Samples backend connections and shoal RSS every 0.5 s into $1 until killed.
sample_loop() {
  while :; do
    printf '%s %s\n' "$(backend_conns 2>/dev/null || echo 0)" "$(rss_kib "$SHOAL_PID" 2>/dev/null || echo 0)" >>"$1"
    sleep 0.5
  done
}
max_col() { awk -v c="$2" 'BEGIN{m=0} $c>m{m=$c} END{print m}' "$1"; }

if [ "$BENCH_SCALE" = 1 ]; then
  log "scale: fresh shoal, $BENCH_IDLE idle clients, $BENCH_ACTIVE active"
  stop_shoal
  start_shoal "$BENCH_TMP/shoal-scale" "$BENCH_POOL_MAX"
  sleep 1
  rss0=$(rss_kib "$SHOAL_PID")
  # start_shoal's login check leaves one pooled connection (the mariadb CLI's pool).
  backend_before=$(backend_conns)
  status="$BENCH_TMP/idle.status"
  python3 "$HERE/idle_clients.py" --port "$SHOAL_PORT" --user "$SB_USER" --password "$SB_PASS" \
    --db "$SB_DB" --count "$BENCH_IDLE" --status "$status" >"$BENCH_TMP/idle.log" 2>&1 &
  IDLE_PID=$!
  BENCH_PIDS+=("$IDLE_PID")
  for _ in $(seq 1 1200); do
    [ -s "$status" ] && break
    kill -0 "$IDLE_PID" 2>/dev/null || die "idle clients exited: $(tail -3 "$BENCH_TMP/idle.log")"
    sleep 0.5
  done
  [ -s "$status" ] || die "idle clients did not finish logging in"
  sleep 2
  idle_line=$(cat "$status")
  rss1=$(rss_kib "$SHOAL_PID")
  backend_idle=$(backend_conns)
  opened=$(sed -E 's/.*opened=([0-9]+).*/\1/' <<<"$idle_line")
  log "idle: $idle_line; shoal RSS $rss0 -> $rss1 KiB; backend connections $backend_idle"

  samples="$BENCH_TMP/scale-samples.txt"
  : >"$samples"
  sample_loop "$samples" &
  SAMPLER=$!
  BENCH_PIDS+=("$SAMPLER")
  res=$(run_sysbench oltp_point_select "$BENCH_ACTIVE" auto "$SHOAL_PORT" "$BENCH_SCALE_SECONDS")
  read -r qps_with p95_with q_with err_with _ <<<"$res"
  stop_pid "$SAMPLER"
  forget_pid "$SAMPLER"
  backend_max_with=$(max_col "$samples" 1)
  rss_max_with=$(max_col "$samples" 2)
  log "active $BENCH_ACTIVE with idle held: $qps_with qps, p95 $p95_with ms, backend max $backend_max_with"
  stop_pid "$IDLE_PID"
  forget_pid "$IDLE_PID"
  sleep 2
  res=$(run_sysbench oltp_point_select "$BENCH_ACTIVE" auto "$SHOAL_PORT" "$BENCH_SCALE_SECONDS")
  read -r qps_without p95_without _ _ _ <<<"$res"
  log "active $BENCH_ACTIVE without idle: $qps_without qps, p95 $p95_without ms"
  cat >"$SCALE" <<ENV
idle=$BENCH_IDLE
idle_line=$idle_line
opened=$opened
rss0_kib=$rss0
rss_idle_kib=$rss1
backend_idle=$backend_idle
backend_before=$backend_before
active=$BENCH_ACTIVE
scale_seconds=$BENCH_SCALE_SECONDS
qps_with=$qps_with
p95_with=$p95_with
errors_with=$err_with
qps_without=$qps_without
p95_without=$p95_without
backend_max_with=$backend_max_with
rss_max_with_kib=$rss_max_with
pool_max=$BENCH_POOL_MAX
ENV
  stop_shoal
  start_shoal "$BENCH_TMP/shoal-large" "$BENCH_POOL_MAX"
fi

# ---------------------------------------------------------------- 3. large result
LARGE="$BENCH_TMP/large.tsv"
: >"$LARGE"
if [ "$BENCH_LARGE" = 1 ]; then
  log "large: creating $BENCH_LARGE_ROWS rows"
  sql "$SB_DB" <<SQL
CREATE TABLE big (id INT PRIMARY KEY, a CHAR(100) NOT NULL, b VARCHAR(100) NOT NULL) ENGINE=InnoDB;
INSERT INTO big SELECT seq, RPAD(MD5(seq), 100, 'x'), REPEAT(SHA1(seq), 2) FROM seq_1_to_$BENCH_LARGE_ROWS;
SQL
  big_query="SELECT id, a, b FROM big"
  stream() { # port user password -> seconds
    local t0 t1
    t0=$(date +%s.%N)
    mariadb --no-defaults -h127.0.0.1 -P"$1" -u"$2" -p"$3" --quick --batch --skip-column-names \
      "$SB_DB" -e "$big_query" >/dev/null
    t1=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.3f}')"
  }
  # Warm the buffer pool and measure the size once.
  large_bytes=$(mariadb --no-defaults -h127.0.0.1 -P"$DB_PORT" -u"$SB_USER" -p"$SB_PASS" --quick --batch \
    --skip-column-names "$SB_DB" -e "$big_query" | wc -c)
  wire_bytes=$(sql "$SB_DB" -e "SELECT SUM(4 + 3 + LENGTH(id) + LENGTH(a) + LENGTH(b)) FROM big")
  for pair in $(seq 1 "$BENCH_LARGE_PAIRS"); do
    d=$(stream "$DB_PORT" "$SB_USER" "$SB_PASS")
    rss_before=$(rss_kib "$SHOAL_PID")
    reset_hwm "$SHOAL_PID"
    s=$(stream "$SHOAL_PORT" "$SB_USER" "$SB_PASS")
    hwm=$(hwm_kib "$SHOAL_PID")
    printf '%s\t%s\t%s\t%s\t%s\n' "$pair" "$d" "$s" "$rss_before" "$hwm" >>"$LARGE"
    log "large pair $pair: direct ${d}s shoal ${s}s; shoal RSS $rss_before KiB, peak $hwm KiB"
  done
  printf 'bytes\t%s\t%s\n' "$large_bytes" "$wire_bytes" >>"$LARGE"
fi

# ---------------------------------------------------------------- report
META="$BENCH_TMP/meta.env"
{
  echo "started=$STARTED"
  echo "minutes=$(( ($(date +%s) - T_START + 59) / 60 ))"
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo '+dirty-src')"
  echo "branch=$(git -C "$ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
  echo "nproc=$(nproc)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "ram_gib=$(awk '/^MemTotal:/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "mariadb=$(mariadbd --version 2>/dev/null | awk '{print $3}' || true)"
  echo "sysbench=$(sysbench --version | awk '{print $2}')"
  echo "seconds=$BENCH_SECONDS"
  echo "pairs=$BENCH_PAIRS"
  echo "threads=$BENCH_THREADS"
  echo "tests=$BENCH_TESTS"
  echo "ps_modes=$BENCH_PS_MODES"
  echo "table_size=$BENCH_TABLE_SIZE"
  echo "pool_max=$BENCH_POOL_MAX"
  echo "floor=$BENCH_FLOOR"
  echo "quick=${BENCH_QUICK:-0}"
  echo "large_rows=$BENCH_LARGE_ROWS"
  echo "note=$BENCH_NOTE"
} >"$META"
REPORT="$BENCH_TMP/report.md"
python3 "$HERE/report.py" --meta "$META" --matrix "$MATRIX" --scale "$SCALE" --large "$LARGE" >"$REPORT"
cat "$REPORT"
if [ "$BENCH_APPEND" = 1 ]; then
  DOC="$ROOT/docs/benchmarks.md"
  mkdir -p "$(dirname "$DOC")"
  [ -f "$DOC" ] || printf '# shoal benchmarks\n\nAppended by `make bench` (proxy-tests/bench/run.sh).\n' >"$DOC"
  { echo; cat "$REPORT"; } >>"$DOC"
  log "appended to $DOC"
fi
cp "$MATRIX" "$SCALE" "$LARGE" "$REPORT" "${BENCH_RESULTS_DIR:-$BENCH_TMP}/" 2>/dev/null || true
