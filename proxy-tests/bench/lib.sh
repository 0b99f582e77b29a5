# shellcheck shell=bash
# Helpers for the shoal benchmark (sourced by run.sh). Everything started here is
# recorded in BENCH_PIDS and stopped by bench_cleanup (installed as an EXIT trap).
#
# Functions:
#   free_port                       print a free TCP port on 127.0.0.1
#   start_mariadb DIR [OPTS...]     throwaway mariadbd in DIR (binlog off unless OPTS turn it
#                                   on); sets DB_PORT, DB_PID
#   sql [args...]                   mariadb client as root on DB_PORT (stdin or -e)
#   prepare_sysbench [cluster]      the sysbench account, database and tables on DB_PORT (as
#                                   root); with "cluster": database and tables through the
#                                   cluster leader's proxy (LEADER_PORT) as the sysbench account
#   start_shoal DIR [POOL_MAX]      release shoal in front of DB_PORT (or DB_SOCKET with
#                                   BENCH_BACKEND=unix); sets SHOAL_PORT, SHOAL_PID;
#                                   SHOAL_EXTRA_TOML is appended to its config
#   stop_pid PID                    TERM, wait, KILL
#   start_cluster DIR               three shoal nodes, each with its own mariadbd (BENCH_DB_OPTS
#                                   and the binlog flags; config/cluster-lib.sh, as `make demo`),
#                                   the sysbench account on each; waits for a leader; sets
#                                   CLUSTER_LEADER, LEADER_PORT (its proxy), FOLLOWER_PORT (a
#                                   follower's proxy) and CLUSTER_* arrays
#   run_sysbench TEST THREADS PS PORT SECONDS [extra...]
#                                   prints "qps p95_ms queries errors events tps"
#   cpu_ticks PID                   utime+stime of PID in clock ticks
#   rss_kib PID / hwm_kib PID       VmRSS / VmHWM of PID in KiB
#   reset_hwm PID                   reset VmHWM to the current RSS (clear_refs 5)

BENCH_PIDS=()
BENCH_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SB_USER=sb
SB_PASS=sbpass
SB_DB=sbtest
# mariadbd tuning of every bench server (start_mariadb, and the cluster nodes of start_cluster).
BENCH_DB_OPTS=(--innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 --max-connections=4000
  --character-set-server=utf8mb4 --max-prepared-stmt-count=1048576)
# shellcheck source=config/cluster-lib.sh
source "$BENCH_HERE/../../config/cluster-lib.sh"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local rc=$? i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${BENCH_PIDS[$i]}"
  done
  if [ -n "${BENCH_TMP:-}" ] && [ -d "$BENCH_TMP" ]; then
    if [ "$rc" -ne 0 ] || [ "${BENCH_KEEP:-0}" = 1 ]; then
      log "logs kept in $BENCH_TMP"
    else
      rm -rf "$BENCH_TMP"
    fi
  fi
  return "$rc"
}

