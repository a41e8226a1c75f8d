#!/usr/bin/env bash
# Runs every client example against a private redis-server with the module
# and checks what each prints. Fails (never skips) when a toolchain is missing.
#
#   examples/run.sh            all examples
#   RL_MODULE=/abs/path.so examples/run.sh
#
# First run: creates examples/.venv (redis-py), runs `npm ci` in
# examples/node and builds examples/rust (about 30 s on 2 cores).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$EXAMPLES_DIR"

need python3 "install Python 3 (python3, python3-venv) for the Python example"
need node "install Node.js 18+ for the Node example"
need npm "install npm for the Node example"
need cargo "install Rust (cargo) for the Rust example"
python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3 cannot create a venv: install python3-venv"

# --- toolchain setup (idempotent, quiet) ---------------------------------
VENV=$EXAMPLES_DIR/.venv
if ! "$VENV/bin/python" -c 'import redis' 2>/dev/null; then
  echo "setting up $VENV (redis-py)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r python/requirements.txt
fi
if [ ! -d node/node_modules/ioredis ] || [ node/package-lock.json -nt node/node_modules/.package-lock.json ]; then
  echo "installing examples/node dependencies (npm ci)"
  (cd node && npm ci --no-audit --no-fund --silent)
fi
echo "building examples/rust"
cargo build --quiet --manifest-path rust/Cargo.toml
RUST_BIN=$EXAMPLES_DIR/rust/target/debug/ratelimit-headers-example

# --- run ---------------------------------------------------------------
start_server
echo "redis-server pid $SERVER_PID at $REDIS_URL with $RL_MODULE"

pass=0 fail=0
run_example() {
  local name=$1; shift
  local out problem
  if ! out=$("$@" 2>&1); then
    echo "FAIL $name: exit status $?"; echo "$out" | sed 's/^/    /'
    fail=$((fail + 1)); return
  fi
  if problem=$(printf '%s\n' "$out" | python3 check_output.py); then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name: $problem"; echo "$out" | sed 's/^/    /'
    fail=$((fail + 1))
  fi
  [ -n "${VERBOSE:-}" ] && echo "$out" | sed 's/^/    /'
  return 0
}

run_example redis-cli bash redis-cli/ratelimit-headers.sh
run_example python "$VENV/bin/python" python/ratelimit_headers.py
run_example rust "$RUST_BIN"
run_example node node node/ratelimit-headers.js

echo "examples: $pass passed, $fail failed"
[ "$fail" = 0 ]
