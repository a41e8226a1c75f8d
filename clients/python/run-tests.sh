#!/usr/bin/env bash
# Test the Python client (clients/python) against a real redis-server with
# the module loaded. Builds nothing in Rust: build the module first
# (`cargo build --release` in the project root) or point RL_MODULE at it.
#
#   clients/python/run-tests.sh [pytest args...]
#
# 1. creates clients/python/.venv if missing and installs the package in
#    editable mode with its test and dev extras (again when pyproject.toml changes);
# 2. type-checks the package (and tools/) with mypy --strict;
# 3. builds the wheel (python -m build) and checks what it holds;
# 4. runs pytest (the suite starts its own redis-server and uvicorn, on free
#    127.0.0.1 ports, and stops them by pid).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
PY="$VENV/bin/python"

export RL_MODULE="${RL_MODULE:-$ROOT/target/release/libredis_ratelimit.so}"
case "$RL_MODULE" in /*) ;; *) RL_MODULE="$(pwd)/$RL_MODULE" ;; esac
if [ ! -f "$RL_MODULE" ]; then
  echo "run-tests.sh: module not found at $RL_MODULE; run 'cargo build --release' in $ROOT or set RL_MODULE" >&2
  exit 1
fi
# RL_REDIS_SERVER: the server binary to test against (default redis-server).
command -v "${RL_REDIS_SERVER:-redis-server}" >/dev/null || { echo "run-tests.sh: ${RL_REDIS_SERVER:-redis-server} is not installed" >&2; exit 1; }

if [ ! -x "$PY" ]; then
  echo "== creating $VENV"
  python3 -m venv "$VENV" 2>/dev/null || {
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$VENV"
  }
fi
STAMP="$VENV/.installed-$( (cat "$HERE/pyproject.toml"; "$PY" -V) | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "== installing redis-ratelimit (editable) with test and dev extras"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -e "$HERE[test,dev]"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi

cd "$HERE"
# RL_SKIP_STATIC=1 (make test-servers): the type check and the wheel do not
# depend on the server; make test runs them once.
if [ -z "${RL_SKIP_STATIC:-}" ]; then
echo "== mypy --strict src tools"
"$PY" -m mypy --strict src tools

echo "== python -m build --wheel"
DIST="$(mktemp -d)"
trap 'rm -rf "$DIST"' EXIT
"$PY" -m build --wheel --no-isolation --outdir "$DIST" . >"$DIST/build.log" 2>&1 || { cat "$DIST/build.log"; exit 1; }
WHEEL="$(ls "$DIST"/redis_ratelimit-*.whl)"
"$PY" - "$WHEEL" <<'PYEOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = {"redis_ratelimit/__init__.py", "redis_ratelimit/py.typed", "redis_ratelimit/aio/strategies.py",
        "redis_ratelimit/strategies.py", "redis_ratelimit/contrib/asok.py", "redis_ratelimit/contrib/asgi.py",
        "redis_ratelimit/contrib/wsgi.py", "redis_ratelimit/limits_storage.py",
        "redis_ratelimit/aio/limits_storage.py", "redis_ratelimit/_storage_core.py"}
missing = need - names
if missing:
    sys.exit(f"wheel lacks {sorted(missing)}")
print(f"built {sys.argv[1].rsplit('/', 1)[1]} ({len(names)} files)")
PYEOF
fi

echo "== pytest (RL_MODULE=$RL_MODULE, server ${RL_REDIS_SERVER:-redis-server})"
set +e
"$PY" -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "run-tests.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
