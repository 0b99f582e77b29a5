#!/usr/bin/env bash
# Four-way replicated-write comparison: sysbench oltp_write_only and oltp_read_write at 8 and
# 32 threads (prepared statements) against
#   direct    one mariadbd (binlog ROW/FULL, the cluster nodes' flags), kept running the whole
#             run and measured right before every point of the others, so each ratio is from
#             adjacent runs;
#   async     native MariaDB replication, 1 primary + 2 replicas (GTID, MASTER_USE_GTID=
#             slave_pos), sysbench on the primary;
#   semisync  the same with semi-synchronous replication (AFTER_SYNC, a timeout so long that it
#             never falls back to async unnoticed: Rpl_semi_sync_master_status and
#             Rpl_semi_sync_master_no_tx are checked after every point);
#   galera    a 3-node Galera cluster (galera-4, rsync SST, node 1 bootstrapped with
#             --wsrep-new-cluster), sysbench on node 1;
#   shoal     a 3-node shoal cluster (start_cluster of lib.sh, as proxy-tests/bench/cluster.sh),
#             sysbench through the leader's proxy.
# One replicated topology runs at a time, on this machine (every node on 127.0.0.1). Every
# mariadbd gets BENCH_DB_OPTS (lib.sh) and the binlog flags of `cluster_binlog_opts N`
# (config/cluster-lib.sh). After every point, and once more after each topology's runs,
# CHECKSUM TABLE sbtest.sbtest1 must be equal on its three nodes within CATCHUP_WAIT seconds,
# else the run fails. Prints a markdown table: tps, ratio to the adjacent direct run, p95,
# sysbench's ignored errors, how long the replicas took to catch up after the point.
#
# Environment: REPL_BENCH_TOPOLOGIES="async semisync galera shoal",
# REPL_BENCH_TESTS="oltp_write_only oltp_read_write", REPL_BENCH_THREADS="8 32",
# REPL_BENCH_SECONDS=20, REPL_BENCH_PAIRS=1 (BENCH_QUICK=1: 5 s), BENCH_TABLE_SIZE=100000,
# BENCH_POOL_MAX=64 (shoal), BENCH_KEEP=1 keeps the temp dir, SHOAL_BIN (default
# target/release/shoal).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=proxy-tests/bench/lib.sh
source "$HERE/lib.sh"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
  : "${REPL_BENCH_SECONDS:=5}"
fi
: "${REPL_BENCH_TOPOLOGIES:=async semisync galera shoal}"
: "${REPL_BENCH_TESTS:=oltp_write_only oltp_read_write}" "${REPL_BENCH_THREADS:=8 32}"
: "${REPL_BENCH_SECONDS:=20}" "${REPL_BENCH_PAIRS:=1}" "${BENCH_TABLE_SIZE:=100000}"
export BENCH_TABLE_SIZE

# Limits.
NODE_START_WAIT=120        # s for a mariadbd to answer (a Galera joiner: after its SST)
REPLICA_CONNECT_WAIT=60    # s for both replicas to run their IO and SQL threads
GALERA_SYNC_WAIT=120       # s for a Galera node to be Synced, and the cluster to have 3 members
CATCHUP_WAIT=300           # s for the three nodes' CHECKSUM TABLE to be equal after a point
LEADER_WAIT=10             # s for the shoal cluster to (still) agree on a leader after the runs
SEMISYNC_TIMEOUT_MS=3600000  # rpl_semi_sync_master_timeout (1 h): never falls back to async within a run
REPL_USER=repl
REPL_PASS=replpass

bench_start replicated
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
T_START=$(date +%s)
RESULTS="$BENCH_TMP/replicated.tsv"     # one line per point and pair
SUMMARY="$BENCH_TMP/topologies.tsv"     # one line per topology: durability, checksums
: >"$RESULTS"
: >"$SUMMARY"

# --- helpers

# db_sql PORT SQL: root on the mariadbd at 127.0.0.1:PORT (-N -B).
db_sql() {
  local port=$1
  shift
  mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot --batch --skip-column-names -e "$*"
}

