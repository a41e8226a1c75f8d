"""RL.HIT from Python (redis-py), mapped to HTTP rate-limit headers.

Headers: draft-ietf-httpapi-ratelimit-headers-07 (RateLimit-Policy,
RateLimit), the older X-RateLimit-* trio, and Retry-After when denied.

    REDIS_URL=redis://127.0.0.1:6379 python examples/python/ratelimit_headers.py
"""

import math
import os

import redis

LIMIT, WINDOW_S = 3, 10  # 3 requests per 10 seconds
LIMITS = f"{LIMIT}/{WINDOW_S}s"


def rate_limit_headers(reply):
    """Maps the five integers of RL.HIT to (status, [(name, value), ...])."""
    allowed, limit, remaining, reset_after_ms, retry_after_ms = reply
    reset = math.ceil(reset_after_ms / 1000)  # whole seconds, rounded up
    headers = [
        ("RateLimit-Policy", f"{LIMIT};w={WINDOW_S}"),
        ("RateLimit", f"limit={limit}, remaining={remaining}, reset={reset}"),
        ("X-RateLimit-Limit", str(limit)),
        ("X-RateLimit-Remaining", str(remaining)),
        ("X-RateLimit-Reset", str(reset)),
    ]
    # retry_after_ms == -1: the request can never pass (COST > limit).
    if not allowed and retry_after_ms >= 0:
        headers.append(("Retry-After", str(math.ceil(retry_after_ms / 1000))))
    status = "200 OK" if allowed else "429 Too Many Requests"
    return status, headers


def main():
    r = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    key = f"example:python:{os.getpid()}"
    r.execute_command("RL.CLEAR", key)
    # Requests 1-3 pass, 4 is denied (Retry-After), 5 costs 4 > 3 (never).
    for n, cost in enumerate([1, 1, 1, 1, 4], start=1):
        reply = r.execute_command("RL.HIT", key, LIMITS, "COST", cost)
        status, headers = rate_limit_headers(reply)
        print(f"# request {n}: RL.HIT {key} {LIMITS} COST {cost} -> {' '.join(map(str, reply))}")
        print(f"HTTP/1.1 {status}")
        for name, value in headers:
            print(f"{name}: {value}")
        print()
    r.execute_command("RL.CLEAR", key)


if __name__ == "__main__":
    main()
