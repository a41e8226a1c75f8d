#!/usr/bin/env bash
# RL.HIT from a shell script with redis-cli, mapped to HTTP rate-limit headers
# (draft-ietf-httpapi-ratelimit-headers-07, X-RateLimit-*, Retry-After).
#
#   REDIS_URL=redis://127.0.0.1:6379 examples/redis-cli/ratelimit-headers.sh
set -euo pipefail

REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
LIMIT=3          # requests ...
WINDOW_S=10      # ... per 10 seconds
KEY="example:redis-cli:$$"

cli() { redis-cli -u "$REDIS_URL" "$@"; }

# Prints the response status line and headers for one RL.HIT reply:
# allowed limit remaining reset_after_ms retry_after_ms.
headers() {
  local allowed=$1 limit=$2 remaining=$3 reset_ms=$4 retry_ms=$5
  local reset=$(( (reset_ms + 999) / 1000 ))          # whole seconds, rounded up
  if [ "$allowed" = 1 ]; then
    echo "HTTP/1.1 200 OK"
  else
    echo "HTTP/1.1 429 Too Many Requests"
  fi
  echo "RateLimit-Policy: $LIMIT;w=$WINDOW_S"
  echo "RateLimit: limit=$limit, remaining=$remaining, reset=$reset"
  echo "X-RateLimit-Limit: $limit"
  echo "X-RateLimit-Remaining: $remaining"
  echo "X-RateLimit-Reset: $reset"
  # -1: this request can never pass (COST > limit): no Retry-After.
  if [ "$allowed" = 0 ] && [ "$retry_ms" -ge 0 ]; then
    echo "Retry-After: $(( (retry_ms + 999) / 1000 ))"
  fi
}

hit() {
  local n=$1 cost=$2 out
  # Not on a terminal, redis-cli prints one integer per line (and an error
  # reply as its text, still with exit status 0): check the shape.
  out=$(cli RL.HIT "$KEY" "$LIMIT/${WINDOW_S}s" COST "$cost")
  local -a r
  mapfile -t r <<<"$out"
  if [ "${#r[@]}" != 5 ] || ! [[ "${r[*]}" =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [0-9]+\ -?[0-9]+$ ]]; then
    echo "unexpected reply to RL.HIT: $out" >&2
    exit 1
  fi
  echo "# request $n: RL.HIT $KEY $LIMIT/${WINDOW_S}s COST $cost -> ${r[*]}"
  headers "${r[@]}"
  echo
}

cli RL.CLEAR "$KEY" >/dev/null
hit 1 1
hit 2 1
hit 3 1
hit 4 1      # denied: Retry-After
hit 5 4      # COST 4 > 3: can never pass, so no Retry-After
cli RL.CLEAR "$KEY" >/dev/null