# status_var PORT NAME: the value of a global status variable.
status_var() { db_sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" | cut -f2; }

# One datadir made by mariadb-install-db, copied for every node started by start_node.
TEMPLATE="$BENCH_TMP/template"
mariadb-install-db --no-defaults --user=root --auth-root-authentication-method=normal \
  --skip-test-db --datadir="$TEMPLATE" >"$BENCH_TMP/install.log" 2>&1 || die "mariadb-install-db failed (see $BENCH_TMP/install.log)"

# start_node DIR PORT [OPTS...]: a throwaway mariadbd in DIR on 127.0.0.1:PORT with
# BENCH_DB_OPTS and OPTS (lib.sh's start_mariadb with a chosen port and a longer wait), as
# NODE_USER (root; DIR is then chowned to it); waits up to NODE_START_WAIT s for it to answer.
# Its pid goes to BENCH_PIDS and TOPO_PIDS.
NODE_USER=root
start_node() {
  local dir=$1 port=$2 pid deadline
  shift 2
  mkdir -p "$dir"
  cp -a "$TEMPLATE" "$dir/data"
  [ "$NODE_USER" = root ] || chown -R "$NODE_USER:" "$dir"
  "$(mariadbd_bin)" --no-defaults --user="$NODE_USER" --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --log-error="$dir/err.log" --port="$port" --bind-address=127.0.0.1 \
    "${BENCH_DB_OPTS[@]}" "$@" </dev/null >/dev/null 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  TOPO_PIDS+=("$pid")
  deadline=$((SECONDS + NODE_START_WAIT))
  until db_sql "$port" 'SELECT 1' >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "mariadbd in $dir exited: $(tail -5 "$dir/err.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "mariadbd in $dir did not answer within $NODE_START_WAIT s: $(tail -5 "$dir/err.log")"
    sleep 0.2
  done
  log "$TOPO: mariadbd $(basename "$dir") pid $pid on port $port"
}

# stop_topology: stops this topology's processes (TOPO_PIDS, last started first), only them.
stop_topology() {
  local i
  for ((i = ${#TOPO_PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${TOPO_PIDS[$i]}"
    forget_pid "${TOPO_PIDS[$i]}"
  done
  TOPO_PIDS=()
  log "$TOPO: stopped"
}

# durability PORT: the durability settings of that mariadbd, one line.
durability() {
  db_sql "$1" "SELECT CONCAT('innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit,
    ' sync_binlog=', @@sync_binlog, ' log_bin=', @@log_bin, ' binlog_format=', @@binlog_format,
    ' binlog_row_image=', @@binlog_row_image, ' innodb_doublewrite=', @@innodb_doublewrite)"
}

# checksums: "node-1=X node-2=Y node-3=Z", CHECKSUM TABLE sbtest1 on TOPO_PORTS ("?" when a
# node cannot answer, e.g. it has no table yet).
checksums() {
  local n sum out=""
  for n in 1 2 3; do
    sum=$(db_sql "${TOPO_PORTS[$((n - 1))]}" "CHECKSUM TABLE $SB_DB.sbtest1" 2>/dev/null | cut -f2) || sum=""
    [[ "$sum" =~ ^[0-9]+$ ]] || sum="?"
    out+="node-$n=$sum "
  done
  echo "${out% }"
}

# wait_equal: until the three nodes' checksums are equal (and numbers), at most CATCHUP_WAIT s;
# sets SUMS and CAUGHT_UP_S (seconds it took, 1 decimal). Returns 1 when they still differ.
wait_equal() {
  local t0=$EPOCHREALTIME first
  while :; do
    SUMS=$(checksums)
    first=${SUMS%% *}
    first=${first#*=}
    if [ "$first" != "?" ] && [ "$SUMS" = "node-1=$first node-2=$first node-3=$first" ]; then
      CAUGHT_UP_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
      return 0
    fi
    awk -v a="$t0" -v b="$EPOCHREALTIME" -v w="$CATCHUP_WAIT" 'BEGIN {exit !(b - a < w)}' || return 1
    sleep 0.5
  done
}

# --- topologies: start_TOPO sets TOPO_PORTS (the three MariaDB), SB_PORT (where sysbench
# goes), DURABILITY (printed) and prepares the sysbench tables through SB_PORT.

# start_native async|semisync: primary node-1 and replicas node-2, node-3 (GTID).
start_native() {
  local mode=$1 dir=$BENCH_TMP/$1 n port primary_opts=() replica_opts=() deadline ok
  if [ "$mode" = semisync ]; then
    primary_opts=(--rpl-semi-sync-master-enabled=ON --rpl-semi-sync-master-wait-point=AFTER_SYNC
      --rpl-semi-sync-master-timeout="$SEMISYNC_TIMEOUT_MS")
    replica_opts=(--rpl-semi-sync-slave-enabled=ON)
  fi
  for n in 1 2 3; do cluster_free_port; TOPO_PORTS+=("$CLUSTER_PORT"); done
  # shellcheck disable=SC2046
  start_node "$dir/node-1" "${TOPO_PORTS[0]}" $(cluster_binlog_opts 1) "${primary_opts[@]}"
  # The replication account only on the primary, not binlogged: with semisync on, a binlogged
  # commit would wait for a replica that is not connected yet.
  db_sql "${TOPO_PORTS[0]}" "SET SESSION sql_log_bin = 0;
    CREATE USER $REPL_USER@'127.0.0.1' IDENTIFIED BY '$REPL_PASS';
    GRANT REPLICATION SLAVE ON *.* TO $REPL_USER@'127.0.0.1';"
  for n in 2 3; do
    port=${TOPO_PORTS[$((n - 1))]}
    # shellcheck disable=SC2046
    start_node "$dir/node-$n" "$port" $(cluster_binlog_opts "$n") "${replica_opts[@]}"
    db_sql "$port" "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${TOPO_PORTS[0]},
      MASTER_USER = '$REPL_USER', MASTER_PASSWORD = '$REPL_PASS', MASTER_USE_GTID = slave_pos; START SLAVE;"
  done
  deadline=$((SECONDS + REPLICA_CONNECT_WAIT))
  while :; do
    ok=1
    for n in 2 3; do
      [ "$(status_var "${TOPO_PORTS[$((n - 1))]}" Slave_running)" = ON ] || ok=0
    done
    [ "$(db_sql "${TOPO_PORTS[0]}" "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")" = 2 ] || ok=0
    [ "$mode" != semisync ] || [ "$(status_var "${TOPO_PORTS[0]}" Rpl_semi_sync_master_clients)" = 2 ] || ok=0
    [ "$ok" = 0 ] || break
    [ "$SECONDS" -lt "$deadline" ] || die "$mode: the replicas did not connect within $REPLICA_CONNECT_WAIT s (logs in $dir)"
    sleep 0.2
  done
  log "$mode: node-2 and node-3 replicate from node-1 (GTID, slave_pos)"
  DURABILITY="$(durability "${TOPO_PORTS[0]}") on all three"
  if [ "$mode" = semisync ]; then
    DURABILITY+="; primary: $(db_sql "${TOPO_PORTS[0]}" "SELECT CONCAT('rpl_semi_sync_master_enabled=', @@rpl_semi_sync_master_enabled,
      ' rpl_semi_sync_master_wait_point=', @@rpl_semi_sync_master_wait_point,
      ' rpl_semi_sync_master_timeout=', @@rpl_semi_sync_master_timeout, ' ms')")"
    DURABILITY+="; replicas: $(db_sql "${TOPO_PORTS[1]}" "SELECT CONCAT('rpl_semi_sync_slave_enabled=', @@rpl_semi_sync_slave_enabled, ' sync_relay_log=', @@sync_relay_log)")"
    DURABILITY+="; a COMMIT returns once one replica acknowledged its events (written to its relay log)"
  else
    DURABILITY+="; a COMMIT returns after the primary's local commit; the replicas apply later"
  fi
  SB_PORT=${TOPO_PORTS[0]}
  DB_PORT=$SB_PORT
  prepare_sysbench
}

start_async() { start_native async; }
start_semisync() { start_native semisync; }

start_galera() {
  local dir=$BENCH_TMP/galera lib n i gcomm=() ist=() sst=() address opts deadline
  lib=$(find /usr/lib/galera /usr/lib/galera-4 /usr/lib64/galera /usr/lib -name libgalera_smm.so -print -quit 2>/dev/null || true)
  [ -n "$lib" ] || die "galera: no libgalera_smm.so (apt-get install galera-4)"
  command -v rsync >/dev/null || die "galera: rsync (the SST method) is not installed (apt-get install rsync)"
  for n in 1 2 3; do
    cluster_free_port; TOPO_PORTS+=("$CLUSTER_PORT")
    cluster_free_port; gcomm+=("$CLUSTER_PORT")
    cluster_free_port; ist+=("$CLUSTER_PORT")
    cluster_free_port; sst+=("$CLUSTER_PORT")
  done
  # The nodes run as the mysql account, as packaged servers do: run by root, the joiner's
  # rsync daemon (wsrep_sst_rsync's rsyncd.conf sets no uid) would switch to "nobody" and
  # could not write the datadir ("cannot stat destination: Permission denied"). mysql needs
  # to traverse BENCH_TMP for that.
  id mysql >/dev/null 2>&1 || die "galera: no mysql account (it comes with mariadb-server)"
  chmod 711 "$BENCH_TMP"
  NODE_USER=mysql
  address="gcomm://127.0.0.1:${gcomm[0]},127.0.0.1:${gcomm[1]},127.0.0.1:${gcomm[2]}"
  # One at a time: node 1 bootstraps the cluster, node 2 and node 3 join (rsync SST from a
  # Synced member; a joiner answers SELECT 1 only after its SST).
  for n in 1 2 3; do
    i=$((n - 1))
    read -r -a opts <<<"$(cluster_binlog_opts "$n")"
    opts+=(--wsrep-on=ON --wsrep-provider="$lib"
      --wsrep-cluster-name=shoal-bench --wsrep-cluster-address="$address"
      --wsrep-node-name="node-$n" --wsrep-node-address=127.0.0.1
      --wsrep-provider-options="base_port=${gcomm[$i]};gmcast.listen_addr=tcp://127.0.0.1:${gcomm[$i]};ist.recv_addr=127.0.0.1:${ist[$i]}"
      --wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:${sst[$i]}"
      --binlog-format=ROW --innodb-autoinc-lock-mode=2)
    [ "$n" = 1 ] && opts+=(--wsrep-new-cluster)
    start_node "$dir/node-$n" "${TOPO_PORTS[$i]}" "${opts[@]}"
    deadline=$((SECONDS + GALERA_SYNC_WAIT))
    until [ "$(status_var "${TOPO_PORTS[$i]}" wsrep_local_state_comment)" = Synced ]; do
      [ "$SECONDS" -lt "$deadline" ] || die "galera: node-$n not Synced within $GALERA_SYNC_WAIT s: $(tail -5 "$dir/node-$n/err.log")"
      sleep 0.2
    done
  done
  deadline=$((SECONDS + GALERA_SYNC_WAIT))
  for n in 1 2 3; do
    until [ "$(status_var "${TOPO_PORTS[$((n - 1))]}" wsrep_cluster_size)" = 3 ] \
      && [ "$(status_var "${TOPO_PORTS[$((n - 1))]}" wsrep_local_state_comment)" = Synced ]; do
      [ "$SECONDS" -lt "$deadline" ] || die "galera: node-$n does not see 3 Synced members within $GALERA_SYNC_WAIT s"
      sleep 0.2
    done
  done
  NODE_USER=root
  log "galera: 3 members, all Synced (Galera $(status_var "${TOPO_PORTS[0]}" wsrep_provider_version), SST rsync)"
  DURABILITY="$(durability "${TOPO_PORTS[0]}") on all three; $(db_sql "${TOPO_PORTS[0]}" "SELECT CONCAT('wsrep_on=', @@wsrep_on,
    ' innodb_autoinc_lock_mode=', @@innodb_autoinc_lock_mode, ' wsrep_sync_wait=', @@wsrep_sync_wait)");"
  DURABILITY+=" a COMMIT returns once its write set is delivered to all members in total order and certified (in memory, no fsync), then committed locally"
  SB_PORT=${TOPO_PORTS[0]}
  DB_PORT=$SB_PORT
  prepare_sysbench
}

start_shoal() {
  start_cluster "$BENCH_TMP/shoal"
  TOPO_PIDS+=("${CLUSTER_DB_PIDS[@]}" "${CLUSTER_NODE_PIDS[@]}")
  TOPO_PORTS=("${CLUSTER_DB_PORTS[@]}")
  DURABILITY="$(cluster_db_sql 1 "SELECT CONCAT('innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit,
    ' sync_binlog=', @@sync_binlog, ' log_bin=', @@log_bin, ' binlog_format=', @@binlog_format,
    ' binlog_row_image=', @@binlog_row_image, ' innodb_doublewrite=', @@innodb_doublewrite)") on all three;"
  DURABILITY+=" [wal] fsync=${SHOAL_WAL__FSYNC:-true}: a COMMIT (XA on the leader's MariaDB) returns once its Raft entry is fsynced on a quorum (2 of 3)"
  SB_PORT=$LEADER_PORT
  prepare_sysbench cluster
}

# --- run

# shellcheck disable=SC2046
start_mariadb "$BENCH_TMP/direct" $(cluster_binlog_opts 1)
DIRECT_PORT=$DB_PORT
[ "$(sql -e 'SELECT @@log_bin, @@binlog_format, @@binlog_row_image')" = "1	ROW	FULL" ] || die "the direct server's binlog is not ROW/FULL"
prepare_sysbench
printf 'direct\t%s\t-\n' "$(durability "$DIRECT_PORT"); a COMMIT returns after the local commit" >>"$SUMMARY"
log "direct: $(durability "$DIRECT_PORT")"

for TOPO in $REPL_BENCH_TOPOLOGIES; do
  declare -F "start_$TOPO" >/dev/null || die "unknown topology $TOPO (async, semisync, galera, shoal)"
  TOPO_PIDS=()
  TOPO_PORTS=()
  t0=$(date +%s)
  "start_$TOPO"
  wait_equal || die "$TOPO: the sysbench tables differ after the prepare: $SUMS"
  log "$TOPO: started and prepared in $(($(date +%s) - t0)) s; CHECKSUM TABLE sbtest1 equal on all three ($SUMS)"
  log "$TOPO durability: $DURABILITY"
  for test in $REPL_BENCH_TESTS; do
    for threads in $REPL_BENCH_THREADS; do
      for pair in $(seq 1 "$REPL_BENCH_PAIRS"); do
        read -r _ dp95 _ derr _ dtps <<<"$(run_sysbench "$test" "$threads" auto "$DIRECT_PORT" "$REPL_BENCH_SECONDS")"
        if [ "$TOPO" = semisync ]; then
          no_tx0=$(status_var "$SB_PORT" Rpl_semi_sync_master_no_tx)
          yes_tx0=$(status_var "$SB_PORT" Rpl_semi_sync_master_yes_tx)
        fi
        read -r _ tp95 _ terr _ ttps <<<"$(run_sysbench "$test" "$threads" auto "$SB_PORT" "$REPL_BENCH_SECONDS")"
        note=""
        if [ "$TOPO" = semisync ]; then
          semi_status=$(status_var "$SB_PORT" Rpl_semi_sync_master_status)
          no_tx=$(($(status_var "$SB_PORT" Rpl_semi_sync_master_no_tx) - no_tx0))
          yes_tx=$(($(status_var "$SB_PORT" Rpl_semi_sync_master_yes_tx) - yes_tx0))
          note="semisync status $semi_status, +$yes_tx acked, +$no_tx not acked"
          if [ "$semi_status" != ON ] || [ "$no_tx" -ne 0 ]; then
            note="FELL BACK TO ASYNC: $note"
            log "WARNING: $TOPO $test threads=$threads: semi-synchronous replication fell back to async ($note)"
          fi
        fi
        wait_equal || die "$TOPO: CHECKSUM TABLE sbtest1 still differs $CATCHUP_WAIT s after $test threads=$threads: $SUMS (logs in $BENCH_TMP/$TOPO)"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$TOPO" "$test" "$threads" "$pair" \
          "$dtps" "$dp95" "$derr" "$ttps" "$tp95" "$terr" "$CAUGHT_UP_S" "$note" >>"$RESULTS"
        log "$test threads=$threads pair $pair: direct $dtps tps p95 $dp95 ms errors $derr | $TOPO $ttps tps p95 $tp95 ms errors $terr, nodes equal after ${CAUGHT_UP_S} s${note:+ ($note)}"
      done
    done
  done
  # Replication really happened: the three nodes hold the same rows after all the points.
  wait_equal || die "$TOPO: CHECKSUM TABLE sbtest1 differs: $SUMS (logs in $BENCH_TMP/$TOPO)"
  if [ "$TOPO" = shoal ]; then
    cluster_wait_leader "$LEADER_WAIT" || die "shoal: the cluster lost its leader during the run"
    log "shoal: leader node-$CLUSTER_LEADER (term $CLUSTER_TERM)"
  fi
  log "$TOPO: CHECKSUM TABLE sbtest1 after the runs: $SUMS (equal)"
  printf '%s\t%s\t%s\n' "$TOPO" "$DURABILITY" "$SUMS" >>"$SUMMARY"
  stop_topology
done

python3 - "$RESULTS" "$SUMMARY" "$STARTED" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] || echo +dirty)" \
  "$REPL_BENCH_SECONDS" "$REPL_BENCH_PAIRS" "$BENCH_TABLE_SIZE" "$(($(date +%s) - T_START))" "$(nproc)" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
topos = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
started, commit, secs, pairs, size, wall, cpus = sys.argv[3:10]
med = statistics.median
print(f"\n### Replicated writes: direct mariadbd vs async, semisync, Galera and shoal (3 nodes each), {started}, commit {commit}\n")
print("| test | threads | topology | tps | adjacent direct tps | ratio to direct | p95 ms | errors | nodes equal after s | notes |")
print("|---|---|---|---|---|---|---|---|---|---|")
for test in dict.fromkeys(r[1] for r in rows):
    for t in sorted({r[2] for r in rows if r[1] == test}, key=int):
        point = [r for r in rows if r[1] == test and r[2] == t]
        d = [float(r[4]) for r in point]
        print(f"| {test} | {t} | direct | {med(d):.0f} | | 1.00 | {med(float(r[5]) for r in point):.2f} | "
              f"{sum(int(r[6]) for r in point)} | | {len(d)} runs, {min(d):.0f}-{max(d):.0f} tps |")
        for topo in dict.fromkeys(r[0] for r in point):
            rs = [r for r in point if r[0] == topo]
            dt = [float(r[4]) for r in rs]; tt = [float(r[7]) for r in rs]
            ratio = med(b / a for a, b in zip(dt, tt) if a > 0)
            notes = "; ".join(dict.fromkeys(r[11] for r in rs if r[11]))
            print(f"| {test} | {t} | {topo} | {med(tt):.0f} | {med(dt):.0f} | {ratio:.2f} | {med(float(r[8]) for r in rs):.2f} | "
                  f"{sum(int(r[9]) for r in rs)} | {max(float(r[10]) for r in rs):.1f} | {notes} |")
print(f"\n{secs} s runs, {pairs} pair(s) per point (direct, then the topology), {size} rows, prepared statements, "
      f"every node on this {cpus}-CPU machine; ratio = median of the pair ratios; errors = sysbench's ignored errors "
      f"summed over the pairs; nodes equal after = the longest wait, after a point, until CHECKSUM TABLE sbtest1 was "
      f"equal on the three nodes (the replicas' lag); wall time {int(wall) // 60} min {int(wall) % 60} s.\n")
for topo, dur, sums in topos:
    print(f"* {topo}: {dur}" + ("" if sums == "-" else f"; CHECKSUM TABLE sbtest1 after the runs: {sums}"))
fell = [r for r in rows if r[11].startswith("FELL BACK")]
if fell:
    print(f"\n**WARNING: semi-synchronous replication fell back to async in {len(fell)} run(s); those semisync numbers are async ones.**")
PY
