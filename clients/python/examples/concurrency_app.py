"""Requests in flight capped per API key across every worker process.

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn concurrency_app:app --workers 4 --port 8000
    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn concurrency_app:wsgi_app -w 4 --threads 16 -b :8000

``/slow`` takes RL_SLEEP seconds (default 0.3); at most RL_MAX (default 5)
run at once per API key (header X-Api-Key, else the client address), each
holding a lease of RL_LEASE (default 30s) at ``inflight:<key>`` until its
response is done. A request that finds every slot taken gets 429 with
Retry-After. ``app`` is the Starlette (ASGI) app, ``wsgi_app`` the same as
plain WSGI.

To show the cap holds, ``/slow`` counts itself in Redis around its sleep:
INCR ``measure:<key>:now`` before, DECR after, and the highest count seen
goes to ``measure:<key>:peak``. ``/free`` is the same handler without the
cap (counted at ``free:<key>:...``), to show what the load does without
it. Every answer names its worker process (X-Worker-Pid); ``/health`` is
not limited.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from redis_ratelimit import AsyncConcurrencyLimiter, ConcurrencyLimiter
from redis_ratelimit.contrib.asgi import RateLimitMiddleware, client_address
from redis_ratelimit.contrib.wsgi import RateLimitMiddleware as WSGIRateLimitMiddleware
from redis_ratelimit.contrib.wsgi import remote_addr

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MAX = int(os.environ.get("RL_MAX", "5"))
LEASE = os.environ.get("RL_LEASE", "30s")
SLEEP = float(os.environ.get("RL_SLEEP", "0.3"))

# INCR the in-flight count and keep its highest value, atomically
ENTER = """
local n = redis.call('INCR', KEYS[1])
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if n > peak then redis.call('SET', KEYS[2], n) end
return n
"""


def _api_key(headers: Iterable[Tuple[bytes, bytes]]) -> Optional[str]:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1")
    return None


# -- ASGI (uvicorn) -----------------------------------------------------------

aredis = Redis(connection_pool=BlockingConnectionPool.from_url(REDIS_URL, max_connections=64, timeout=10))


def api_key(scope: Any) -> Optional[str]:
    return _api_key(scope.get("headers", [])) or client_address(scope)


async def slow(request: Request) -> PlainTextResponse:
    key = api_key(request.scope)
    tag = "free" if request.url.path == "/free" else "measure"
    now, peak = f"{tag}:{key}:now", f"{tag}:{key}:peak"
    await aredis.eval(ENTER, 2, now, peak)
    try:
        await asyncio.sleep(SLEEP)
    finally:
        await aredis.decr(now)
    return PlainTextResponse("done\n", headers={"X-Worker-Pid": str(os.getpid())})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n", headers={"X-Worker-Pid": str(os.getpid())})


app = Starlette(routes=[Route("/slow", slow), Route("/free", slow), Route("/health", health)])
app.add_middleware(
    RateLimitMiddleware,
    concurrency=AsyncConcurrencyLimiter(aredis, max=MAX, lease=LEASE, prefix="inflight"),
    key_func=api_key,
    exempt_paths=["/health", "/free"],
)


# -- WSGI (gunicorn) ----------------------------------------------------------

sredis = redis.Redis.from_url(REDIS_URL)


def wsgi_api_key(environ: Dict[str, Any]) -> Optional[str]:
    return environ.get("HTTP_X_API_KEY") or remote_addr(environ)


def wsgi_slow(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    pid = [("X-Worker-Pid", str(os.getpid()))]
    if environ.get("PATH_INFO") == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")] + pid)
        return [b"ok\n"]
    if environ.get("PATH_INFO") not in ("/slow", "/free"):
        start_response("404 Not Found", [("Content-Type", "text/plain")] + pid)
        return [b"not found\n"]
    key = wsgi_api_key(environ)
    tag = "free" if environ.get("PATH_INFO") == "/free" else "measure"
    now, peak = f"{tag}:{key}:now", f"{tag}:{key}:peak"
    sredis.eval(ENTER, 2, now, peak)
    try:
        time.sleep(SLEEP)
    finally:
        sredis.decr(now)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")] + pid)
    return [b"done\n"]


wsgi_app = WSGIRateLimitMiddleware(
    wsgi_slow,
    concurrency=ConcurrencyLimiter(sredis, max=MAX, lease=LEASE, prefix="inflight"),
    key_func=wsgi_api_key,
    exempt_paths=["/health", "/free"],
)