forget_pid() {
  local pid=$1 keep=() p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

mariadbd_bin() {
  command -v mariadbd 2>/dev/null || { [ -x /usr/sbin/mariadbd ] && echo /usr/sbin/mariadbd; } || die "mariadbd not found"
}

sql() {
  mariadb --no-defaults -h127.0.0.1 -P"$DB_PORT" -uroot --batch --skip-column-names "$@"
}

start_mariadb() {
  local dir=$1 i
  shift
  mkdir -p "$dir"
  mariadb-install-db --no-defaults --user=root --auth-root-authentication-method=normal \
    --skip-test-db --datadir="$dir/data" >"$dir/install.log" 2>&1 || die "mariadb-install-db failed (see $dir/install.log)"
  DB_PORT=$(free_port)
  DB_SOCKET="$dir/sock"
  export DB_SOCKET
  "$(mariadbd_bin)" --no-defaults --user=root --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --log-error="$dir/err.log" --port="$DB_PORT" --bind-address=127.0.0.1 \
    "${BENCH_DB_OPTS[@]}" --skip-log-bin "$@" &
  DB_PID=$!
  BENCH_PIDS+=("$DB_PID")
  for i in $(seq 1 300); do
    if sql -e 'SELECT 1' >/dev/null 2>&1; then
      log "mariadbd pid $DB_PID on port $DB_PORT"
      return 0
    fi
    kill -0 "$DB_PID" 2>/dev/null || die "mariadbd exited: $(tail -5 "$dir/err.log")"
    sleep 0.1
  done
  die "mariadbd did not start: $(tail -5 "$dir/err.log")"
}

sysbench_account_sql() {
  echo "CREATE USER $SB_USER@'%' IDENTIFIED BY '$SB_PASS'; GRANT ALL ON *.* TO $SB_USER@'%';"
}

prepare_sysbench() {
  local port=$DB_PORT
  if [ "${1:-}" != cluster ]; then
    sql -e "$(sysbench_account_sql) CREATE DATABASE $SB_DB;"
  else
    port=$LEADER_PORT
    cluster_write "$CLUSTER_LEADER" "$SB_USER" "$SB_PASS" "CREATE DATABASE $SB_DB" || die "CREATE DATABASE through port $port failed"
  fi
  log "sysbench prepare on port $port: ${BENCH_TABLES:-1} table x ${BENCH_TABLE_SIZE:-100000} rows"
  # shellcheck disable=SC2046
  sysbench oltp_common $(sysbench_common "$port") prepare >"$BENCH_TMP/prepare-$port.log" 2>&1 \
    || die "sysbench prepare failed: $(tail -5 "$BENCH_TMP/prepare-$port.log")"
}

start_cluster() {
  CLUSTER_BIN=$SHOAL_BIN
  CLUSTER_DIR=$1
  CLUSTER_DB_OPTS=("${BENCH_DB_OPTS[@]}")
  CLUSTER_ACCOUNTS_SQL="$(sysbench_account_sql)"
  CLUSTER_LOG_LEVEL=warn
  CLUSTER_EXTRA_TOML="[limits]
pool_connections_max = ${BENCH_POOL_MAX:-64}
client_connections_max = 30000
${SHOAL_EXTRA_TOML:-}"
  mkdir -p "$CLUSTER_DIR"
  cluster_start || { cluster_stop; die "the cluster did not start (logs in $CLUSTER_DIR)"; }
  # bench_cleanup stops BENCH_PIDS last first: the nodes before their mariadbd.
  BENCH_PIDS+=("${CLUSTER_DB_PIDS[@]}" "${CLUSTER_NODE_PIDS[@]}")
  cluster_wait_preferred 15 || die "the cluster elected no leader"
  LEADER_PORT=${CLUSTER_PROXY_PORTS[$((CLUSTER_LEADER - 1))]}
  # A follower's proxy: writes there are forwarded to the leader's.
  FOLLOWER_PORT=${CLUSTER_PROXY_PORTS[$((CLUSTER_LEADER % 3))]}
  log "cluster: node-$CLUSTER_LEADER leads (term $CLUSTER_TERM), proxy port $LEADER_PORT"
}

start_shoal() {
  local dir=$1 pool_max=${2:-64} i
  mkdir -p "$dir"
  SHOAL_PORT=$(free_port)
  cat >"$dir/shoal.toml" <<TOML
[api]
bind_address = "127.0.0.1:$(free_port)"

[limits]
pool_connections_max = $pool_max
client_connections_max = 30000
${SHOAL_EXTRA_TOML:-}
TOML
  # BENCH_BACKEND=unix: shoal reaches MariaDB over its unix socket (same host).
  local backend="127.0.0.1:$DB_PORT"
  [ "${BENCH_BACKEND:-tcp}" = unix ] && backend="unix:$DB_SOCKET"
  SHOAL_BACKEND_USER=root "$SHOAL_BIN" --log-level warn proxy --config "$dir/shoal.toml" \
    --listen "127.0.0.1:$SHOAL_PORT" --backend "$backend" 2>"$dir/shoal.log" &
  SHOAL_PID=$!
  BENCH_PIDS+=("$SHOAL_PID")
  for i in $(seq 1 200); do
    if mariadb --no-defaults -h127.0.0.1 -P"$SHOAL_PORT" -u"$SB_USER" -p"$SB_PASS" -e 'SELECT 1' >/dev/null 2>&1; then
      log "shoal pid $SHOAL_PID on port $SHOAL_PORT (pool_connections_max=$pool_max)"
      return 0
    fi
    kill -0 "$SHOAL_PID" 2>/dev/null || die "shoal exited: $(tail -5 "$dir/shoal.log")"
    sleep 0.1
  done
  die "shoal did not accept logins: $(tail -5 "$dir/shoal.log")"
}

stop_shoal() {
  stop_pid "$SHOAL_PID"
  forget_pid "$SHOAL_PID"
}

sysbench_common() {
  local port=$1
  echo "--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port=$port --mysql-user=$SB_USER"
  echo "--mysql-password=$SB_PASS --mysql-db=$SB_DB --tables=${BENCH_TABLES:-1} --table-size=${BENCH_TABLE_SIZE:-100000}"
}

# run_sysbench TEST THREADS PS_MODE PORT SECONDS [extra args] -> "qps p95_ms queries errors"
# p95 is computed from sysbench's latency histogram (3 decimals; sysbench's own
# "95th percentile" line only has 2).
run_sysbench() {
  local test=$1 threads=$2 ps=$3 port=$4 secs=$5 out
  shift 5
  # shellcheck disable=SC2046
  out=$(sysbench "$test" $(sysbench_common "$port") --threads="$threads" --time="$secs" \
    --db-ps-mode="$ps" --report-interval=0 --histogram=on --percentile=95 \
    "$@" run 2>&1) || { echo "$out" | tail -20 >&2; die "sysbench $test failed"; }
  echo "$out" >>"$BENCH_TMP/sysbench.log"
  python3 "$BENCH_HERE/parse_sysbench.py" <<<"$out"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || log "cannot reset VmHWM of $1 (peak RSS will be since start)"; }
# Context switches (voluntary + involuntary) summed over PID's threads.
ctx_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ {s += $2} END {print s + 0}'
}

# bench_start NAME: the release binary (SHOAL_BIN, copied into the temp dir so a rebuild
# during the run changes nothing), the tools every sysbench script needs, BENCH_TMP
# (/tmp/shoal-NAME-bench.*, removed on exit unless BENCH_KEEP=1) and the exit traps.
bench_start() {
  SHOAL_BIN="${SHOAL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/shoal}"
  [ -x "$SHOAL_BIN" ] || die "no shoal binary at $SHOAL_BIN (run cargo build --release, or make bench)"
  for tool in sysbench mariadb mariadb-install-db python3; do
    command -v "$tool" >/dev/null || die "$tool not installed"
  done
  BENCH_TMP="$(mktemp -d "/tmp/shoal-$1-bench.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$BENCH_TMP/bin" && cp "$SHOAL_BIN" "$BENCH_TMP/bin/shoal"
  SHOAL_BIN="$BENCH_TMP/bin/shoal"
}
