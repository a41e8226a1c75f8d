"""Fire requests at a rate-limited server at full speed and count the answers.

    python hammer.py --url http://127.0.0.1:8000/moving-window/hello -n 400 -c 64

Prints one JSON line: requests sent, admitted (200), denied (429), other
statuses, the worker pids that admitted requests, and the time taken.
Each run uses a fresh API key (X-Api-Key) unless --key is given, so the
expected number admitted is exactly the limit. Exit status 1 on any status
other than 200 or 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from typing import Any, Dict, List, Optional


async def hammer(url: str, n: int, concurrency: int, key: str) -> Dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: Counter = Counter()
    admitted_by: Counter = Counter()
    # (time.time() when the answer came, its Retry-After in seconds) per 429
    retry_afters: List[List[float]] = []
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(n):
        queue.put_nowait(None)
    errors: List[str] = []

    async with httpx.AsyncClient(limits=limits, timeout=30, headers={"X-Api-Key": key}) as client:

        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    r = await client.get(url)
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                    statuses["error"] += 1
                    continue
                statuses[r.status_code] += 1
                if r.status_code == 429 and r.headers.get("retry-after", "").isdigit():
                    retry_afters.append([time.time(), int(r.headers["retry-after"])])
                if r.status_code == 200:
                    admitted_by[r.headers.get("x-worker-pid", "?")] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0

    return {
        "url": url,
        "key": key,
        "sent": n,
        "admitted": statuses.get(200, 0),
        "denied": statuses.get(429, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (200, 429)},
        "admitted_by_pid": dict(admitted_by),
        "seconds": round(elapsed, 3),
        "requests_per_second": round(n / elapsed, 1) if elapsed else None,
        "errors": errors[:3],
        "retry_afters": retry_afters,
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000/moving-window/hello")
    p.add_argument("-n", "--requests", type=int, default=400)
    p.add_argument("-c", "--concurrency", type=int, default=64)
    p.add_argument("--key", default=None, help="API key to send (default: a fresh random one)")
    a = p.parse_args(argv)
    res = asyncio.run(hammer(a.url, a.requests, a.concurrency, a.key or "k-" + uuid.uuid4().hex[:12]))
    print(json.dumps(res))
    return 1 if res["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
