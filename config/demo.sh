#!/usr/bin/env bash
# The local demo behind `make demo`: a three-node shoal cluster on 127.0.0.1. Each node
# (`shoal start --bootstrap`, node-1..node-3) fronts its own throwaway mariadbd in a temp
# dir (free ports, binlog ROW/FULL, its own server_id; never a server you run); the nodes
# elect a leader over Raft, the leader's writes reach every node's MariaDB. node-1's proxy
# is on 127.0.0.1:8007 with its HTTP API on 127.0.0.1:8080, node-2 on 8017/8081, node-3 on
# 8027/8082 (a free port where one is taken). Ctrl-C stops every node and mariadbd and
# removes the temp dir. The start-up itself is config/cluster-lib.sh (shared with
# proxy-tests/bench/cluster.sh); `make demo-native` is shoal in front of MariaDB's own
# replication (config/demo-native.sh).
#
# Environment: SHOAL_BIN (default target/release/shoal), SHOAL_DEMO_PORT (8007; node-2 and
# node-3 get +10 and +20), SHOAL_DEMO_API_PORT (8080; +1 and +2), SHOAL_DEMO_KEEP=1 keeps
# the temp dir.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=config/cluster-lib.sh
source "$repo/config/cluster-lib.sh"
bin="${SHOAL_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/shoal}"
port="${SHOAL_DEMO_PORT:-8007}"
api_port="${SHOAL_DEMO_API_PORT:-8080}"

cluster_tools || exit 1
[ -x "$bin" ] || { echo "demo: $bin not found; run 'make demo' (or cargo build --release)" >&2; exit 1; }

for p in "$port" "$api_port"; do
  if cluster_in_use "$p"; then
    echo "demo: port $p is taken; stop what listens there or set SHOAL_DEMO_PORT / SHOAL_DEMO_API_PORT" >&2
    exit 1
  fi
done
CLUSTER_PROXY_PORTS=("$port")
CLUSTER_API_PORTS=("$api_port")
for k in 1 2; do
  p=$((port + 10 * k)) a=$((api_port + k))
  if cluster_in_use "$p"; then echo "demo: port $p is taken; node-$((k + 1)) gets a free port" >&2; p=""; fi
  if cluster_in_use "$a"; then echo "demo: port $a is taken; node-$((k + 1))'s API gets a free port" >&2; a=""; fi
  CLUSTER_PROXY_PORTS+=("$p")
  CLUSTER_API_PORTS+=("$a")
done

