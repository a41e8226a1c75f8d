"""Checks the output of one header example (read from stdin).

Every example sends five requests for one key with the limit 3/10s:
COST 1 four times, then COST 4. Expected, per request:
  1-3  HTTP 200, remaining 2, 1, 0; no Retry-After
  4    HTTP 429, remaining 0, Retry-After in 1..10 (= the reset: fixed window)
  5    HTTP 429, no Retry-After (COST 4 > 3 can never pass)
and on each response the same header names in the same order, with
`RateLimit-Policy: 3;w=10` (draft-ietf-httpapi-ratelimit-headers-07).
"""

import re
import sys

NAMES = ["RateLimit-Policy", "RateLimit", "X-RateLimit-Limit",
         "X-RateLimit-Remaining", "X-RateLimit-Reset"]
EXPECT = [  # (status, remaining, retry_after present)
    ("200 OK", 2, False),
    ("200 OK", 1, False),
    ("200 OK", 0, False),
    ("429 Too Many Requests", 0, True),
    ("429 Too Many Requests", 0, False),
]


def check(text):
    blocks = [b for b in text.strip().split("\n\n") if b.strip()]
    if len(blocks) != len(EXPECT):
        return f"{len(blocks)} responses, expected {len(EXPECT)}"
    for n, (block, (status, remaining, retry)) in enumerate(zip(blocks, EXPECT), 1):
        lines = block.splitlines()
        if not re.fullmatch(rf"# request {n}: RL\.HIT \S+ 3/10s COST \d+ -> -?\d+( -?\d+){{4}}", lines[0]):
            return f"request {n}: bad first line {lines[0]!r}"
        if lines[1] != f"HTTP/1.1 {status}":
            return f"request {n}: {lines[1]!r}, expected 'HTTP/1.1 {status}'"
        headers = [l.split(": ", 1) for l in lines[2:]]
        names = [h[0] for h in headers]
        if names != NAMES + (["Retry-After"] if retry else []):
            return f"request {n}: headers {names}"
        h = dict(headers)
        reset = int(h["X-RateLimit-Reset"])
        want = {
            "RateLimit-Policy": "3;w=10",
            "RateLimit": f"limit=3, remaining={remaining}, reset={reset}",
            "X-RateLimit-Limit": "3",
            "X-RateLimit-Remaining": str(remaining),
        }
        for name, value in want.items():
            if h[name] != value:
                return f"request {n}: {name}: {h[name]!r}, expected {value!r}"
        if n == 1 and reset != 10:
            return f"request 1: reset {reset}, expected 10 (a new 10 s window)"
        if not 1 <= reset <= 10:
            return f"request {n}: reset {reset} not in 1..10"
        if retry and h["Retry-After"] != str(reset):
            return f"request {n}: Retry-After {h['Retry-After']}, expected {reset} (the window's end)"
        reply = lines[0].rsplit("-> ", 1)[1].split()
        if reply[4] != ("-1" if n == 5 else "0" if n < 4 else reply[4]):
            return f"request {n}: retry_after_ms {reply[4]}"
    return None


if __name__ == "__main__":
    problem = check(sys.stdin.read())
    if problem:
        print(problem)
        sys.exit(1)
