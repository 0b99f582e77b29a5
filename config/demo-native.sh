#!/usr/bin/env bash
# The demo behind `make demo-native`: shoal as a standalone proxy (`shoal proxy`) in front of
# MariaDB's own replication — a primary and two GTID replicas of its own in a temp dir (free
# ports, never a server you run) — on 127.0.0.1:8007 with its HTTP API on 127.0.0.1:8080.
# Ctrl-C stops everything and removes the temp dir. (`make demo` is the three-node shoal
# cluster: config/demo.sh.)
#
# Environment: SHOAL_BIN (default target/release/shoal), SHOAL_DEMO_PORT (8007),
# SHOAL_DEMO_API_PORT (8080), SHOAL_DEMO_KEEP=1 keeps the temp dir.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SHOAL_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/shoal}"
port="${SHOAL_DEMO_PORT:-8007}"
api_port="${SHOAL_DEMO_API_PORT:-8080}"

find_tool() {
  for n in "$@"; do
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      [ -x "$d/$n" ] && { echo "$d/$n"; return 0; }
    done
  done
  echo "demo: none of $* is installed; run: sudo apt-get install -y mariadb-server mariadb-client" >&2
  exit 1
}
mariadbd="$(find_tool mariadbd mysqld)"
install_db="$(find_tool mariadb-install-db mysql_install_db)"
client="$(find_tool mariadb mysql)"
[ -x "$bin" ] || { echo "demo: $bin not found; run 'make demo-native' (or cargo build --release)" >&2; exit 1; }

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" "$api_port"; do
  if in_use "$p"; then
    echo "demo: port $p is taken; stop what listens there or set SHOAL_DEMO_PORT / SHOAL_DEMO_API_PORT" >&2
    exit 1
  fi
done
free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    in_use "$p" || { echo "$p"; return; }
  done
}

tmp="$(mktemp -d /tmp/shoal-demo.XXXXXX)"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "demo: stopping"
  [ -n "${shoal_pid:-}" ] && kill -TERM "$shoal_pid" 2>/dev/null && wait "$shoal_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${SHOAL_DEMO_KEEP:-}" = 1 ]; then echo "demo: kept $tmp"; else rm -rf "$tmp"; fi
  echo "demo: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

user_opt=()
[ "$(id -u)" = 0 ] && user_opt=(--user=root)

echo "demo: creating a datadir in $tmp"
mkdir -p "$tmp/tmp"
"$install_db" --no-defaults "${user_opt[@]}" --auth-root-authentication-method=normal --skip-test-db \
  --datadir="$tmp/template" --tmpdir="$tmp/tmp" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; exit 1; }

names=(primary replica1 replica2)
ports=()
for i in 0 1 2; do
  name="${names[$i]}"
  p="$(free_port)"
  ports+=("$p")
  cp -a "$tmp/template" "$tmp/$name"
  extra=()
  [ "$i" -gt 0 ] && extra=(--read-only=1)
  "$mariadbd" --no-defaults "${user_opt[@]}" --datadir="$tmp/$name" --socket="$tmp/$name.sock" \
    --pid-file="$tmp/$name.pid" --log-error="$tmp/$name.err" --tmpdir="$tmp/tmp" --port="$p" --bind-address=127.0.0.1 \
    --server-id=$((i + 1)) --log-bin=mariadb-bin --log-slave-updates --gtid-strict-mode=1 \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=32M --innodb-flush-log-at-trx-commit=2 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci "${extra[@]}" \
    </dev/null >/dev/null 2>&1 &
  pids+=($!)
done

sql() { "$client" --no-defaults -h127.0.0.1 -P"$1" -uroot -N -B -e "$2"; }
for i in 0 1 2; do
  for _ in $(seq 1 300); do
    sql "${ports[$i]}" "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  sql "${ports[$i]}" "SELECT 1" >/dev/null || { cat "$tmp/${names[$i]}.err" >&2; exit 1; }
  echo "demo: ${names[$i]} mariadbd on 127.0.0.1:${ports[$i]}"
