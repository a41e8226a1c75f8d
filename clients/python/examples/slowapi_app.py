"""An unchanged SlowAPI (FastAPI) app on the module: one import and a storage URI.

    RL_STORAGE_URI=ratelimit://127.0.0.1:6379 RL_STRATEGY=sliding-window-counter \\
        uvicorn slowapi_app:app --workers 4 --port 8000

As in SlowAPI's own quick start, but with ``redis_ratelimit.limits_storage``
imported (it registers ``ratelimit://`` with limits) and that scheme in
``storage_uri``. Limited per API key (header X-Api-Key) to RL_LIMIT
(default 100/hour); every answer names its worker process (X-Worker-Pid).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded

import redis_ratelimit.limits_storage  # noqa: F401  registers ratelimit:// with limits


def api_key(request: Request) -> str:
    return request.headers.get("x-api-key") or (request.client.host if request.client else "-")


limiter = Limiter(
    key_func=api_key,
    storage_uri=os.environ.get("RL_STORAGE_URI", "ratelimit://127.0.0.1:6379"),
    strategy=os.environ.get("RL_STRATEGY", "fixed-window"),
    headers_enabled=True,
)
app = FastAPI()
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]


@app.middleware("http")
async def worker_pid(request: Request, call_next):  # type: ignore[no-untyped-def]
    response = await call_next(request)
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


@app.get("/hello")
@limiter.limit(os.environ.get("RL_LIMIT", "100/hour"))
async def hello(request: Request, response: Response) -> dict:  # type: ignore[type-arg]
    return {"hello": True}


@app.get("/health")
@limiter.exempt
async def health(request: Request) -> dict:  # type: ignore[type-arg]
    return {"ok": True}
