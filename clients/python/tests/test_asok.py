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
    # Asok's own entry points, unchanged: configure() routes them to the module
    "programmatic/page.py": """
        def get(request):
            request.rate_limit("2/m")
            return "programmatic ok"
    """,
    "asokimport/page.py": """
        from asok import rate_limit

        @rate_limit("2/m", storage=None)
        def get(request):
            return "asok import ok"
    """,
    "asokkeywords/page.py": """
        from redis_ratelimit.contrib.asok import rate_limit

        @rate_limit(max_requests=2, limit=0, window=3600, storage=object(), prefix="kw-shared")
        def get(request):
            return "keywords ok"
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
    rl_asok.configure(asok_api=False)
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


def test_asok_entry_points_use_the_module_after_configure(asok_root: Path, configured: str, server: Server) -> None:
    client = TestClient(make_app(asok_root))
    # request.rate_limit("2/m"): no call-site change
    got = [client.get("/programmatic") for _ in range(3)]
    assert [r.status_code for r in got] == [200, 200, 429]
    assert got[0].text == "programmatic ok"
    assert_rate_headers(got[1], 2, 0)
    assert 1 <= int(got[2].headers["Retry-After"]) <= 60  # Asok's own 429 page has none
    # `from asok import rate_limit` in a page loaded after configure()
    assert [client.get("/asokimport").status_code for _ in range(3)] == [200, 200, 429]
    # Asok's keywords: max_requests, storage (its Cache is not needed), prefix
    assert [client.get("/asokkeywords").status_code for _ in range(3)] == [200, 200, 429]
    c = redis.Redis(host=server.host, port=server.port)
    keys = sorted(k.decode() for k in c.keys(f"{configured}:*")) + sorted(k.decode() for k in c.keys("kw-shared*"))
    c.close()
    assert keys == [
        f"{configured}:asokimport/page.py:get:unknown",
        f"{configured}:programmatic/page.py:get:unknown",
        "kw-shared:unknown",
    ]
    # app.rate_limit(...) is the module's decorator too
    app = make_app(asok_root)
    assert app.rate_limit("2/m").__qualname__.startswith("rate_limit.")
    assert app.rate_limit("2/m").__module__ == "redis_ratelimit.contrib.asok"


def test_asok_api_false_gives_asok_its_own_back(configured: str) -> None:
    import asok.ratelimit
    from asok.request import Request

    assert Request.rate_limit.__module__ == "redis_ratelimit.contrib.asok"
    rl_asok.configure(asok_api=False)
    assert Request.rate_limit.__module__.startswith("asok.")
    assert asok.ratelimit.rate_limit.__module__ == "asok.ratelimit"
    assert asok.rate_limit.__module__ == "asok.ratelimit"


def raw_get(client: TestClient, path: str) -> "tuple[int, list]":
    """GET through the WSGI app, keeping every header line (TestClient's
    response folds them into a dict, which would hide repeated headers)."""
    got: list = []
    body = b"".join(client.app(client._build_environ("GET", path), lambda status, headers: got.append((status, headers))))
    assert body is not None
    status, headers = got[0]
    return int(status.split()[0]), headers


def test_one_set_of_headers_for_the_most_restrictive_limit(asok_root: Path, configured: str) -> None:
    # A global middleware (100/m) and a route limit (3/m) on one response:
    # each header once, describing the route's limit (fewer remaining).
    client = TestClient(make_app(asok_root, rl_asok.RateLimitMiddleware("100/m", prefix=configured + "-global").handle))
    names = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy")
    for expect_status, expect_remaining in ((200, "2"), (200, "1"), (200, "0"), (429, "0")):
        status, headers = raw_get(client, "/limited")
        assert status == expect_status
        for name in names + (("Retry-After",) if status == 429 else ()):
            values = [v for n, v in headers if n.lower() == name.lower()]
            assert len(values) == 1, (name, headers)
        got = {n: v for n, v in headers}
        assert (got["X-RateLimit-Limit"], got["X-RateLimit-Remaining"]) == ("3", expect_remaining)
    assert 1 <= int(got["Retry-After"]) <= 60


def test_most_restrictive_order() -> None:
    from redis_ratelimit._results import RateLimitResult

    def res(allowed: bool, remaining: int, retry: int) -> RateLimitResult:
        return RateLimitResult(allowed, 10, remaining, 1000, retry)

    order = sorted([res(True, 5, 0), res(False, 0, 100), res(True, 2, 0), res(False, 0, -1), res(False, 0, 900)],
                   key=rl_asok._restriction)
    assert [(r.allowed, r.remaining, r.retry_after_ms) for r in order] == [
        (False, 0, -1), (False, 0, 900), (False, 0, 100), (True, 2, 0), (True, 5, 0)]


def test_configure_again_reaches_limiters_already_built(server: Server) -> None:
    c = redis.Redis(host=server.host, port=server.port)

    class Req:
        ip = "192.0.2.9"
        response_headers: list = []

    def handler(request: object) -> None:
        rl_asok.check(request, "5/h")

    first, second = "cfg1-" + uuid.uuid4().hex[:6], "cfg2-" + uuid.uuid4().hex[:6]
    try:
        rl_asok.configure(c, prefix=first, asok_api=False)
        handler(Req())
        rl_asok.configure(c, prefix=second, strategy="moving-window", asok_api=False)
        handler(Req())
        assert c.keys(f"{first}:*") and c.keys(f"{second}:*")
        assert c.execute_command("RL.STATS", c.keys(f"{second}:*")[0], "5/h", "STRATEGY", "moving")
    finally:
        rl_asok.configure(asok_api=False)
        c.close()
