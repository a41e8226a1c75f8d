"""A Starlette app whose limits are shared by every worker process.

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn multiworker_app:app --workers 4 --port 8000

One route per strategy, each limited to RL_LIMIT (default 100/hour) per API
key (header X-Api-Key, else the client address):

    /fixed-window/hello  /moving-window/hello  /sliding-window-counter/hello  /gcra/hello

Every answer names the worker process that served it (X-Worker-Pid), and
/health (not limited) too. examples/hammer.py fires requests at full speed
and counts what was admitted.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from redis_ratelimit import AsyncRateLimiter
from redis_ratelimit.contrib.asgi import RateLimitMiddleware, client_address

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LIMIT = os.environ.get("RL_LIMIT", "100/hour")
STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter", "gcra")

# One pool per worker; a blocking pool makes a burst wait for a connection
# instead of failing with "Too many connections".
redis = Redis(connection_pool=BlockingConnectionPool.from_url(REDIS_URL, max_connections=32, timeout=10))


def api_key(scope: Any) -> Optional[str]:
    for name, value in scope.get("headers", []):
        if name == b"x-api-key":
            return value.decode("latin-1")
    return client_address(scope)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello\n", headers={"X-Worker-Pid": str(os.getpid())})


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n", headers={"X-Worker-Pid": str(os.getpid())})


def limited(strategy: str) -> RateLimitMiddleware:
    limiter = AsyncRateLimiter(redis, LIMIT, strategy=strategy, prefix=f"demo:{strategy}")
    inner = Starlette(routes=[Route("/hello", hello)])
    return RateLimitMiddleware(inner, limiter=limiter, key_func=api_key)


app = Starlette(
    routes=[Route("/health", health)] + [Mount(f"/{s}", app=limited(s)) for s in STRATEGIES]
)
