# Sourced by the scripts in examples/: locate the module and start a private
# redis-server with it on a free 127.0.0.1 port (stopped by pid on exit).
#
#   RL_MODULE        the module to load (default: target/release/libredis_ratelimit.so)
#   RL_REDIS_SERVER  the server binary (default: redis-server)

EXAMPLES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$EXAMPLES_DIR/.." && pwd)
RL_MODULE=${RL_MODULE:-$ROOT_DIR/target/release/libredis_ratelimit.so}
case $RL_MODULE in /*) ;; *) RL_MODULE=$PWD/$RL_MODULE ;; esac

die() { echo "examples: $*" >&2; exit 1; }

# need COMMAND HINT: fail (never skip) when a tool is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"
}

SERVER_PID=
SERVER_DIR=

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
  [ -n "$SERVER_DIR" ] && rm -rf "$SERVER_DIR"
  SERVER_DIR=
}

# start_server: sets PORT, REDIS_URL, SERVER_PID; installs an EXIT trap.
start_server() {
  local server=${RL_REDIS_SERVER:-redis-server}
  need "$server" "install Debian's redis-server (make deps)"
  need redis-cli "install Debian's redis-tools (make deps)"
  need python3 "needed to pick a free port"
  [ -f "$RL_MODULE" ] || die "module not found at $RL_MODULE: run 'cargo build --release' first (or set RL_MODULE)"
  trap stop_server EXIT
  SERVER_DIR=$(mktemp -d)
  local attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$server" --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$SERVER_DIR" --loadmodule "$RL_MODULE" >"$SERVER_DIR/redis.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 100); do
      if redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG; then
        REDIS_URL=redis://127.0.0.1:$PORT
        export REDIS_URL
        return 0
      fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  done
  cat "$SERVER_DIR/redis.log" >&2
  die "could not start redis-server with $RL_MODULE"
}
