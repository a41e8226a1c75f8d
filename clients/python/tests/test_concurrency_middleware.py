"""The ``concurrency=`` option of the ASGI and WSGI middleware on the real
module: requests in flight per key capped at ``max`` (429 + Retry-After
beyond), each slot freed when its response is done, also after an
exception, a client disconnect or a cancellation; next to a rate limit,
a request refused for either reason consumes nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple
from wsgiref.validate import validator

import httpx
import pytest
import redis
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from redis_ratelimit import AsyncConcurrencyLimiter, AsyncRateLimiter, ConcurrencyLimiter, RateLimiter
from redis_ratelimit.contrib.asgi import RateLimitMiddleware
from redis_ratelimit.contrib.wsgi import RateLimitMiddleware as WSGIRateLimitMiddleware

from conftest import Server
from test_leases import leases_held

POLICY = '"concurrency";q=2;qu="concurrent-requests"'


def test_middleware_needs_a_limiter() -> None:
    with pytest.raises(TypeError, match="needs a limiter"):
        RateLimitMiddleware(lambda s, r, q: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="needs a limiter"):
        WSGIRateLimitMiddleware(lambda e, s: [])


# -- ASGI -----------------------------------------------------------------------


class Gate:
    """The app's handlers wait here until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.inside = 0
        self.arrived = asyncio.Event()


def asgi_app(server: Server, prefix: str, gate: Gate, *, limiter: Optional[AsyncRateLimiter] = None,
             max: int = 2, lease: str = "30s", **kw: Any) -> Tuple[Starlette, redis.asyncio.Redis]:
    async def work(request: Request) -> PlainTextResponse:
        gate.inside += 1
        gate.arrived.set()
        try:
            await gate.open.wait()
        finally:
            gate.inside -= 1
        return PlainTextResponse("done", headers={"X-App": "1"})

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("the handler failed")

    c = redis.asyncio.Redis(host=server.host, port=server.port)
    app = Starlette(routes=[Route("/work", work), Route("/boom", boom)])
    app.add_middleware(RateLimitMiddleware, limiter=limiter,
                       concurrency=AsyncConcurrencyLimiter(c, max=max, lease=lease, prefix=prefix),
                       key_func=lambda scope: "tenant", **kw)
    return app, c


