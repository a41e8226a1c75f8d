#!/bin/bash
# Counts the instructions one command costs inside Redis (callgrind), the
# profile behind docs/performance.md. Instruction counts do not depend on
# what else the machine is doing, so two builds can be compared on a busy
# machine.
#
#   tools/callgrind.sh [-k KEYS] [-n N] [-m module.so] -- COMMAND ARGS...
#
# Starts the server ($RL_REDIS_SERVER, default redis-server; Valkey too)
# under valgrind on a free 127.0.0.1 port with the module
# loaded (default target/release/libredis_ratelimit.so), sends N (default
# 20,000) requests with redis-benchmark (10 clients, -P 16; __rand_int__ in
# the command is drawn from KEYS keys, default 100,000: with 20,000 requests
# most keys are new; with -k 1000 most exist), stops the server, and prints
# the inclusive instructions per call of the command's own function
# (RedisModuleCommandDispatcher for module commands, <name>Command for
# built-ins) and of the main module API calls under it. The callgrind file
# is kept for callgrind_annotate.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEYS=100000
N=20000
MODULE=$ROOT/target/release/libredis_ratelimit.so
while [ $# -gt 0 ]; do
  case "$1" in
    -k) KEYS=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -m) MODULE=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [-k KEYS] [-n N] [-m module.so] -- COMMAND ARGS..." >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "no command given" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind not installed" >&2; exit 2; }

SERVER=${RL_REDIS_SERVER:-redis-server}
DIR=$(mktemp -d /tmp/rl-callgrind.XXXXXX)
cp "$MODULE" "$DIR/module.so"   # a concurrent build must not swap it
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$DIR/callgrind.out" \
  "$SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
  --loadmodule "$DIR/module.so" >"$DIR/server.log" 2>&1 &
VPID=$!
trap 'kill $VPID 2>/dev/null || true' EXIT
for _ in $(seq 150); do
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  sleep 0.2
done
redis-benchmark -p "$PORT" -c 10 -P 16 -n "$N" -r "$KEYS" -q "$@" | tr "\r" "\n" | tail -1
redis-cli -p "$PORT" info commandstats | tr -d "\r" | grep -i "^cmdstat_rl\|^cmdstat_incr\|^cmdstat_floor\|^cmdstat_cl" || true
CALLS=$(redis-cli -p "$PORT" info commandstats | tr -d '\r' |
  grep -i "^cmdstat_$(echo "$1" | tr 'A-Z' 'a-z'):" | sed 's/^[^:]*:calls=\([0-9]*\),.*/\1/')
redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
wait $VPID || true
trap - EXIT
echo "$* : $CALLS calls; inclusive instructions per call:"
callgrind_annotate --inclusive=yes "$DIR/callgrind.out" 2>/dev/null |
  grep -E "^ *[0-9,]+ \(" |
  grep -E "(Redis|Valkey)ModuleCommandDispatcher|[a-z]+Command \[|[RV]M_Replicate \[|lookupCommandByCString|moduleCreateArgvFromUserFormat|[RV]M_StringTruncate|[RV]M_SetAbsExpire|[RV]M_GetAbsExpire|[RV]M_ReplyWithLongLong|[RV]M_OpenKey|[RV]M_CloseKey|engine::decide \[|engine::commit \[|commands::parse \[" |
  grep -v "processCommand\|lookupCommand \[" |
  grep -v "=>" | sed 's/(.*%)//; s|/work/[^ ]*/src/|src/|' |
  awk -v n="$CALLS" '{gsub(",", "", $1); printf "%10d  %s\n", $1 / n, $2}'
echo "(callgrind file: $DIR/callgrind.out)"