tmp="$(mktemp -d /tmp/shoal-demo.XXXXXX)"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  echo
  echo "demo: stopping"
  cluster_stop
  if [ "${SHOAL_DEMO_KEEP:-}" = 1 ]; then
    echo "demo: kept $tmp"
  else
    [ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || echo "demo: (SHOAL_DEMO_KEEP=1 keeps $tmp and its logs)"
    rm -rf "$tmp"
  fi
  echo "demo: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CLUSTER_BIN="$bin"
CLUSTER_DIR="$tmp"
CLUSTER_DB_OPTS=(--innodb-buffer-pool-size=64M --innodb-log-file-size=32M --innodb-flush-log-at-trx-commit=2)
CLUSTER_ACCOUNTS_SQL="CREATE USER 'demo'@'%' IDENTIFIED BY 'demo'; GRANT ALL ON *.* TO 'demo'@'%';"
echo "demo: starting three MariaDB servers and three shoal nodes in $tmp"
cluster_start || exit 1

echo "demo: waiting for a leader"
# node-1 is the preferred leader (lowest id): when another node won the first election,
# leadership moves to node-1 shortly; wait for that so the banner stays true.
cluster_wait_preferred 15 || exit 1
[ "$CLUSTER_FIRST" = "$CLUSTER_LEADER" ] || echo "demo: node-$CLUSTER_FIRST led first, then node-$CLUSTER_LEADER (the preferred node)"
leader=$CLUSTER_LEADER
li=$((leader - 1))
echo "demo: node-$leader leads (term $CLUSTER_TERM)"

cluster_write "$leader" demo demo "CREATE DATABASE demo;
  CREATE TABLE demo.hello (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(100));
  INSERT INTO demo.hello (msg) VALUES ('hello through node-$leader, the leader')" || { cluster_logs; exit 1; }
for n in 1 2 3; do
  for _ in $(seq 1 100); do
    [ "$(cluster_db_sql "$n" "SELECT COUNT(*) FROM demo.hello" 2>/dev/null || true)" = 1 ] && break
    sleep 0.1
  done
  [ "$(cluster_db_sql "$n" "SELECT COUNT(*) FROM demo.hello" 2>/dev/null || true)" = 1 ] \
    || { echo "demo: demo.hello did not reach node-$n's MariaDB" >&2; cluster_logs; exit 1; }
done
echo "demo: demo.hello created through node-$leader, present on all three MariaDB servers"

follower=1
[ "$leader" = 1 ] && follower=2
fi_=$((follower - 1))
P=("${CLUSTER_PROXY_PORTS[@]}")
A=("${CLUSTER_API_PORTS[@]}")
echo
"$bin" servers --api "127.0.0.1:${A[$li]}" || true
cat <<EOF

A three-node shoal cluster is running; every node fronts its own MariaDB:

  node-1  proxy 127.0.0.1:${P[0]}  API 127.0.0.1:${A[0]}  MariaDB 127.0.0.1:${CLUSTER_DB_PORTS[0]}  pid ${CLUSTER_NODE_PIDS[0]}
  node-2  proxy 127.0.0.1:${P[1]}  API 127.0.0.1:${A[1]}  MariaDB 127.0.0.1:${CLUSTER_DB_PORTS[1]}  pid ${CLUSTER_NODE_PIDS[1]}
  node-3  proxy 127.0.0.1:${P[2]}  API 127.0.0.1:${A[2]}  MariaDB 127.0.0.1:${CLUSTER_DB_PORTS[2]}  pid ${CLUSTER_NODE_PIDS[2]}

node-$leader leads (term $CLUSTER_TERM). Try:

  # reads on every node (each answers from its own MariaDB)
  mariadb -h127.0.0.1 -P${P[0]} -udemo -pdemo -e 'SELECT * FROM demo.hello'
  mariadb -h127.0.0.1 -P${P[1]} -udemo -pdemo -e 'SELECT * FROM demo.hello'
  mariadb -h127.0.0.1 -P${P[2]} -udemo -pdemo -e 'SELECT * FROM demo.hello'

  # a write through the leader reaches every node's MariaDB
  mariadb -h127.0.0.1 -P${P[$li]} -udemo -pdemo -e "INSERT INTO demo.hello (msg) VALUES ('hi')"
  mariadb -h127.0.0.1 -P${CLUSTER_DB_PORTS[2]} -uroot -e 'SELECT * FROM demo.hello'    # node-3's MariaDB itself

  # a write on a follower (node-$follower) is forwarded to the leader; the same session reads
  # it back on the follower (read-your-writes), and the LSN tells other sessions what to wait for
  mariadb -h127.0.0.1 -P${P[$fi_]} -udemo -pdemo -e "INSERT INTO demo.hello (msg) VALUES ('via a follower'); SELECT @@shoal_last_lsn; SELECT * FROM demo.hello"

  # the cluster as the nodes see it
  $bin servers --api 127.0.0.1:${A[$li]}
  curl -s 127.0.0.1:${A[$li]}/cluster/nodes
  curl -s 127.0.0.1:${A[$fi_]}/cluster

  # fail over: kill the leader and watch another node take over (this script reports it)
  kill -9 ${CLUSTER_NODE_PIDS[$li]}      # node-$leader
  $bin servers --api 127.0.0.1:${A[$fi_]}

Logs: $tmp/node-N/node.log (and $tmp/db-N/error.log for the MariaDB servers).
Press Ctrl-C to stop the three nodes and the three MariaDB servers (the temp dir is removed).
EOF

# Report nodes that exit and leadership changes until Ctrl-C.
gone=()
while :; do
  sleep 1
  for i in 0 1 2; do
    if [ -z "${gone[$i]:-}" ] && ! kill -0 "${CLUSTER_NODE_PIDS[$i]}" 2>/dev/null; then
      gone[i]=1
      echo "demo: node-$((i + 1)) (pid ${CLUSTER_NODE_PIDS[$i]}) exited"
    fi
  done
  apis=()
  for i in 0 1 2; do [ -n "${gone[$i]:-}" ] || apis+=("127.0.0.1:${A[$i]}"); done
  [ ${#apis[@]} -gt 0 ] || continue
  read -r now term <<<"$(cluster_agreed_leader "${apis[@]}")" || true
  if [ -n "${now:-}" ] && [ "$now" != "$leader" ]; then
    echo "demo: node-$now leads now (term $term): writes go to 127.0.0.1:${P[$((now - 1))]}; $bin servers --api 127.0.0.1:${A[$((now - 1))]}"
    leader=$now
  fi
done
