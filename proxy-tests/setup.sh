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

# mysqlclient builds against MariaDB's C client library.
if ! pkg-config --exists libmariadb 2>/dev/null && ! pkg-config --exists mariadb 2>/dev/null; then
  echo "setup: installing libmariadb-dev and pkg-config (to build mysqlclient)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libmariadb-dev pkg-config python3-dev >/dev/null
fi

# mysql-connector-python 8.4 is pinned: its C extension loads with Debian 12's OpenSSL
# 3.0 (9.x wheels need OpenSSL 3.2), so both the pure and the C implementation are tested.
# PyNaCl gives PyMySQL MariaDB's client_ed25519 plugin; cryptography its caching_sha2_password
# RSA exchange.
py_ok='import pymysql, nacl, cryptography, MySQLdb, pytest, mysql.connector; from mysql.connector import HAVE_CEXT; assert mysql.connector.__version__.startswith("8.4"); assert MySQLdb.version_info[:3] == (2, 2, 7)'
if ! python3 -c "$py_ok" >/dev/null 2>&1; then
  echo "setup: installing PyMySQL, PyNaCl, cryptography, mysqlclient 2.2.7, pytest and mysql-connector-python 8.4"
  pkgs=(pymysql pynacl cryptography "mysqlclient==2.2.7" pytest "mysql-connector-python==8.4.0")
  python3 -m pip install -q "${pkgs[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${pkgs[@]}"
fi

if [ ! -d "$here/node/node_modules/mysql2" ]; then
  echo "setup: installing node mysql2"
  (cd "$here/node" && npm install --silent --no-audit --no-fund >/dev/null)
fi

# mysqlclient's own test suite ships in its sdist (not in the wheel): pinned, checked.
mc_dir="$here/clients/mysqlclient-2.2.7"
if [ ! -f "$mc_dir/tests/configdb.py" ]; then
  echo "setup: fetching mysqlclient 2.2.7's sdist (its test suite)"
  mc_url="https://files.pythonhosted.org/packages/61/68/810093cb579daae426794bbd9d88aa830fae296e85172d18cb0f0e5dd4bc/mysqlclient-2.2.7.tar.gz"
  mc_sha="24ae22b59416d5fcce7e99c9d37548350b4565baac82f95e149cac6ce4163845"
  tmp="$(mktemp)"
  python3 -c "import urllib.request, sys; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" "$mc_url" "$tmp"
  echo "$mc_sha  $tmp" | sha256sum -c --quiet
  tar xzf "$tmp" -C "$here/clients"
  rm -f "$tmp"
fi
