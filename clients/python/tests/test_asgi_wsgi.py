"""ASGI middleware through Starlette's and FastAPI's test clients, WSGI
middleware through httpx's WSGI transport and wsgiref's validator."""

from __future__ import annotations

import time
import uuid
from typing import Any, Iterable, List
from wsgiref.validate import validator

import httpx
import pytest
import redis
import redis.asyncio
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from redis_ratelimit import AsyncRateLimiter, RateLimiter
from redis_ratelimit.contrib.asgi import RateLimitMiddleware
from redis_ratelimit.contrib.wsgi import RateLimitMiddleware as WSGIRateLimitMiddleware

from conftest import Server

RATE_HEADERS = ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]


def check_headers(resp: Any, limit: int, remaining: int) -> None:
    for h in RATE_HEADERS:
        assert h in resp.headers, h
    assert resp.headers["x-ratelimit-limit"] == str(limit)
    assert resp.headers["x-ratelimit-remaining"] == str(remaining)
    assert int(resp.headers["x-ratelimit-reset"]) >= int(time.time())
    assert resp.headers["ratelimit"].endswith(f";r={remaining};t={resp.headers['ratelimit'].rsplit('t=', 1)[1]}")


def starlette_app(server: Server, prefix: str) -> Starlette:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-App": "1"})

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("up")

    app = Starlette(routes=[Route("/", home), Route("/health", health)])
    limiter = AsyncRateLimiter(redis.asyncio.Redis(host=server.host, port=server.port), "3/minute;100/day",
                               strategy="moving-window", prefix=prefix)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, exempt_paths=["/health"])
    return app


def test_starlette(server: Server) -> None:
    prefix = uuid.uuid4().hex
    with TestClient(starlette_app(server, prefix)) as client:
        oks = [client.get("/") for _ in range(3)]
        for i, resp in enumerate(oks):
            assert resp.status_code == 200 and resp.text == "ok" and resp.headers["x-app"] == "1"
            check_headers(resp, 3, 2 - i)
        assert oks[0].headers["ratelimit-policy"] == '"3/minute";q=3;w=60, "100/day";q=100;w=86400'
        denied = client.get("/")
        assert denied.status_code == 429
        check_headers(denied, 3, 0)
        assert 1 <= int(denied.headers["retry-after"]) <= 60
        assert "x-app" not in denied.headers
        assert client.get("/health").status_code == 200  # exempt
        assert "ratelimit" not in client.get("/health").headers
    # the key was the test client's address
    c = redis.Redis(host=server.host, port=server.port)
    assert c.exists(f"{prefix}:testclient")
    c.close()


def test_fastapi_key_func_and_cost(server: Server) -> None:
    app = FastAPI()

    @app.get("/items/{n}")
    async def item(n: int) -> dict:
        return {"n": n}

    limiter = AsyncRateLimiter(redis.asyncio.Redis(host=server.host, port=server.port), "10/h",
                               strategy="gcra", burst=4, prefix=uuid.uuid4().hex)

    async def by_api_key(scope: Any) -> Any:
        for k, v in scope["headers"]:
            if k == b"x-api-key":
                return v.decode()
        return None  # no key: not limited

    app.add_middleware(RateLimitMiddleware, limiter=limiter, key_func=by_api_key,
                       cost=lambda scope: 2 if scope["method"] == "POST" else 1)
    with TestClient(app) as client:
        a = [client.get("/items/1", headers={"x-api-key": "a"}).status_code for _ in range(6)]
        assert a == [200] * 4 + [429] * 2
        assert client.get("/items/1", headers={"x-api-key": "b"}).status_code == 200
        assert all(client.get("/items/1").status_code == 200 for _ in range(6))
        r = client.get("/items/2", headers={"x-api-key": "b"})
        assert r.json() == {"n": 2} and r.headers["x-ratelimit-limit"] == "4"
        assert r.headers["x-ratelimit-remaining"] == "2"
        assert client.post("/items/3", headers={"x-api-key": "b"}).status_code in (405, 200)
        assert client.get("/items/2", headers={"x-api-key": "b"}).status_code == 429  # POST cost 2


def wsgi_hello(environ: dict, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_wsgi(server: Server) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    lim = RateLimiter(c, "2/minute", strategy="sliding-window-counter", prefix=uuid.uuid4().hex)
    app = validator(WSGIRateLimitMiddleware(validator(wsgi_hello), lim, exempt_paths=["/static/"]))
    with httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr="10.0.0.7"), base_url="http://t") as client:
        r1, r2, r3 = (client.get("/x") for _ in range(3))
        assert (r1.status_code, r2.status_code, r3.status_code) == (200, 200, 429)
        assert r1.text == "hello" and r1.headers["content-type"] == "text/plain"
        check_headers(r1, 2, 1)
        check_headers(r3, 2, 0)
        assert int(r3.headers["retry-after"]) >= 1
        assert client.get("/static/app.css").status_code == 200
    assert c.exists(f"{lim.prefix}:10.0.0.7")
    c.close()


def test_wsgi_fail_open_logs(caplog: pytest.LogCaptureFixture) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from conftest import free_port

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    app = WSGIRateLimitMiddleware(wsgi_hello, RateLimiter(dead, "1/s", on_error="open"))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        assert [client.get("/").status_code for _ in range(3)] == [200] * 3
    assert caplog.text.count("failing open") == 3
    app = WSGIRateLimitMiddleware(wsgi_hello, RateLimiter(dead, "1/s", on_error="closed", error_retry_after=2))
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        r = client.get("/")
        assert r.status_code == 429 and r.headers["retry-after"] == "2"


def test_wsgi_penalty_retry_after_covers_the_lock(server: Server) -> None:
    """A limiter with a penalty: the breach locks the client out for 2 h, and
    every 429 says so in Retry-After (not the minute the window has left)."""
    c = redis.Redis(host=server.host, port=server.port)
    lim = RateLimiter(c, "1/minute", prefix=uuid.uuid4().hex, penalty="2h")
    app = validator(WSGIRateLimitMiddleware(validator(wsgi_hello), lim))
    with httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr="10.0.0.8"), base_url="http://t") as client:
        assert client.get("/").status_code == 200
        locked = [client.get("/") for _ in range(2)]
        for resp in locked:
            assert resp.status_code == 429
            assert 7190 <= int(resp.headers["retry-after"]) <= 7200
            assert int(resp.headers["x-ratelimit-reset"]) >= int(time.time()) + 7190
            assert resp.headers["x-ratelimit-remaining"] == "0"
        assert locked[0].headers["retry-after"] == "7200"  # the hit that started the lock
    st = lim.stats("10.0.0.8")[0]
    assert st.penalized and 7_190_000 < st.penalty_ms <= 7_200_000
    c.close()