async def wait_until(cond: Callable[[], Any], timeout: float = 5.0) -> None:
    """Polls ``cond()`` (sync or async) until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        ok = cond()
        if asyncio.iscoroutine(ok):
            ok = await ok
        if ok:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_asgi_caps_requests_in_flight(server: Server, r: redis.Redis) -> None:
    prefix = uuid.uuid4().hex

    async def main() -> None:
        gate = Gate()
        app, c = asgi_app(server, prefix, gate)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            first = [asyncio.ensure_future(client.get("/work")) for _ in range(2)]
            await wait_until(lambda: gate.inside == 2)
            denied = await client.get("/work")  # both slots are held
            assert denied.status_code == 429 and denied.text == "Too Many Requests\n"
            assert 29 <= int(denied.headers["retry-after"]) <= 30
            assert denied.headers["ratelimit-policy"] == POLICY
            assert denied.headers["ratelimit"] == '"concurrency";r=0'
            assert "x-app" not in denied.headers
            assert leases_held(r, f"{prefix}:tenant", 2) == 2
            gate.open.set()
            done = await asyncio.gather(*first)
            assert [d.status_code for d in done] == [200, 200]
            assert all(d.text == "done" and d.headers["x-app"] == "1" for d in done)
            assert all(d.headers["ratelimit-policy"] == POLICY for d in done)
            assert sorted(d.headers["ratelimit"] for d in done) == ['"concurrency";r=0', '"concurrency";r=1']
            assert not r.exists(f"{prefix}:tenant")  # every slot came back
            assert (await client.get("/work")).status_code == 200
        await c.aclose()

    asyncio.run(main())


def test_asgi_releases_after_an_exception(server: Server, r: redis.Redis) -> None:
    prefix = uuid.uuid4().hex

    async def main() -> None:
        gate = Gate()
        app, c = asgi_app(server, prefix, gate, max=1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(3):  # max=1: each would be refused if the last one leaked
                with pytest.raises(RuntimeError, match="the handler failed"):
                    await client.get("/boom")
                assert not r.exists(f"{prefix}:tenant")
            gate.open.set()
            assert (await client.get("/work")).status_code == 200
        await c.aclose()

    asyncio.run(main())


def test_asgi_releases_on_disconnect_and_cancellation(server: Server, r: redis.Redis) -> None:
    """Raw ASGI: a streamed response holds its slot until its last chunk,
    an app that ends when the client goes away, and a request task
    cancelled by the server while the app runs."""
    prefix = uuid.uuid4().hex
    rkey = f"{prefix}:10.1.2.3"

    async def main() -> None:
        c = redis.asyncio.Redis(host=server.host, port=server.port)
        started = asyncio.Event()

        async def waits_for_disconnect(scope: Any, receive: Any, send: Any) -> None:
            started.set()
            while (await receive())["type"] != "http.disconnect":
                pass

        async def runs_forever(scope: Any, receive: Any, send: Any) -> None:
            started.set()
            await asyncio.sleep(3600)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("10.1.2.3", 5000)}
        gone = asyncio.Event()

        async def receive() -> Dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        sent: List[Dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        lim = AsyncConcurrencyLimiter(c, 1, "30s", prefix=prefix)
        more = asyncio.Event()

        async def streams(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first ", "more_body": True})
            await more.wait()
            await send({"type": "http.response.body", "body": b"last"})

        task = asyncio.ensure_future(RateLimitMiddleware(streams, concurrency=lim)(scope, receive, send))
        await wait_until(lambda: len(sent) == 2)
        assert (sent[0]["status"], sent[1]["body"]) == (200, b"first ")
        assert (b"ratelimit", b'"concurrency";r=0') in sent[0]["headers"]
        assert await c.exists(rkey)  # the body is not done
        more.set()
        await task
        assert sent[2] == {"type": "http.response.body", "body": b"last"}
        assert not await c.exists(rkey)
        sent.clear()

        mw = RateLimitMiddleware(waits_for_disconnect, concurrency=lim)
        task = asyncio.ensure_future(mw(scope, receive, send))
        await started.wait()
        assert await c.exists(rkey)
        gone.set()
        await task
        assert not await c.exists(rkey) and sent == []

        started.clear()
        task = asyncio.ensure_future(RateLimitMiddleware(runs_forever, concurrency=lim)(scope, receive, send))
        await started.wait()
        assert await c.exists(rkey)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def released() -> bool:
            return not await c.exists(rkey)

        await wait_until(released)
        await c.aclose()

    asyncio.run(main())


def test_asgi_concurrency_next_to_a_rate_limit(server: Server, r: redis.Redis) -> None:
    """One Redis key holds both: the lease is taken first, a rate-limit
    denial gives it back, a concurrency denial consumes no rate."""
    prefix = uuid.uuid4().hex
    rkey = f"{prefix}:tenant"

    async def main() -> None:
        gate = Gate()
        c2 = redis.asyncio.Redis(host=server.host, port=server.port)
        rate = AsyncRateLimiter(c2, "3/h", prefix=prefix)
        app, c = asgi_app(server, prefix, gate, limiter=rate, max=1)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            held = asyncio.ensure_future(client.get("/work"))
            await wait_until(lambda: gate.inside == 1)
            busy = [await client.get("/work") for _ in range(5)]  # refused: the one slot is taken
            assert [b.status_code for b in busy] == [429] * 5
            assert busy[0].headers["ratelimit-policy"] == '"concurrency";q=1;qu="concurrent-requests"'
            assert "x-ratelimit-limit" not in busy[0].headers
            assert (await rate.stats("tenant"))[0].remaining == 2  # only the admitted request counted
            gate.open.set()
            ok = await held
            assert ok.status_code == 200
            assert ok.headers["ratelimit-policy"] == '"3/h";q=3;w=3600, "concurrency";q=1;qu="concurrent-requests"'
            assert ok.headers["ratelimit"].startswith('"3/h";r=2;t=') and ok.headers["ratelimit"].endswith(
                ', "concurrency";r=0')
            assert ok.headers["x-ratelimit-remaining"] == "2"
            statuses = [(await client.get("/work")).status_code for _ in range(4)]
            assert statuses == [200, 200, 429, 429]  # the rate limit: 3 an hour
            rate_denied = await client.get("/work")
            assert rate_denied.headers["x-ratelimit-remaining"] == "0" and "retry-after" in rate_denied.headers
            assert leases_held(r, rkey, 1) == 0  # the denials gave their leases back
            assert r.pttl(rkey) > 3_500_000  # the key lives on for the rate limit's window
        await c.aclose()
        await c2.aclose()

    asyncio.run(main())


def test_asgi_headers_off_and_renew(server: Server, r: redis.Redis) -> None:
    prefix = uuid.uuid4().hex

    async def main() -> None:
        gate = Gate()
        app, c = asgi_app(server, prefix, gate, max=1, lease="500ms", renew=True, headers=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            held = asyncio.ensure_future(client.get("/work"))
            await wait_until(lambda: gate.inside == 1)
            for _ in range(5):  # 1.25 s: the 500 ms lease is renewed while the request runs
                await asyncio.sleep(0.25)
                denied = await client.get("/work")
                assert denied.status_code == 429
            assert set(denied.headers) == {"content-type", "content-length", "retry-after"}
            gate.open.set()
            ok = await held
            assert ok.status_code == 200 and "ratelimit" not in ok.headers
        assert not r.exists(f"{prefix}:tenant")
        await c.aclose()

    asyncio.run(main())


# -- WSGI -----------------------------------------------------------------------


def wsgi_hello(environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("the app failed")
    if environ["PATH_INFO"] == "/boom-later":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield b"half"
            raise RuntimeError("the body failed")

        return body()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def environ(path: str = "/", addr: str = "10.0.0.9") -> Dict[str, Any]:
    import io
    import sys
    from wsgiref.util import setup_testing_defaults

    env: Dict[str, Any] = {"PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "", "REQUEST_METHOD": "GET",
                           "REMOTE_ADDR": addr, "wsgi.errors": sys.stderr, "wsgi.input": io.BytesIO()}
    setup_testing_defaults(env)
    return env


class Response:
    """What a WSGI server sees of one call: status, headers, the iterable."""

    def __init__(self, app: Any, env: Dict[str, Any]) -> None:
        self.headers: Dict[str, str] = {}
        self.status = ""

        def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            self.status = status
            self.headers = {k.lower(): v for k, v in headers}
            return lambda data: None

        self.body = app(env, start_response)


def test_wsgi_caps_requests_until_the_server_closes_the_response(server: Server, r: redis.Redis) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    lim = ConcurrencyLimiter(c, 2, "30s", prefix=uuid.uuid4().hex)
    rkey = lim.redis_key("10.0.0.9")
    app = validator(WSGIRateLimitMiddleware(validator(wsgi_hello), concurrency=lim))
    a, b = Response(app, environ()), Response(app, environ())  # not closed yet: in flight
    assert a.status == b.status == "200 OK"
    assert a.headers["ratelimit-policy"] == POLICY and a.headers["ratelimit"] == '"concurrency";r=1'
    assert b.headers["ratelimit"] == '"concurrency";r=0'
    assert b"".join(a.body) == b"hello"  # sent, but the server has not closed it yet
    full = Response(app, environ())
    assert full.status == "429 Too Many Requests" and 29 <= int(full.headers["retry-after"]) <= 30
    assert b"".join(full.body) == b"Too Many Requests\n"
    full.body.close()
    a.body.close()
    assert leases_held(r, rkey, 2) == 1
    d = Response(app, environ())
    assert d.status == "200 OK"
    list(b.body)
    b.body.close()
    list(d.body)
    d.body.close()
    assert not r.exists(rkey)
    other = Response(app, environ(addr="10.0.0.10"))  # another key, its own slots
    assert other.status == "200 OK"
    other.body.close()
    c.close()


def test_wsgi_releases_after_exceptions(server: Server, r: redis.Redis) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    lim = ConcurrencyLimiter(c, 1, "30s", prefix=uuid.uuid4().hex)
    rkey = lim.redis_key("10.0.0.9")
    app = WSGIRateLimitMiddleware(wsgi_hello, concurrency=lim)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="the app failed"):
            Response(app, environ("/boom"))
        assert not r.exists(rkey)
    resp = Response(app, environ("/boom-later"))
    it = iter(resp.body)
    assert next(it) == b"half"
    with pytest.raises(RuntimeError, match="the body failed"):
        next(it)
    assert r.exists(rkey)  # until the server closes the response, as PEP 3333 has it
    resp.body.close()
    assert not r.exists(rkey)
    # end to end through httpx's WSGI transport
    with httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr="10.0.0.9"), base_url="http://t") as client:
        assert [client.get("/").status_code for _ in range(3)] == [200] * 3
        with pytest.raises(RuntimeError):
            client.get("/boom")
        ok = client.get("/")
        assert ok.text == "hello" and ok.headers["ratelimit"] == '"concurrency";r=0'
    assert not r.exists(rkey)
    c.close()


def test_wsgi_concurrency_next_to_a_rate_limit_and_renew(server: Server, r: redis.Redis) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    prefix = uuid.uuid4().hex
    rkey = f"{prefix}:10.0.0.9"
    rate = RateLimiter(c, "2/h", prefix=prefix)
    lim = ConcurrencyLimiter(c, 1, "500ms", prefix=prefix)
    app = validator(WSGIRateLimitMiddleware(validator(wsgi_hello), rate, concurrency=lim, renew=True))
    held = Response(app, environ())
    assert held.status == "200 OK"
    assert held.headers["x-ratelimit-remaining"] == "1"
    assert held.headers["ratelimit-policy"] == '"2/h";q=2;w=3600, "concurrency";q=1;qu="concurrent-requests"'
    for _ in range(5):  # 1.25 s: renewed from a thread while the response is open
        time.sleep(0.25)
        busy = Response(app, environ())
        assert busy.status.startswith("429") and "x-ratelimit-limit" not in busy.headers
        busy.body.close()
    assert rate.stats("10.0.0.9")[0].remaining == 1  # the refused requests consumed no rate
    held.body.close()
    assert leases_held(r, rkey, 1) == 0
    ok = Response(app, environ())
    ok.body.close()
    denied = Response(app, environ())  # the rate limit (2 an hour) this time
    assert denied.status.startswith("429") and denied.headers["x-ratelimit-remaining"] == "0"
    denied.body.close()
    assert leases_held(r, rkey, 1) == 0  # its lease was given back
    c.close()


def test_wsgi_fail_closed_and_open(caplog: pytest.LogCaptureFixture) -> None:
    from test_client import _dead_client

    closed = ConcurrencyLimiter(_dead_client(False), 1, "30s", on_error="closed", error_retry_after=2)
    resp = Response(WSGIRateLimitMiddleware(wsgi_hello, concurrency=closed), environ())
    assert resp.status.startswith("429") and resp.headers["retry-after"] == "2"
    opened = ConcurrencyLimiter(_dead_client(False), 1, "30s", on_error="open")
    resp = Response(WSGIRateLimitMiddleware(wsgi_hello, concurrency=opened), environ())
    assert resp.status == "200 OK" and b"".join(resp.body) == b"hello"
    resp.body.close()
    assert "failing open: lease granted" in caplog.text and "RL.RELEASE" in caplog.text
