"""Asok glue through Asok's own TestClient (a real Asok 0.8 app on disk)."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

asok = pytest.importorskip("asok")  # Asok needs Python 3.10+
from asok import Asok, TestClient  # noqa: E402
from asok.exceptions import RateLimitExceeded  # noqa: E402

from redis_ratelimit.contrib import asok as rl_asok  # noqa: E402

from conftest import Server  # noqa: E402

PAGES = {
    "limited/page.py": """
        from redis_ratelimit.contrib.asok import rate_limit

        @rate_limit("3/m")
        def get(request):
            return "limited ok"
    """,
    "other/page.py": """
        from redis_ratelimit.contrib.asok import rate_limit

        @rate_limit(3, 60, strategy="gcra")
        def get(request):
            return "other ok"
    """,
    "checked/page.py": """
        from redis_ratelimit.contrib.asok import check

        def get(request):
            res = check(request, "2/m", strategy="moving-window")
            return f"checked ok, {res.remaining} left"
    """,
    "plain/page.py": """
        def get(request):
            return "plain ok"
    """,
}


@pytest.fixture(scope="module")
def asok_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("asokapp")
    for rel, src in PAGES.items():
        p = root / "src" / "pages" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(src))
    old = os.environ.get("SECRET_KEY")
    os.environ["SECRET_KEY"] = "test-" + "k" * 40
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop("SECRET_KEY", None)
        else:
            os.environ["SECRET_KEY"] = old


@pytest.fixture
def configured(server: Server) -> Iterator[str]:
    prefix = "asok-" + uuid.uuid4().hex[:8]
    c = redis.Redis(host=server.host, port=server.port)
    rl_asok.configure(c, prefix=prefix)
    yield prefix
    rl_asok.configure()
    c.close()


def make_app(root: Path, *middlewares: Any) -> Asok:
    app = Asok(root_dir=str(root))
    app.config["RATE_LIMIT"] = False  # Asok's own per-process limiter off
    for mw in middlewares:
        app.use(mw)
    return app


def assert_rate_headers(resp: Any, limit: int, remaining: int) -> None:
    assert resp.headers["X-RateLimit-Limit"] == str(limit)
    assert resp.headers["X-RateLimit-Remaining"] == str(remaining)
    assert "RateLimit-Policy" in resp.headers and "RateLimit" in resp.headers
    assert "X-RateLimit-Reset" in resp.headers


def test_decorator_per_route_and_shared_across_app_instances(asok_root: Path, configured: str, server: Server) -> None:
    # two app instances load the page modules separately under different
    # module names, as two worker processes do: they must share the limit
    a, b = TestClient(make_app(asok_root)), TestClient(make_app(asok_root))
    r1 = a.get("/limited")
    assert r1.status_code == 200 and r1.text == "limited ok"
    assert_rate_headers(r1, 3, 2)
    assert b.get("/limited").status_code == 200
    assert a.get("/limited").status_code == 200
    denied = b.get("/limited")
    assert denied.status_code == 429
    assert 1 <= int(denied.headers["Retry-After"]) <= 60
    assert_rate_headers(denied, 3, 0)
    # another route has its own automatic prefix
    assert [a.get("/other").status_code for _ in range(4)] == [200, 200, 200, 429]
    c = redis.Redis(host=server.host, port=server.port)
    keys = sorted(k.decode() for k in c.keys(f"{configured}:*"))
    c.close()
    assert keys == [f"{configured}:limited/page.py:get:unknown", f"{configured}:other/page.py:get:unknown"]


def test_programmatic_check_raises_asoks_exception(asok_root: Path, configured: str) -> None:
    client = TestClient(make_app(asok_root))
    ok = client.get("/checked")
    assert ok.status_code == 200 and ok.text == "checked ok, 1 left"
    assert client.get("/checked").status_code == 200
    denied = client.get("/checked")
    assert denied.status_code == 429
    assert int(denied.headers["Retry-After"]) >= 1
    assert_rate_headers(denied, 2, 0)

    class Req:  # the exception itself, outside a request cycle
        ip = "192.0.2.1"
        response_headers: list = []

    rl_asok.check(Req(), "1/h", prefix=configured + "-direct")
    with pytest.raises(RateLimitExceeded) as ei:
        rl_asok.check(Req(), "1/h", prefix=configured + "-direct")
    assert ei.value.status == 429 and 3500 <= ei.value.retry_after <= 3600


def test_middleware(asok_root: Path, configured: str) -> None:
    mw = rl_asok.RateLimitMiddleware("4/m", strategy="sliding-window-counter")
    client = TestClient(make_app(asok_root, mw.handle))
    got = [client.get("/plain") for _ in range(5)]
    assert [r.status_code for r in got] == [200] * 4 + [429]
    assert got[0].text == "plain ok"
    assert_rate_headers(got[0], 4, 3)
    assert "Retry-After" in got[4].headers and "429" in got[4].text
    assert client.get("/static/x.css").status_code in (200, 404)  # exempt: never 429


def test_middleware_key_func_and_plain_objects(server: Server) -> None:
    """The protocol the glue relies on: request.ip / .path / .response_headers /
    .status_code(), and next(request)."""
    lim = rl_asok.RateLimitMiddleware(
        limiter=rl_asok.RateLimiter(redis.Redis(host=server.host, port=server.port), "1/m", prefix=uuid.uuid4().hex),
        key_func=lambda req: req.user,
    )

    class Req:
        def __init__(self, user: Any) -> None:
            self.user, self.path, self.ip, self.environ = user, "/x", "", {}
            self.response_headers: list = []
            self.status = 200

        def status_code(self, code: int) -> None:
            self.status = code

    assert lim.handle(Req("u1"), lambda r: "ok") == "ok"
    r = Req("u1")
    assert "429" in lim.handle(r, lambda r: "ok") and r.status == 429
    assert ("Retry-After", r.response_headers[-1][1]) == r.response_headers[-1]
    assert lim.handle(Req(None), lambda r: "exempt") == "exempt"


def test_route_id() -> None:
    assert rl_asok.route_id("/srv/app/src/pages/blog/[slug]/page.py", "get") == "blog/[slug]/page.py:get"
    assert rl_asok.route_id("/x/views.py", "index", "myapp.views") == "myapp.views.index"
    assert rl_asok.route_id("/x/page.py", "get", "page_1403") == "page.py:get"