done

repl_pw="repl-$RANDOM$RANDOM"
svc_pw="shoal-$RANDOM$RANDOM"
printf '%s\n' "$svc_pw" >"$tmp/shoal-password"
chmod 600 "$tmp/shoal-password"
sql "${ports[0]}" "
  CREATE USER 'repl'@'%' IDENTIFIED BY '$repl_pw';
  GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
  CREATE USER 'shoal'@'%' IDENTIFIED BY '$svc_pw';
  GRANT SELECT ON mysql.* TO 'shoal'@'%';
  GRANT REPLICATION CLIENT ON *.* TO 'shoal'@'%';
  CREATE USER 'demo'@'%' IDENTIFIED BY 'demo';
  GRANT ALL ON *.* TO 'demo'@'%';
  CREATE DATABASE demo;
  CREATE TABLE demo.hello (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(100));
  INSERT INTO demo.hello (msg) VALUES ('hello from the primary');"
# SHOW SLAVE STATUS needs SLAVE MONITOR on MariaDB 10.5+ (the grant does not exist before).
sql "${ports[0]}" "GRANT SLAVE MONITOR ON *.* TO 'shoal'@'%'" 2>/dev/null || true
for i in 1 2; do
  sql "${ports[$i]}" "
    CHANGE MASTER TO master_host='127.0.0.1', master_port=${ports[0]}, master_user='repl',
      master_password='$repl_pw', master_use_gtid=slave_pos;
    START SLAVE;"
done
for i in 1 2; do
  for _ in $(seq 1 100); do
    [ "$(sql "${ports[$i]}" "SELECT COUNT(*) FROM demo.hello" 2>/dev/null || true)" = 1 ] && break
    sleep 0.1
  done
  echo "demo: ${names[$i]} replicates from the primary (GTID)"
done

echo "demo: starting shoal on 127.0.0.1:$port (HTTP API on 127.0.0.1:$api_port)"
"$bin" proxy --listen "127.0.0.1:$port" --api "127.0.0.1:$api_port" \
  --backend "127.0.0.1:${ports[0]}" --replica "127.0.0.1:${ports[1]}" --replica "127.0.0.1:${ports[2]}" \
  --backend-user shoal --backend-password-file "$tmp/shoal-password" 2>"$tmp/shoal.log" &
shoal_pid=$!
for _ in $(seq 1 100); do
  "$bin" servers --api "127.0.0.1:$api_port" >/dev/null 2>&1 && break
  kill -0 "$shoal_pid" 2>/dev/null || { cat "$tmp/shoal.log" >&2; exit 1; }
  sleep 0.1
done
sleep 2.2   # one more health round, so replica lag is known

echo
"$bin" servers --api "127.0.0.1:$api_port" || true
cat <<EOF

shoal is running (primary 127.0.0.1:${ports[0]}, replicas 127.0.0.1:${ports[1]} and 127.0.0.1:${ports[2]}). Try:

  mariadb -h127.0.0.1 -P$port -udemo -pdemo -e 'SELECT * FROM demo.hello'
  mariadb -h127.0.0.1 -P$port -udemo -pdemo -e 'SELECT @@port'   # a read: one of the replicas
  mariadb -h127.0.0.1 -P$port -udemo -pdemo -e "INSERT INTO demo.hello (msg) VALUES ('hi'); SELECT @@port FOR UPDATE"
  mariadb -h127.0.0.1 -P$port -udemo -pdemo demo        # interactive
  curl -s 127.0.0.1:$api_port/metrics | grep ^shoal_statements_total
  curl -s 127.0.0.1:$api_port/health
  $bin servers --api 127.0.0.1:$api_port
  $bin status --api 127.0.0.1:$api_port

Logs: $tmp/shoal.log (and $tmp/*.err for the MariaDB servers).
Press Ctrl-C to stop shoal and the three MariaDB servers (the temp dir is removed).
EOF
wait "$shoal_pid"
