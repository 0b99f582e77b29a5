# shellcheck shell=bash
# A local three-node shoal cluster on 127.0.0.1, each node (`shoal start --bootstrap`)
# fronting its own throwaway mariadbd (binlog on, ROW/FULL, its own server_id). Sourced by
# config/demo.sh (`make demo`) and proxy-tests/bench/lib.sh (proxy-tests/bench/cluster.sh),
# so the start-up is written once.
#
# Set before cluster_start (only CLUSTER_BIN and CLUSTER_DIR are required):
#   CLUSTER_BIN              the shoal binary
#   CLUSTER_DIR              a directory of its own (datadirs, configs, logs, secret)
#   CLUSTER_PROXY_PORTS=()   proxy port of node 1..3 (missing or empty: a free port)
#   CLUSTER_API_PORTS=()     HTTP API port of node 1..3 (idem)
#   CLUSTER_DB_OPTS=()       extra mariadbd options (tuning); the binlog ones are added
#   CLUSTER_ACCOUNTS_SQL     SQL run as root on every node's MariaDB before shoal starts
#                            (client accounts: each MariaDB is separate)
#   CLUSTER_SERVICE_GRANTS   the GRANTs of the service account 'shoal'@'%' (default: ALL
#                            PRIVILEGES ON *.* WITH GRANT OPTION; see cluster_start)
#   CLUSTER_EXTRA_TOML       appended to every node's config
#   CLUSTER_LOG_LEVEL        shoal --log-level (info)
# Set by it:
#   CLUSTER_DB_PORTS[i] CLUSTER_DB_PIDS[i] CLUSTER_NODE_PIDS[i] CLUSTER_PEERS[i]
#   CLUSTER_PROXY_PORTS[i] CLUSTER_API_PORTS[i]   (i = 0..2 for node-1..node-3)
#   CLUSTER_LEADER / CLUSTER_TERM                  by cluster_wait_leader (node number)
#   CLUSTER_FIRST                                  by cluster_wait_preferred (first leader seen)
# Functions:
#   cluster_tools                 finds mariadbd, mariadb-install-db, mariadb (CLUSTER_MARIADBD, ...)
#   cluster_free_port             sets CLUSTER_PORT: a port nothing listens on (20000-32767, below
#                                 the ephemeral range), not handed out before
#   cluster_binlog_opts N         the mariadbd flags capture needs (src/capture/setup.rs) for node N
#   cluster_start                 mariadbd x3, accounts, secret, configs, shoal x3; waits for the APIs
#   cluster_wait_leader SECONDS   until every running node agrees on one leader
#   cluster_wait_preferred SECONDS  a leader, then up to SECONDS for node-1 (preferred) to lead
#   cluster_db_sql N SQL          root on node N's MariaDB (-N -B)
#   cluster_write N USER PASS SQL through node N's proxy, retrying while a leader is being elected
#   cluster_stop                  TERM (then KILL) every shoal node, then every mariadbd
#   cluster_logs                  tail of every node's log and MariaDB error log

CLUSTER_DB_PORTS=()
CLUSTER_DB_PIDS=()
CLUSTER_NODE_PIDS=()
CLUSTER_PEERS=()
CLUSTER_TAKEN=()

cluster_say() { printf 'cluster: %s\n' "$*" >&2; }

cluster_find_tool() {
  local n d
  for n in "$@"; do
    for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
      [ -x "$d/$n" ] && { echo "$d/$n"; return 0; }
    done
  done
  cluster_say "none of $* is installed; run: sudo apt-get install -y mariadb-server mariadb-client"
  return 1
}

cluster_tools() {
  CLUSTER_MARIADBD="$(cluster_find_tool mariadbd mysqld)" || return 1
  CLUSTER_INSTALL_DB="$(cluster_find_tool mariadb-install-db mysql_install_db)" || return 1
  CLUSTER_CLIENT="$(cluster_find_tool mariadb mysql)" || return 1
  command -v python3 >/dev/null || { cluster_say "python3 is not installed (sudo apt-get install -y python3)"; return 1; }
}

