#!/usr/bin/env bash
# Peer check: the `limits` library's own Redis tests against the module.
#
# Downloads limits' sdist (pinned below) from PyPI at test time into a
# temporary directory (its tests are never stored in this repository),
# appends conftest_append.py to its tests/conftest.py, starts a private
# redis-server with the module on a free 127.0.0.1 port (stopped by pid),
# and runs limits' strategy and storage tests (the `redis` marker, plain
# Redis parameters only) twice:
#   storage  limits' strategies over redis_ratelimit.limits_storage
#            (ratelimit://, async+ratelimit://);
#   dropin   redis_ratelimit's drop-in strategy classes over limits'
#            RedisStorage (redis-py, also for asyncio).
# Every failure must be listed, with its reason, in known-differences.txt;
# a listed test that passes fails the run too (the list stays exact).
#
#   RL_MODULE        the module (default target/release/libredis_ratelimit.so)
#   RL_REDIS_SERVER  the server binary (default redis-server)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PKG="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$PKG/../.." && pwd)"
LIMITS_VERSION=5.8.0
# limits' own test pins (its uv.lock): pytest 9.2 aborts its suite at startup.
PINS=(
  "limits[redis,async-redis]==$LIMITS_VERSION" "pytest==9.0.2" "pytest-asyncio==1.3.0"
  "pytest-lazy-fixtures==1.4.0" "pytest-mock==3.15.1" "flaky==3.8.1" "hiro==1.1.1"
  "pymemcache==4.0.0" "pymongo==4.16.0" "valkey==6.1.1" "redis==7.0.1" "coredis==5.6.0"
)
VENV="$HERE/.venv"
PY="$VENV/bin/python"
SERVER_BIN="${RL_REDIS_SERVER:-redis-server}"
export RL_MODULE="${RL_MODULE:-$ROOT/target/release/libredis_ratelimit.so}"
[ -f "$RL_MODULE" ] || { echo "limits-suite: module not found at $RL_MODULE" >&2; exit 1; }

if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.installed-$( (printf '%s\n' "${PINS[@]}"; cat "$PKG/pyproject.toml") | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "== installing limits' test requirements into $VENV"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q "${PINS[@]}" -e "$PKG"
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi

WORK="$(mktemp -d /tmp/rl-limits-suite.XXXXXX)"
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== downloading limits $LIMITS_VERSION (sdist) from PyPI"
"$PY" -m pip download -q --no-deps --no-binary :all: "limits==$LIMITS_VERSION" -d "$WORK" >/dev/null
tar -xzf "$WORK/limits-$LIMITS_VERSION.tar.gz" -C "$WORK"
SUITE="$WORK/limits-$LIMITS_VERSION"
cat "$HERE/conftest_append.py" >>"$SUITE/tests/conftest.py"

for attempt in 1 2 3 4 5; do
  PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$SERVER_BIN" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    --loadmodule "$RL_MODULE" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    "$PY" -c "import redis,sys; sys.exit(0 if redis.Redis(port=$PORT).ping() else 1)" 2>/dev/null && break 2
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
done
[ -n "$SERVER_PID" ] || { cat "$WORK/server.log" >&2; echo "limits-suite: no server" >&2; exit 1; }
echo "== $("$SERVER_BIN" --version | cut -d' ' -f1-3) pid $SERVER_PID on 127.0.0.1:$PORT, module $RL_MODULE"

status=0
for mode in storage dropin; do
  files=(tests/test_strategy.py tests/aio/test_strategy.py)
  [ "$mode" = storage ] && files+=(tests/test_storage.py tests/aio/test_storage.py)
  echo "== limits $LIMITS_VERSION tests, mode $mode: ${files[*]}"
  (cd "$SUITE" && RL_SUITE_MODE=$mode RL_SUITE_PORT=$PORT ASYNC_REDIS_IMPLEMENTATION=redispy \
    "$PY" -m pytest -p no:cacheprovider -o addopts="" -q -m redis -rN \
    --junitxml="$WORK/$mode.xml" "${files[@]}" >"$WORK/$mode.log" 2>&1) || true
  tail -n 3 "$WORK/$mode.log"
  "$PY" "$HERE/check.py" "$mode" "$WORK/$mode.xml" "$HERE/known-differences.txt" "$WORK/$mode.log" || status=1
done
exit $status
