#!/usr/bin/env bash
# Cluster cost: sysbench oltp_write_only and oltp_read_write at 8 and 32 threads against
# (a) one mariadbd (binlog ROW/FULL, the cluster nodes' flags) directly and (b) a three-node
# shoal cluster (`shoal start --bootstrap` x3, each with its own mariadbd on this machine;
# config/cluster-lib.sh, the start-up of `make demo`), sysbench pointed at the leader's
# proxy: every write transaction runs as XA on the leader's MariaDB, commits once a quorum
# has its Raft entry, and is applied on the two followers' MariaDB; and (c) the same through
# a follower's proxy, which forwards writes to the leader's (the cost of the extra hop).
# Direct, leader and follower runs alternate per pair, in one run; prints TPS, the ratios to
# direct per point and the errors sysbench ignored.
#
# Environment: CLUSTER_BENCH_TESTS="oltp_write_only oltp_read_write",
# CLUSTER_BENCH_THREADS="8 32", CLUSTER_BENCH_SECONDS=20, CLUSTER_BENCH_PAIRS=3
# (BENCH_QUICK=1: 5 s, 1 pair), BENCH_TABLE_SIZE=100000, BENCH_POOL_MAX=64,
# BENCH_KEEP=1 keeps the temp dir, SHOAL_BIN (default target/release/shoal).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=proxy-tests/bench/lib.sh
source "$HERE/lib.sh"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  : "${CLUSTER_BENCH_SECONDS:=5}" "${CLUSTER_BENCH_PAIRS:=1}"
fi
: "${CLUSTER_BENCH_TESTS:=oltp_write_only oltp_read_write}" "${CLUSTER_BENCH_THREADS:=8 32}"
: "${CLUSTER_BENCH_SECONDS:=20}" "${CLUSTER_BENCH_PAIRS:=3}" "${BENCH_TABLE_SIZE:=100000}"
export BENCH_TABLE_SIZE
bench_start cluster
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T_START=$(date +%s)

# shellcheck disable=SC2046
start_mariadb "$BENCH_TMP/db" $(cluster_binlog_opts 1)
[ "$(sql -e 'SELECT @@log_bin, @@binlog_format, @@binlog_row_image')" = "1	ROW	FULL" ] || die "the direct server's binlog is not ROW/FULL"
prepare_sysbench
start_cluster "$BENCH_TMP/cluster"
t0=$(date +%s)
prepare_sysbench cluster
want=$(sql -e "SELECT COUNT(*) FROM $SB_DB.sbtest1")
for n in 1 2 3; do
  for _ in $(seq 1 600); do
    [ "$(cluster_db_sql "$n" "SELECT COUNT(*) FROM $SB_DB.sbtest1" 2>/dev/null || true)" = "$want" ] && break
    sleep 0.1
  done
  [ "$(cluster_db_sql "$n" "SELECT COUNT(*) FROM $SB_DB.sbtest1" 2>/dev/null || true)" = "$want" ] \
    || { cluster_logs; die "node-$n's MariaDB does not have the $want sysbench rows"; }
done
log "cluster: sysbench tables prepared through the leader and on all three MariaDB in $(($(date +%s) - t0)) s"

RESULTS="$BENCH_TMP/cluster.tsv"
: >"$RESULTS"
for test in $CLUSTER_BENCH_TESTS; do
  for threads in $CLUSTER_BENCH_THREADS; do
    for pair in $(seq 1 "$CLUSTER_BENCH_PAIRS"); do
      read -r _ dp95 _ derr _ dtps <<<"$(run_sysbench "$test" "$threads" auto "$DB_PORT" "$CLUSTER_BENCH_SECONDS")"
      read -r _ cp95 _ cerr _ ctps <<<"$(run_sysbench "$test" "$threads" auto "$LEADER_PORT" "$CLUSTER_BENCH_SECONDS")"
      read -r _ fp95 _ ferr _ ftps <<<"$(run_sysbench "$test" "$threads" auto "$FOLLOWER_PORT" "$CLUSTER_BENCH_SECONDS")"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$threads" "$pair" "$dtps" "$dp95" "$derr" "$ctps" "$cp95" "$cerr" "$ftps" "$fp95" "$ferr" >>"$RESULTS"
      log "$test threads=$threads pair $pair: direct $dtps tps p95 $dp95 ms errors $derr | leader $ctps tps p95 $cp95 ms errors $cerr | follower $ftps tps p95 $fp95 ms errors $ferr"
    done
  done
done
# Still one leader, and the followers applied everything (checksums equal).
cluster_wait_leader 10 || die "the cluster lost its leader during the run"
sums=$(for n in 1 2 3; do
  for _ in $(seq 1 300); do
    a=$(cluster_db_sql "$CLUSTER_LEADER" "CHECKSUM TABLE $SB_DB.sbtest1" | cut -f2)
    b=$(cluster_db_sql "$n" "CHECKSUM TABLE $SB_DB.sbtest1" | cut -f2)
    [ "$a" = "$b" ] && break
    sleep 0.1
  done
  echo "node-$n=$b"
done | tr '\n' ' ')
log "cluster: leader node-$CLUSTER_LEADER (term $CLUSTER_TERM); CHECKSUM TABLE sbtest1: $sums"
python3 - "$RESULTS" "$STARTED" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] || echo +dirty)" \
  "$CLUSTER_BENCH_SECONDS" "$CLUSTER_BENCH_PAIRS" "$BENCH_TABLE_SIZE" "$(($(date +%s) - T_START))" "$sums" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
started, commit, secs, pairs, size, wall, sums = sys.argv[2:9]
print(f"\n### Cluster: direct mariadbd vs a 3-node shoal cluster (leader's and a follower's proxy), {started}, commit {commit}\n")
print("| test | threads | direct tps | via leader tps | ratio leader/direct | via follower tps | ratio follower/direct | direct p95 ms | leader p95 ms | follower p95 ms | errors direct / leader / follower |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for test in dict.fromkeys(r[0] for r in rows):
    for t in sorted({r[1] for r in rows if r[0] == test}, key=int):
        rs = [r for r in rows if r[0] == test and r[1] == t]
        d = [float(r[3]) for r in rs]; c = [float(r[6]) for r in rs]; f = [float(r[9]) for r in rs]
        ratio = lambda xs: statistics.median(b / a for a, b in zip(d, xs) if a > 0)
        med = lambda i: statistics.median(float(r[i]) for r in rs)
        errs = " / ".join(str(sum(int(r[i]) for r in rs)) for i in (5, 8, 11))
        print(f"| {test} | {t} | {statistics.median(d):.0f} | {statistics.median(c):.0f} | {ratio(c):.2f} | "
              f"{statistics.median(f):.0f} | {ratio(f):.2f} | {med(4):.2f} | {med(7):.2f} | {med(10):.2f} | {errs} |")
print(f"\n{secs} s runs, {pairs} pair(s) per point (direct then cluster), {size} rows, prepared statements; "
      f"ratio = median of pair ratios; errors = sysbench's ignored errors summed over the pairs; "
      f"followers' CHECKSUM TABLE after the run: {sums.strip()}; wall time {int(wall) // 60} min {int(wall) % 60} s.")
PY