cluster_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sets CLUSTER_PORT to a port nothing listens on and not handed out before (no subshell:
# it records the port).
cluster_free_port() {
  local p t
  while :; do
    p=$(( 20000 + RANDOM % 12768 ))
    for t in "${CLUSTER_TAKEN[@]}"; do [ "$t" = "$p" ] && continue 2; done
    cluster_in_use "$p" || { CLUSTER_TAKEN+=("$p"); CLUSTER_PORT=$p; return 0; }
  done
}

# The flags behind src/capture/setup.rs REQUIREMENTS (my_cnf_snippet).
cluster_binlog_opts() {
  echo "--server-id=$1 --log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL --default-storage-engine=InnoDB"
}

cluster_db_sql() {
  local n=$1
  shift
  "$CLUSTER_CLIENT" --no-defaults -h127.0.0.1 -P"${CLUSTER_DB_PORTS[$((n - 1))]}" -uroot -N -B -e "$*"
}

cluster_logs() {
  local n
  for n in 1 2 3; do
    [ -f "$CLUSTER_DIR/node-$n/node.log" ] && { echo "--- node-$n: $CLUSTER_DIR/node-$n/node.log"; tail -n 15 "$CLUSTER_DIR/node-$n/node.log"; }
    [ -f "$CLUSTER_DIR/db-$n/error.log" ] && { echo "--- node-$n's mariadbd: $CLUSTER_DIR/db-$n/error.log"; tail -n 5 "$CLUSTER_DIR/db-$n/error.log"; }
  done >&2
}

cluster_start() {
  local n i p user_opt=() tuning=("${CLUSTER_DB_OPTS[@]}")
  [ -n "${CLUSTER_MARIADBD:-}" ] || cluster_tools || return 1
  [ "$(id -u)" = 0 ] && user_opt=(--user=root)
  CLUSTER_TAKEN+=("${CLUSTER_PROXY_PORTS[@]}" "${CLUSTER_API_PORTS[@]}")
  mkdir -p "$CLUSTER_DIR/tmp"

  # --- three mariadbd from one template datadir
  "$CLUSTER_INSTALL_DB" --no-defaults "${user_opt[@]}" --auth-root-authentication-method=normal --skip-test-db \
    --datadir="$CLUSTER_DIR/template" --tmpdir="$CLUSTER_DIR/tmp" >"$CLUSTER_DIR/install.log" 2>&1 \
    || { cat "$CLUSTER_DIR/install.log" >&2; return 1; }
  for n in 1 2 3; do
    cluster_free_port
    p=$CLUSTER_PORT
    CLUSTER_DB_PORTS+=("$p")
    mkdir -p "$CLUSTER_DIR/db-$n"
    cp -a "$CLUSTER_DIR/template" "$CLUSTER_DIR/db-$n/data"
    # shellcheck disable=SC2046
    "$CLUSTER_MARIADBD" --no-defaults "${user_opt[@]}" --datadir="$CLUSTER_DIR/db-$n/data" \
      --socket="$CLUSTER_DIR/db-$n/sock" --pid-file="$CLUSTER_DIR/db-$n/pid" --log-error="$CLUSTER_DIR/db-$n/error.log" \
      --tmpdir="$CLUSTER_DIR/tmp" --port="$p" --bind-address=127.0.0.1 $(cluster_binlog_opts "$n") \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci "${tuning[@]}" \
      </dev/null >/dev/null 2>&1 &
    CLUSTER_DB_PIDS+=($!)
    disown "$!"   # no "Killed" job notice from this shell when one is killed -9 (it is still reaped)
  done
  for n in 1 2 3; do
    for i in $(seq 1 300); do
      cluster_db_sql "$n" "SELECT 1" >/dev/null 2>&1 && break
      kill -0 "${CLUSTER_DB_PIDS[$((n - 1))]}" 2>/dev/null || break
      sleep 0.1
    done
    cluster_db_sql "$n" "SELECT 1" >/dev/null || { cluster_say "node-$n's mariadbd did not start"; cluster_logs; return 1; }
    cluster_say "node-$n's mariadbd on 127.0.0.1:${CLUSTER_DB_PORTS[$((n - 1))]} (pid ${CLUSTER_DB_PIDS[$((n - 1))]}, server_id $n)"
  done

  # --- the service account the nodes use, and the caller's accounts, on every MariaDB.
  # ALL PRIVILEGES WITH GRANT OPTION by default, because a follower replays replicated DDL
  # as this account: it needs at least what any client account may do. What cluster mode
  # itself needs, tried on MariaDB 10.11.19 (start, DDL and writes through the leader, kill -9
  # of the leader, writes through the new one): the set below works; without BINLOG MONITOR or
  # CREATE USER capture does not start; SLAVE MONITOR is not needed; BINLOG ADMIN, BINLOG
  # REPLAY and READ_ONLY ADMIN are the applier's (docs/replication.md, not re-tried here):
  #   GRANT SELECT ON mysql.* (logins); GRANT REPLICATION SLAVE, BINLOG MONITOR, BINLOG ADMIN,
  #   BINLOG REPLAY, READ_ONLY ADMIN, CREATE USER ON *.* (binlog dump, SHOW MASTER STATUS,
  #   sql_log_bin, BINLOG statements, read_only; CREATE USER for GRANT ... TO PUBLIC, else
  #   error 1410); GRANT ALL ON shoal_meta.* WITH GRANT OPTION; plus the DDL privileges
  #   (CREATE, DROP, ALTER, INDEX, ...) on *.* for what clients run.
  local svc_pw="shoal-$RANDOM$RANDOM$RANDOM"
  printf '%s\n' "$svc_pw" >"$CLUSTER_DIR/shoal-password"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$CLUSTER_DIR/cluster.secret"
  echo >>"$CLUSTER_DIR/cluster.secret"
  chmod 600 "$CLUSTER_DIR/shoal-password" "$CLUSTER_DIR/cluster.secret"
  for n in 1 2 3; do
    cluster_db_sql "$n" "CREATE USER 'shoal'@'%' IDENTIFIED BY '$svc_pw';
      ${CLUSTER_SERVICE_GRANTS:-GRANT ALL PRIVILEGES ON *.* TO 'shoal'@'%' WITH GRANT OPTION;}
      ${CLUSTER_ACCOUNTS_SQL:-}" || { cluster_say "creating the accounts on node-$n's MariaDB failed"; return 1; }
  done

  # --- three nodes
  for n in 1 2 3; do cluster_free_port; CLUSTER_PEERS+=("127.0.0.1:$CLUSTER_PORT"); done
  local peers
  peers="$(printf '"%s", ' "${CLUSTER_PEERS[@]}")"
  peers="${peers%, }"
  for n in 1 2 3; do
    i=$((n - 1))
    [ -n "${CLUSTER_PROXY_PORTS[$i]:-}" ] || { cluster_free_port; CLUSTER_PROXY_PORTS[i]=$CLUSTER_PORT; }
    [ -n "${CLUSTER_API_PORTS[$i]:-}" ] || { cluster_free_port; CLUSTER_API_PORTS[i]=$CLUSTER_PORT; }
    mkdir -p "$CLUSTER_DIR/node-$n"
    cat >"$CLUSTER_DIR/node-$n/node.toml" <<TOML
[node]
id = "node-$n"
bind_address = "${CLUSTER_PEERS[$i]}"
data_dir = "$CLUSTER_DIR/node-$n/data"

[database]
host = "127.0.0.1"
port = ${CLUSTER_DB_PORTS[$i]}
user = "shoal"
password_file = "$CLUSTER_DIR/shoal-password"

[cluster]
peers = [$peers]
secret_file = "$CLUSTER_DIR/cluster.secret"

[api]
bind_address = "127.0.0.1:${CLUSTER_API_PORTS[$i]}"

[proxy]
bind_address = "127.0.0.1:${CLUSTER_PROXY_PORTS[$i]}"
${CLUSTER_EXTRA_TOML:-}
TOML
  done
  for n in 1 2 3; do
    env -u SHOAL_CONFIG "$CLUSTER_BIN" --log-level "${CLUSTER_LOG_LEVEL:-info}" start --bootstrap \
      -c "$CLUSTER_DIR/node-$n/node.toml" </dev/null >/dev/null 2>"$CLUSTER_DIR/node-$n/node.log" &
    CLUSTER_NODE_PIDS+=($!)
    disown "$!"
  done
  for n in 1 2 3; do
    i=$((n - 1))
    for _ in $(seq 1 300); do
      "$CLUSTER_BIN" servers --api "127.0.0.1:${CLUSTER_API_PORTS[$i]}" >/dev/null 2>&1 && break
      kill -0 "${CLUSTER_NODE_PIDS[$i]}" 2>/dev/null || { cluster_say "node-$n exited"; cluster_logs; return 1; }
      sleep 0.1
    done
    "$CLUSTER_BIN" servers --api "127.0.0.1:${CLUSTER_API_PORTS[$i]}" >/dev/null 2>&1 \
      || { cluster_say "node-$n's API did not answer"; cluster_logs; return 1; }
    cluster_say "node-$n (pid ${CLUSTER_NODE_PIDS[$i]}): proxy 127.0.0.1:${CLUSTER_PROXY_PORTS[$i]}, API 127.0.0.1:${CLUSTER_API_PORTS[$i]}, peer ${CLUSTER_PEERS[$i]}"
  done
}

# Prints "LEADER TERM" when every API in "$@" answers /cluster and all name the same leader,
# which calls itself leader; else nothing.
cluster_agreed_leader() {
  python3 - "$@" 2>/dev/null <<'PY'
import json, sys, urllib.request
seen = []
for api in sys.argv[1:]:
    try:
        seen.append(json.load(urllib.request.urlopen(f"http://{api}/cluster", timeout=1)))
    except Exception:
        sys.exit(0)
leaders = [c for c in seen if c.get("role") == "leader"]
if len(leaders) == 1 and all(c.get("leader_id") == leaders[0]["node_id"] and c.get("term") == leaders[0]["term"] for c in seen):
    print(leaders[0]["node_id"], leaders[0]["term"])
PY
}

# cluster_wait_leader SECONDS: waits until every running node agrees on one leader; sets
# CLUSTER_LEADER (node number) and CLUSTER_TERM.
cluster_wait_leader() {
  local deadline=$((SECONDS + ${1:-30})) apis=() i out
  while :; do
    apis=()
    for i in 0 1 2; do
      kill -0 "${CLUSTER_NODE_PIDS[$i]}" 2>/dev/null && apis+=("127.0.0.1:${CLUSTER_API_PORTS[$i]}")
    done
    out="$(cluster_agreed_leader "${apis[@]}")"
    if [ -n "$out" ]; then
      read -r CLUSTER_LEADER CLUSTER_TERM <<<"$out"
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || { cluster_say "no agreed leader after ${1:-30} s"; cluster_logs; return 1; }
    sleep 0.2
  done
}

# cluster_wait_preferred SECONDS: cluster_wait_leader, then, when another node won the first
# election, waits up to SECONDS for node-1 (the preferred leader: lowest id) to take over, as
# it does shortly after a bootstrap; sets CLUSTER_FIRST to the first leader seen.
cluster_wait_preferred() {
  local deadline=$((SECONDS + ${1:-10}))
  cluster_wait_leader 60 || return 1
  CLUSTER_FIRST=$CLUSTER_LEADER
  while [ "$CLUSTER_LEADER" != 1 ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.2
    cluster_wait_leader 30 || return 1
  done
}

# cluster_write N USER PASS SQL: through node N's proxy; retries while the node refuses writes
# because it was just elected or knows no leader (error 1290, nothing ran).
cluster_write() {
  local n=$1 user=$2 pass=$3 sql=$4 deadline=$((SECONDS + 30)) err
  while :; do
    err="$("$CLUSTER_CLIENT" --no-defaults -h127.0.0.1 -P"${CLUSTER_PROXY_PORTS[$((n - 1))]}" -u"$user" -p"$pass" \
      -e "$sql" 2>&1 >/dev/null)" && return 0
    if [[ "$err" == *"ERROR 1290"* ]] && [[ "$err" == *"just elected"* || "$err" == *"no leader"* ]] \
      && [ "$SECONDS" -lt "$deadline" ]; then
      sleep 0.2
      continue
    fi
    cluster_say "through node-$n: $err"
    return 1
  done
}

# TERM, up to 10 s, KILL. Polls with kill -0: the processes are disowned (not waitable).
cluster_stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cluster_stop() {
  local pid
  for pid in "${CLUSTER_NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CLUSTER_NODE_PIDS[@]}"; do cluster_stop_pid "$pid"; done
  for pid in "${CLUSTER_DB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${CLUSTER_DB_PIDS[@]}"; do cluster_stop_pid "$pid"; done
  CLUSTER_NODE_PIDS=()
  CLUSTER_DB_PIDS=()
}
