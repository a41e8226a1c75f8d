"""Requests in flight capped across worker processes: the example app
(examples/concurrency_app.py) served by 4 uvicorn workers (ASGI
middleware) and by 4 gunicorn workers of 16 threads (WSGI middleware),
its slow handler (0.3 s) hit by 40 concurrent clients for 3 s. The
handler counts itself in Redis (INCR before its sleep, DECR after, the
highest count kept): that count never passes the cap and reaches it, some
requests get 429 with Retry-After, and every lease is gone afterwards."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from typing import Any, Dict, Iterator, List, Tuple

import httpx
import pytest
import redis

from conftest import PKG, Server
from test_leases import leases_held
from test_multiworker import WORKERS, serving

EXAMPLES = PKG / "examples"
MAX = 5
SLEEP = 0.3
CLIENTS = 40
DURATION = 3.0

RESULTS: List[Dict[str, Any]] = []  # printed in the terminal summary (conftest)


def command(kind: str) -> List[str]:
    if kind == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "concurrency_app:app", "--app-dir", str(EXAMPLES),
                "--host", "127.0.0.1", "--port", "{port}", "--workers", str(WORKERS), "--no-access-log"]
    return [sys.executable, "-m", "gunicorn", "--chdir", str(EXAMPLES), "-w", str(WORKERS), "--threads", "16",
            "-b", "127.0.0.1:{port}", "concurrency_app:wsgi_app"]


@pytest.fixture(params=["uvicorn", "gunicorn"])
def app(request: pytest.FixtureRequest, server: Server) -> Iterator[Tuple[str, str]]:
    kind = request.param
    env = dict(os.environ, REDIS_URL=server.url, RL_MAX=str(MAX), RL_LEASE="30s", RL_SLEEP=str(SLEEP))
    with serving(command(kind), env, os.path.join(server.dir, f"concurrency-{kind}.log"), kind) as base:
        yield kind, base


async def load(url: str, key: str, duration: float = DURATION) -> Dict[str, Any]:
    """CLIENTS concurrent clients call ``url`` again and again for
    ``duration`` seconds (a refused one waits 20 ms before its next try)."""
    statuses: Counter = Counter()
    by_pid: Counter = Counter()
    retry_afters: List[str] = []
    errors: List[str] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers={"X-Api-Key": key}) as client:
        end = time.monotonic() + duration

        async def one_client() -> None:
            while time.monotonic() < end:
                try:
                    resp = await client.get(url)
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                    statuses["error"] += 1
                    continue
                statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    by_pid[resp.headers.get("x-worker-pid", "?")] += 1
                elif resp.status_code == 429:
                    retry_afters.append(resp.headers.get("retry-after", ""))
                    await asyncio.sleep(0.02)

        t0 = time.monotonic()
        await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
        seconds = time.monotonic() - t0
    return {"statuses": dict(statuses), "by_pid": dict(by_pid), "retry_afters": retry_afters,
            "errors": errors[:3], "seconds": round(seconds, 2)}


def test_workers_never_run_more_than_max_at_once(app: Tuple[str, str], r: redis.Redis) -> None:
    kind, base = app
    key = "k-" + uuid.uuid4().hex[:12]
    res = asyncio.run(load(f"{base}/slow", key))
    st = res["statuses"]
    admitted, denied = st.get(200, 0), st.get(429, 0)
    peak = int(r.get(f"measure:{key}:peak") or 0)
    RESULTS.append(dict(server=kind, admitted=admitted, denied=denied, peak=peak, seconds=res["seconds"],
                        by_pid=res["by_pid"]))
    assert set(st) <= {200, 429}, res
    # the handler's own count of requests running at once
    assert peak <= MAX, f"{peak} requests ran at once, max is {MAX}"
    assert peak == MAX, f"the cap was never reached (peak {peak}): not a test of it"
    assert int(r.get(f"measure:{key}:now") or 0) == 0
    # many were refused, each with a Retry-After within the lease
    assert denied > admitted > MAX, res
    assert all(ra.isdigit() and 1 <= int(ra) <= 30 for ra in res["retry_afters"]), set(res["retry_afters"])
    # at most MAX at a time for SLEEP each: the admissions fit in the time taken
    assert admitted <= MAX * (res["seconds"] / SLEEP + 1), res
    assert len(res["by_pid"]) >= 2, f"admitted by {res['by_pid']} only"
    # no lease left behind: the key is gone, and MAX fresh leases fit again
    rkey = f"inflight:{key}"
    assert not r.exists(rkey)
    assert leases_held(r, rkey, MAX) == 0
    taken = [r.execute_command("RL.ACQUIRE", rkey, MAX, "10s", f"after-{i}")[0] for i in range(MAX + 1)]
    assert taken == [1] * MAX + [0]
    assert r.execute_command("RL.CLEAR", rkey) == 1

    # the same load on the same handler without the cap runs far more at once
    free = asyncio.run(load(f"{base}/free", key, duration=1.0))
    assert set(free["statuses"]) == {200}, free
    free_peak = int(r.get(f"free:{key}:peak") or 0)
    RESULTS[-1]["uncapped_peak"] = free_peak
    assert free_peak > 2 * MAX, f"without the cap only {free_peak} ran at once: the load does not test the cap"
