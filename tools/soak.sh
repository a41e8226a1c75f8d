#!/usr/bin/env bash
# Soak test against a real redis-server (tests/soak.rs, ignored by `make test`).
#
#   tools/soak.sh [SECONDS] [CLIENTS] [KEYS]      (default 600, 50, 1000000)
#
# Bounded: load for SECONDS, then at most 180 s for every window to expire
# (plus the build). Prints operations, errors, used_memory baseline / peak /
# after, and p50 / p99 latency; fails on any error or if used_memory does not
# return to the empty baseline.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export SOAK_SECS=${1:-${SOAK_SECS:-600}}
export SOAK_CLIENTS=${2:-${SOAK_CLIENTS:-50}}
export SOAK_KEYS=${3:-${SOAK_KEYS:-1000000}}
export RL_MODULE=${RL_MODULE:-$ROOT/target/release/libredis_ratelimit.so}
[ -f "$RL_MODULE" ] || cargo build --release
exec timeout $((SOAK_SECS + 600)) \
  cargo test --release --test soak -- --ignored --nocapture --test-threads=1
