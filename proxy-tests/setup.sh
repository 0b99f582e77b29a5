#!/usr/bin/env bash
# Installs what the integration tests need on a fresh Debian/Ubuntu machine; quick and
# silent when everything is already there. Used by `make test` and `make demo`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

need_apt=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need_apt+=(mariadb-client)
command -v sysbench >/dev/null 2>&1 || need_apt+=(sysbench)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# mysql-connector-python 8.4 is pinned: its C extension loads with Debian 12's OpenSSL
# 3.0 (9.x wheels need OpenSSL 3.2), so both the pure and the C implementation are tested.
# PyNaCl gives PyMySQL MariaDB's client_ed25519 plugin.
py_ok='import pymysql, nacl, mysql.connector; from mysql.connector import HAVE_CEXT; assert mysql.connector.__version__.startswith("8.4")'
if ! python3 -c "$py_ok" >/dev/null 2>&1; then
  echo "setup: installing PyMySQL, PyNaCl and mysql-connector-python 8.4"
  pkgs=(pymysql pynacl "mysql-connector-python==8.4.0")
  python3 -m pip install -q "${pkgs[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${pkgs[@]}"
fi

if [ ! -d "$here/node/node_modules/mysql2" ]; then
  echo "setup: installing node mysql2"
  (cd "$here/node" && npm install --silent --no-audit --no-fund >/dev/null)
fi
