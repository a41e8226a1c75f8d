#!/usr/bin/env bash
# Memory check: a mixed workload of all four commands against redis-server
# under valgrind, with the module loaded.
#
#   tools/leakcheck.sh [COMMANDS] [SO]     (default 100000, target/release/...)
#
# Debian's redis-server allocates through libjemalloc.so.2; valgrind's
# --soname-synonyms makes it replace that library's malloc/free, so every
# allocation of the server and of the module (RedisModule_Alloc -> zmalloc
# -> malloc) is tracked. After a clean SHUTDOWN the leak records are read:
# a record counts against the module when its allocation stack has a frame
# in the module's code; it is a load-time one when RedisModule_OnLoad is on
# the stack. Fails if the module has any bytes definitely or indirectly lost
# (at load or while serving), any valgrind error (invalid read/write...) in
# a module frame, or a reply count or error count other than expected.
# "Possibly lost" is reported, not failed on.
# Bounded: each phase has a timeout; the whole run takes a few minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N=${1:-${LEAK_COMMANDS:-100000}}
SO=${2:-$ROOT/target/release/libredis_ratelimit.so}
[ -f "$SO" ] || { echo "module not found: $SO (run cargo build --release)"; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 2; }

DIR=$(mktemp -d /tmp/rl-leakcheck.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$DIR/valgrind.log
CLI="redis-cli -p $PORT"
VG_PID=
cleanup() {
  if [ -n "$VG_PID" ] && kill -0 "$VG_PID" 2>/dev/null; then kill -9 "$VG_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "== valgrind redis-server on port $PORT (dir $DIR)"
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --soname-synonyms=somalloc=libjemalloc.so* --num-callers=40 \
  --log-file="$LOG" \
  redis-server --port "$PORT" --bind 127.0.0.1 --dir "$DIR" --save "" \
  --appendonly no --daemonize no --loadmodule "$SO" >"$DIR/redis.log" 2>&1 &
VG_PID=$!

for _ in $(seq 1 300); do
  if [ "$($CLI PING 2>/dev/null)" = PONG ]; then break; fi
  kill -0 "$VG_PID" 2>/dev/null || { echo "server died at start"; cat "$LOG"; exit 1; }
  sleep 0.2
done
[ "$($CLI PING)" = PONG ] || { echo "server did not answer"; exit 1; }
# Never talk to a server we did not start.
[ "$($CLI INFO server | tr -d '\r' | sed -n 's/^process_id://p')" = "$VG_PID" ] \
  || { echo "port $PORT is not our server"; exit 1; }

echo "== sending $N commands"
python3 "$ROOT/tools/leak_workload.py" "$N" 6 >"$DIR/cmds.resp" 2>"$DIR/expected_errors"
start=$(date +%s)
timeout 1800 $CLI --pipe --pipe-timeout 600 <"$DIR/cmds.resp" >"$DIR/pipe.out" 2>&1 || true
end=$(date +%s)
cat "$DIR/pipe.out" | tail -n 2
replies=$(sed -n 's/.*errors: \([0-9]*\), replies: \([0-9]*\).*/\2/p' "$DIR/pipe.out")
errors=$(sed -n 's/.*errors: \([0-9]*\), replies: \([0-9]*\).*/\1/p' "$DIR/pipe.out")
expected=$(cat "$DIR/expected_errors")
echo "replies $replies of $N in $((end - start)) s; errors $errors (expected $expected)"
fail=0
[ "$replies" = "$N" ] || { echo "FAIL: reply count"; fail=1; }
[ "$errors" = "$expected" ] || { echo "FAIL: error count"; fail=1; }
[ "$($CLI PING)" = PONG ] || { echo "FAIL: server stopped answering"; fail=1; }
keys=$($CLI DBSIZE)
mem=$($CLI INFO memory | tr -d '\r' | sed -n 's/^used_memory://p')
echo "keys $keys, used_memory $mem"
# Drop the data first so that what remains at exit is the server's own.
$CLI FLUSHALL >/dev/null
$CLI SHUTDOWN NOSAVE >/dev/null 2>&1 || true
for _ in $(seq 1 600); do kill -0 "$VG_PID" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$VG_PID" 2>/dev/null; then echo "FAIL: server did not exit"; exit 1; fi
VG_PID=

python3 - "$LOG" "$fail" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
fail = int(sys.argv[2])
body = re.sub(r"^==\d+== ?", "", log, flags=re.M)
# A stack is the module's when a frame is in its code (Rust symbols of the
# crate or of redis-module, or the .so named when no debug info applies).
MODULE = re.compile(r"redis_ratelimit|libredis_ratelimit|redis_module::|RedisModule_OnLoad")
def total(kind):
    m = re.search(kind + r" lost: ([\d,]+) bytes in ([\d,]+) blocks", body)
    return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else (0, 0)
num = lambda s: int(s.replace(",", ""))
records = re.split(r"\n(?=\S)", body)
mod = {(k, p): 0 for k in ("definitely", "indirectly", "possibly") for p in ("load", "serving")}
where = []
mod_errors = []
for r in records:
    m = re.match(r"([\d,]+)(?: \(([\d,]+) direct, ([\d,]+) indirect\))? bytes in [\d,]+ blocks are (definitely|indirectly|possibly) lost", r)
    if m and MODULE.search(r):
        phase = "load" if "RedisModule_OnLoad" in r else "serving"
        if m.group(4) == "definitely" and m.group(2):
            # "X (D direct, I indirect) bytes ... definitely lost": D definite.
            mod[("definitely", phase)] += num(m.group(2))
        else:
            mod[(m.group(4), phase)] += num(m.group(1))
        fn = re.findall(r"by 0x[0-9A-F]+: (redis_ratelimit::[\w:]+)", r)
        where.append("%s (%s, %s): %s" % (r.splitlines()[0], phase, m.group(4), fn[-1] if fn else "?"))
    elif re.match(r"(Invalid|Conditional|Use of uninit|Mismatched|Source and dest)", r) and MODULE.search(r):
        mod_errors.append(r.splitlines()[0])
d, db = total("definitely")
i, ib = total("indirectly")
p, pb = total("possibly")
errs = re.search(r"ERROR SUMMARY: ([\d,]+) errors", body)
print("valgrind, whole server: definitely lost %d bytes in %d blocks, indirectly lost %d bytes in %d blocks,"
      " possibly lost %d bytes in %d blocks (Redis' sds strings are pointed to past their header)"
      % (d, db, i, ib, p, pb))
for phase in ("serving", "load"):
    print("attributed to the module while %s: definitely lost %d bytes, indirectly lost %d bytes,"
          " possibly lost %d bytes"
          % ("serving commands" if phase == "serving" else "loading (once)",
             mod[("definitely", phase)], mod[("indirectly", phase)], mod[("possibly", phase)]))
print("memory errors in module frames: %d" % len(mod_errors))
for w in where[:20]:
    print("  module loss record:", w)
for e in mod_errors[:10]:
    print("  module error:", e)
if any(v for (k, _), v in mod.items() if k != "possibly") or mod_errors:
    fail = 1
print("leakcheck:", "FAIL" if fail else "PASS", "(valgrind log: %s)" % sys.argv[1])
sys.exit(fail)
PY
