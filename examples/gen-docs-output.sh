#!/usr/bin/env bash
# Produces the redis-cli sessions shown in docs/commands.md and
# docs/algorithms.md: a private redis-server with the module on a free port,
# real replies from `redis-cli --no-raw` (RESP2) and `redis-cli -3 --no-raw`
# (RESP3). Each command is printed after the prompt `127.0.0.1:6379>` (the
# port of a default install; the script's server uses a private one), then
# its reply exactly as redis-cli printed it. Times (ms) vary a little from
# run to run: the server's clock runs between commands.
#
#   examples/gen-docs-output.sh > /tmp/docs-output.txt
#   examples/gen-docs-output.sh fixed gcra      only these sections
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_server

# Shows an argument as one would type it at the redis-cli prompt.
show() {
  local a out=""
  for a in "$@"; do
    if [[ -z $a || $a == *[[:space:]\"\;]* ]]; then a="\"${a//\"/\\\"}\""; fi
    out+="${out:+ }$a"
  done
  printf '%s' "$out"
}
cli()  { echo "127.0.0.1:6379> $(show "$@")"; redis-cli --no-raw -p "$PORT" "$@"; }
cli3() { echo "127.0.0.1:6379> $(show "$@")"; redis-cli -3 --no-raw -p "$PORT" "$@"; }
pause() { echo "    (${1} s later)"; sleep "$1"; }
section() { echo; echo "==== $1"; }
want() { [ -z "$SECTIONS" ] || [[ " ${SECTIONS} " == *" $1 "* ]]; }
SECTIONS="$*"

if want hit; then
  section hit
  cli RL.HIT user:42 3/10s
  cli RL.HIT user:42 3/10s
  cli RL.HIT user:42 3/10s
  cli RL.HIT user:42 3/10s
  cli RL.HIT user:42 3/10s COST 5
  section hit-multi
  cli RL.HIT api:7 "10/s;1000/h"
  cli RL.HIT api:7 "10/s;1000/h" COST 8
  cli RL.HIT api:7 "10/s;1000/h" COST 4
  cli RL.HIT api:7 "10 per second, 1000 per hour" COST 0
  section hit-resp3
  cli3 RL.HIT upload:7 "5 per 2 minutes" STRATEGY moving-window COST 2
fi

if want test; then
  section test
  cli RL.HIT login:9 2/m
  cli RL.TEST login:9 2/m COST 2
  cli RL.TEST login:9 2/m
  cli RL.TEST login:9 2/m
  cli RL.TEST nobody 2/m
  cli EXISTS nobody
fi

if want stats; then
  section stats
  cli RL.HIT user:7 "3/10s;100/day"
  cli RL.STATS user:7 "3/10s;100/day"
  cli RL.STATS user:7 5/m STRATEGY gcra BURST 2
  section stats-resp3
  cli3 RL.STATS user:7 "3/10s;100/day"
fi

if want clear; then
  section clear
  cli RL.HIT user:8 "3/10s;100/day"
  cli RL.HIT user:8 5/m STRATEGY sliding
  cli RL.CLEAR user:8 100/day
  cli RL.CLEAR user:8 "100/day;3/10s"
  cli RL.CLEAR user:8 5/m STRATEGY sliding
  cli EXISTS user:8
  cli RL.HIT user:8 3/10s
  cli RL.CLEAR user:8
  cli RL.CLEAR user:8
fi

if want errors; then
  section errors
  cli RL.HIT user:1
  cli RL.HIT user:1 10/fortnight
  cli RL.HIT user:1 "0/s"
  cli RL.HIT user:1 "10/s;20/1000ms"
  cli RL.HIT user:1 "10/s;"
  cli RL.HIT user:1 10/s STRATEGY leaky
  cli RL.HIT user:1 10/s COST -1
  cli RL.HIT user:1 10/s COST 1 COST 2
  cli RL.HIT user:1 10/s BURST 5
  cli RL.HIT user:1 10/s STRATEGY gcra BURST 0
  cli RL.HIT user:1 1/y STRATEGY gcra BURST 20
  cli RL.STATS user:1 10/s COST 1
  cli RL.HIT user:1 10/s STRATEGY
  cli SET plain hello
  cli RL.HIT plain 10/s
  cli RL.CLEAR plain
fi

if want fixed; then
  section fixed
  cli RL.HIT f 2/1s
  pause 0.3
  cli RL.HIT f 2/1s
  cli RL.HIT f 2/1s
  pause 0.75
  cli RL.HIT f 2/1s
fi

if want moving; then
  section moving
  cli RL.HIT m 3/2s STRATEGY moving
  pause 0.5
  cli RL.HIT m 3/2s STRATEGY moving COST 2
  cli RL.HIT m 3/2s STRATEGY moving
  pause 1.6
  cli RL.HIT m 3/2s STRATEGY moving
fi

if want sliding; then
  section sliding
  cli RL.HIT s 3/2s STRATEGY sliding COST 3
  pause 2.2
  cli RL.HIT s 3/2s STRATEGY sliding
  pause 0.8
  cli RL.HIT s 3/2s STRATEGY sliding
  cli RL.STATS s 3/2s STRATEGY sliding
fi

if want gcra; then
  section gcra
  cli RL.HIT g 3/1s STRATEGY gcra COST 3
  cli RL.HIT g 3/1s STRATEGY gcra
  pause 0.7
  cli RL.HIT g 3/1s STRATEGY gcra
  cli RL.HIT g 3/1s STRATEGY gcra BURST 1
fi

if want penalty; then
  section penalty
  cli RL.HIT login:alice 3/15m PENALTY 1h
  cli RL.HIT login:alice 3/15m PENALTY 1h
  cli RL.HIT login:alice 3/15m PENALTY 1h
  cli RL.HIT login:alice 3/15m PENALTY 1h
  cli RL.HIT login:alice 100/s
  cli RL.STATS login:alice 3/15m
  cli PTTL login:alice
  cli RL.CLEAR login:alice
  cli RL.HIT login:alice 3/15m PENALTY 1h
fi

if want refund; then
  section refund
  cli RL.HIT upload:3 10/m STRATEGY moving COST 4
  cli RL.HIT upload:3 10/m STRATEGY moving COST 3
  cli RL.REFUND upload:3 10/m STRATEGY moving COST 5
  cli RL.REFUND upload:3 10/m STRATEGY moving COST 5
  cli EXISTS upload:3
  cli RL.REFUND upload:3 10/m STRATEGY moving
  cli RL.REFUND upload:3 10/m COST 0
fi

if want refund-strategies; then
  section refund-fixed
  cli RL.HIT rf 5/10s COST 3
  cli RL.REFUND rf 5/10s COST 2
  cli RL.REFUND rf 5/10s COST 2
  cli EXISTS rf
  section refund-sliding
  cli RL.HIT rs 4/1s STRATEGY sliding COST 4
  pause 1.5
  cli RL.HIT rs 4/1s STRATEGY sliding
  cli RL.REFUND rs 4/1s STRATEGY sliding COST 3
  section refund-gcra
  cli RL.HIT rg 10/10s STRATEGY gcra COST 6
  cli RL.REFUND rg 10/10s STRATEGY gcra COST 2
  pause 3
  cli RL.REFUND rg 10/10s STRATEGY gcra COST 4
fi

if want leases; then
  section leases
  cli RL.ACQUIRE exports:tenant7 2 30s job-1
  cli RL.ACQUIRE exports:tenant7 2 30s job-2
  cli RL.ACQUIRE exports:tenant7 2 30s job-3
  cli RL.ACQUIRE exports:tenant7 2 1m job-1
  cli RL.RELEASE exports:tenant7 job-2
  cli RL.RELEASE exports:tenant7 job-2
  cli RL.ACQUIRE exports:tenant7 2 30s job-3
  cli PTTL exports:tenant7
fi
