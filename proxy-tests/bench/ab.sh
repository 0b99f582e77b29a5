#!/usr/bin/env bash
# A/B comparison of two shoal variants (binaries and/or environments) on one sysbench
# cell, alternating direct | A | B per round on one mariadbd, with shoal CPU and context
# switches per query. For before/after measurements of hot-path changes:
#
#   AB_BIN_A=/tmp/shoal-before AB_BIN_B=target/release/shoal bash proxy-tests/bench/ab.sh
#   AB_ENV_A="TOKIO_WORKER_THREADS=2" AB_ENV_B="TOKIO_WORKER_THREADS=1" bash proxy-tests/bench/ab.sh
#
#   AB_RELAY_B=null bash proxy-tests/bench/ab.sh        # shoal vs the null relay (proxy-tests/bench/nullrelay.rs)
#   AB_RELAY_A=null AB_RELAY_B=null-unix bash proxy-tests/bench/ab.sh   # TCP vs unix backend
#   AB_RELAY_B="/path/relay {LISTEN} {BACKEND}" bash proxy-tests/bench/ab.sh
#       ({SOCKET} is mariadbd's unix socket; variant B is any relay command instead of shoal: e.g. a null relay, the
#        floor cost of one user-space proxy hop on this machine)
#
#   AB_TEST=oltp_point_select AB_PS=auto AB_THREADS=32 AB_SECONDS=10 AB_ROUNDS=3
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=proxy-tests/bench/lib.sh
source "$HERE/lib.sh"
: "${AB_TEST:=oltp_point_select}" "${AB_PS:=auto}" "${AB_THREADS:=32}" "${AB_SECONDS:=10}" "${AB_ROUNDS:=3}"
: "${AB_ENV_A:=}" "${AB_ENV_B:=}" "${BENCH_POOL_MAX:=64}"
export BENCH_TABLE_SIZE="${BENCH_TABLE_SIZE:-100000}"
default_bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/shoal"
BIN_A="${AB_BIN_A:-$default_bin}"
BIN_B="${AB_BIN_B:-$default_bin}"
BENCH_TMP="$(mktemp -d /tmp/shoal-bench.XXXXXX)"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$BENCH_TMP/bin"
[ -n "${AB_RELAY_A:-}" ] || cp "$BIN_A" "$BENCH_TMP/bin/shoal-a"
[ -n "${AB_RELAY_B:-}" ] || cp "$BIN_B" "$BENCH_TMP/bin/shoal-b"

start_mariadb "$BENCH_TMP/db"
sql -e "CREATE USER $SB_USER@'%' IDENTIFIED BY '$SB_PASS'; GRANT ALL ON *.* TO $SB_USER@'%'; CREATE DATABASE $SB_DB;"
# shellcheck disable=SC2046
sysbench oltp_common $(sysbench_common "$DB_PORT") prepare >/dev/null
declare -A PORT PID
nullrelay_bin() {
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  (cd "$ROOT" && cargo build --release -q --example nullrelay) >&2 || die "cannot build nullrelay"
  echo "$target/release/examples/nullrelay"
}
for v in A B; do
  var="AB_RELAY_$v"
  case "${!var:-}" in
    null) printf -v "$var" '%s' "$(nullrelay_bin) {LISTEN} {BACKEND}" ;;
    null-unix) printf -v "$var" '%s' "$(nullrelay_bin) {LISTEN} unix:{SOCKET}" ;;
  esac
done
start_relay() { # variant command-template
  local v=$1 cmd=$2 port
  port=$(free_port)
  cmd=${cmd//\{LISTEN\}/127.0.0.1:$port}
  cmd=${cmd//\{BACKEND\}/127.0.0.1:$DB_PORT}
  cmd=${cmd//\{SOCKET\}/$BENCH_TMP/db/sock}
  # shellcheck disable=SC2086
  $cmd >"$BENCH_TMP/relay-$v.log" 2>&1 &
  PID[$v]=$!
  PORT[$v]=$port
  BENCH_PIDS+=("${PID[$v]}")
  for _ in $(seq 1 100); do
    mariadb --no-defaults -h127.0.0.1 -P"$port" -u"$SB_USER" -p"$SB_PASS" -e 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "relay $v ($cmd) does not answer"
}
for v in a b; do
  relay=$([ "$v" = a ] && echo "${AB_RELAY_A:-}" || echo "${AB_RELAY_B:-}")
  if [ -n "$relay" ]; then
    start_relay "$v" "$relay"
    continue
  fi
  SHOAL_BIN="$BENCH_TMP/bin/shoal-$v"
  envs=$([ "$v" = a ] && echo "$AB_ENV_A" || echo "$AB_ENV_B")
  # shellcheck disable=SC2086
  (if [ -n "$envs" ]; then export $envs; fi; start_shoal "$BENCH_TMP/shoal-$v" "$BENCH_POOL_MAX"; echo "$SHOAL_PORT $SHOAL_PID" >"$BENCH_TMP/$v.addr") 
  read -r PORT[$v] PID[$v] <"$BENCH_TMP/$v.addr"
  BENCH_PIDS+=("${PID[$v]}")
done
CLK_TCK=$(getconf CLK_TCK)
echo "| round | direct QPS | A QPS | B QPS | A/direct | B/direct | A µs/q | B µs/q | A ctxsw/q | B ctxsw/q | A p95 | B p95 |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq 1 "$AB_ROUNDS"); do
  read -r dq _ _ _ _ <<<"$(run_sysbench "$AB_TEST" "$AB_THREADS" "$AB_PS" "$DB_PORT" "$AB_SECONDS")"
  declare -A Q P95 CPU CS
  for v in a b; do
    c0=$(cpu_ticks "${PID[$v]}"); s0=$(ctx_switches "${PID[$v]}")
    read -r q p95 n _ _ <<<"$(run_sysbench "$AB_TEST" "$AB_THREADS" "$AB_PS" "${PORT[$v]}" "$AB_SECONDS")"
    c1=$(cpu_ticks "${PID[$v]}"); s1=$(ctx_switches "${PID[$v]}")
    Q[$v]=$q; P95[$v]=$p95
    CPU[$v]=$(python3 -c "print(f'{($c1-$c0)/$CLK_TCK*1e6/max($n,1):.1f}')")
    CS[$v]=$(python3 -c "print(f'{($s1-$s0)/max($n,1):.2f}')")
  done
  python3 -c "print(f'| $r | {$dq:,.0f} | {${Q[a]}:,.0f} | {${Q[b]}:,.0f} | {${Q[a]}/$dq:.2f} | {${Q[b]}/$dq:.2f} | ${CPU[a]} | ${CPU[b]} | ${CS[a]} | ${CS[b]} | ${P95[a]} | ${P95[b]} |')"
done
echo
echo "A: ${AB_RELAY_A:-$BIN_A ${AB_ENV_A:-(default env)}}; B: ${AB_RELAY_B:-$BIN_B ${AB_ENV_B:-(default env)}}; $AB_TEST ps=$AB_PS threads=$AB_THREADS ${AB_SECONDS}s x $AB_ROUNDS rounds"
