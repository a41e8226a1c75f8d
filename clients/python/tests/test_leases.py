"""Concurrency leases (RL.ACQUIRE / RL.RELEASE, contract section 13):
ConcurrencyLimiter and AsyncConcurrencyLimiter against the real module,
their ``with`` / ``async with`` leases (release on exit and on an
exception, renewal in the background, denial), fail open / closed, and
the results and headers without I/O."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import shutil
import threading
import time
from datetime import timedelta
from typing import Any, Awaitable, Iterator, List, TypeVar

import pytest
import redis
import redis.asyncio

from redis_ratelimit import (
    AsyncConcurrencyLimiter,
    AsyncLease,
    ConcurrencyLimiter,
    Lease,
    LeaseDenied,
    LeaseResult,
    ModuleNotLoadedError,
    RateLimiter,
)
from redis_ratelimit._results import decode_lease, merge_headers

from conftest import Server, start_redis, stop_pid
from test_client import _dead_client

T = TypeVar("T")


class Api:
    """Runs one scenario against ConcurrencyLimiter or AsyncConcurrencyLimiter
    (the asyncio one on its own event loop, its calls run to completion)."""

    def __init__(self, server: Server, is_async: bool, resp3: bool = False) -> None:
        self.is_async = is_async
        self.loop = asyncio.new_event_loop() if is_async else None
        kw: dict = {"protocol": 3} if resp3 else {}
        if is_async:
            self.client: Any = redis.asyncio.Redis(host=server.host, port=server.port, **kw)
        else:
            self.client = redis.Redis(host=server.host, port=server.port, **kw)

    def limiter(self, *a: Any, **kw: Any) -> Any:
        cls = AsyncConcurrencyLimiter if self.is_async else ConcurrencyLimiter
        lim = cls(self.client, *a, **kw)
        api = self

        class L:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(lim, name)
                if not inspect.iscoroutinefunction(attr):
                    return attr
                return lambda *x, **y: api.run(attr(*x, **y))

        return L()

    def run(self, aw: Awaitable[T]) -> T:
        assert self.loop is not None
        return self.loop.run_until_complete(aw)

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async", "sync-resp3", "async-resp3"])
def api(request: pytest.FixtureRequest, server: Server) -> Iterator[Api]:
    a = Api(server, request.param.startswith("async"), request.param.endswith("resp3"))
    yield a
    a.close()


def leases_held(r: redis.Redis, rkey: str, max: int) -> int:
    """How many leases ``rkey`` holds, asked of the module: acquire the free
    slots with fresh tokens (RL.ACQUIRE at ``max``), then release them."""
    taken: List[str] = []
    for i in range(max + 1):
        tok = f"probe-{i}-{time.monotonic_ns()}"
        if r.execute_command("RL.ACQUIRE", rkey, max, "10s", tok)[0] != 1:
            break
        taken.append(tok)
    for tok in taken:
        assert r.execute_command("RL.RELEASE", rkey, tok) == 1
    return max - len(taken)


# -- acquire / release --------------------------------------------------------


def test_acquire_grants_max_then_denies(api: Api, key: str, r: redis.Redis) -> None:
    lim = api.limiter(max=3, lease="10s", prefix="lz")
    got = [lim.acquire(key) for _ in range(3)]
    assert [g.acquired for g in got] == [True] * 3
    assert [g.available for g in got] == [2, 1, 0]
    assert all(g.max == 3 and g.retry_after_ms == 0 and 9_900 <= g.reset_after_ms <= 10_000 for g in got)
    assert all(re.fullmatch(r"[0-9a-f]{32}", str(g.token)) for g in got)
    assert len({g.token for g in got}) == 3 and all(bool(g) for g in got)
    assert got[0].headers() == {"RateLimit-Policy": '"concurrency";q=3;qu="concurrent-requests"',
                                "RateLimit": '"concurrency";r=2'}

    denied = lim.acquire(key)
    assert not denied and (denied.acquired, denied.max, denied.available) == (False, 3, 0)
    assert 9_000 < denied.retry_after_ms <= 10_000 and 9.0 < denied.retry_after <= 10.0
    assert denied.headers()["Retry-After"] == "10" and denied.headers()["RateLimit"] == '"concurrency";r=0'

    assert lim.release(key, got[0].token) is True
    assert lim.release(key, got[0].token) is False  # twice: harmless
    assert lim.acquire(key).acquired  # the freed slot
    assert not lim.acquire(key).acquired
    for g in got[1:]:
        assert lim.release(key, g.token)
    assert leases_held(r, f"lz:{key}", 3) == 1


def test_same_token_renews_and_counts_once(api: Api, key: str, r: redis.Redis) -> None:
    lim = api.limiter(2, "5s", prefix="lz")
    first = lim.acquire(key, "job-1")
    assert first.token == "job-1" and first.available == 1
    time.sleep(0.05)
    again = lim.acquire(key, "job-1")  # renewed: still one slot used, ends 5 s from now
    assert again.acquired and again.available == 1 and again.reset_after_ms >= 4_990
    assert lim.acquire(key, b"\x00\xffjob").available == 0  # binary-safe tokens
    assert not lim.acquire(key, "job-3").acquired
    assert lim.acquire(key, b"job-1").acquired  # "job-1" and b"job-1" are the same bytes
    assert lim.release(key, b"job-1") and lim.release(key, b"\x00\xffjob")
    assert not r.exists(f"lz:{key}")  # the last release deleted the key


def test_expired_lease_frees_its_slot(api: Api, key: str, r: redis.Redis) -> None:
    lim = api.limiter(1, "200ms", prefix="lz")
    held = lim.acquire(key)
    assert 0 < r.pttl(f"lz:{key}") <= 200
    denied = lim.acquire(key)
    assert not denied.acquired and 0 < denied.retry_after_ms <= 200
    time.sleep(0.25)
    assert lim.acquire(key).acquired  # the holder "crashed": its slot came back
    assert lim.release(key, held.token) is False  # after expiry: harmless


def test_arguments_checked_before_sending(r: redis.Redis, key: str) -> None:
    for bad in (0, 10001, -1, True, 1.5, "3"):
        with pytest.raises(ValueError, match="max"):
            ConcurrencyLimiter(r, bad)  # type: ignore[arg-type]
    for lease in ("30", "0s", "fortnight", 0, 0.0004, -1, float("nan"), timedelta(0)):
        with pytest.raises(ValueError, match="lease"):
            ConcurrencyLimiter(r, 1, lease)
    with pytest.raises(TypeError, match="lease"):
        ConcurrencyLimiter(r, 1, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error"):
        ConcurrencyLimiter(r, 1, on_error="ignore")  # type: ignore[arg-type]
    assert ConcurrencyLimiter(r, 10000, " 2 minutes ").lease_duration == "2 minutes"
    lim = ConcurrencyLimiter(r, 2, timedelta(seconds=1.5), prefix="")
    assert (lim.max, lim.lease_duration, lim.lease_ms, lim.redis_key("a")) == (2, "1500ms", 1500, "a")
    assert ConcurrencyLimiter(r, 2, 3).lease_duration == "3000ms"
    assert ConcurrencyLimiter(r, 2).lease_ms == 30_000  # the default lease
    for token in ("", "x" * 129, "é" * 65):  # 130 bytes in UTF-8
        with pytest.raises(ValueError, match="1 to 128 bytes"):
            lim.acquire(key, token)
        with pytest.raises(ValueError, match="1 to 128 bytes"):
            lim.release(key, token)
    with pytest.raises(TypeError):
        lim.acquire(key, 5)  # type: ignore[arg-type]
    assert lim.acquire(key, "é" * 64).acquired  # 128 bytes
    with pytest.raises(ValueError, match="renew"):
        lim.lease(key, renew=0)
    # the module agrees on each bound
    for args, msg in [((0, "1s", "t"), "max must be"), ((10001, "1s", "t"), "max must be"),
                      ((1, "30", "t"), "invalid lease"), ((1, "1s", ""), "token must be"),
                      ((1, "1s", "x" * 129), "token must be")]:
        with pytest.raises(redis.ResponseError, match=msg):
            r.execute_command("RL.ACQUIRE", "lz:" + key, *args)


def test_leases_share_a_key_with_rate_limits(r: redis.Redis, key: str) -> None:
    """Section 13: leases live in the same key as rate-limit state; each
    keeps the key alive while it holds anything."""
    rate = RateLimiter(r, "5/h", prefix="both")
    leases = ConcurrencyLimiter(r, 2, "300ms", prefix="both")
    assert rate.hit(key).remaining == 4
    a = leases.acquire(key)
    assert a.acquired and a.available == 1
    assert rate.hit(key).remaining == 3 and rate.stats(key)[0].remaining == 3
    assert leases.release(key, a.token)
    assert r.exists(f"both:{key}") and r.pttl(f"both:{key}") > 3_500_000  # the hits stay, an hour
    assert leases.acquire(key).available == 1
    time.sleep(0.35)  # that lease expired: the hits are still counted
    assert rate.stats(key)[0].remaining == 3 and leases.acquire(key).available == 1

    short = RateLimiter(r, "5/200ms", prefix="both")
    long = ConcurrencyLimiter(r, 2, "1h", prefix="both")
    k2 = key + "-2"
    held = long.acquire(k2)
    assert short.hit(k2).remaining == 4
    assert r.pttl(f"both:{k2}") > 3_500_000  # the lease keeps the key alive past the window
    time.sleep(0.25)
    assert short.stats(k2)[0].remaining == 5 and long.acquire(k2).available == 0
    short.clear(k2)  # RL.CLEAR key limits: the leases stay
    assert r.exists(f"both:{k2}") and long.acquire(k2).available == 0
    assert r.execute_command("RL.CLEAR", f"both:{k2}") == 1  # RL.CLEAR key: everything
    assert not long.release(k2, held.token)


# -- with limiter.lease(key) ----------------------------------------------------


def test_lease_context_releases_on_exit_and_on_exception(r: redis.Redis, key: str) -> None:
    lim = ConcurrencyLimiter(r, 1, "10s", prefix="lz")
    with lim.lease(key) as lease:
        assert isinstance(lease, Lease) and lease.result is not None and lease.result.acquired
        assert lease.released is None and lease.key == key
        assert not lim.acquire(key).acquired  # held
    assert lease.released is True and not r.exists(f"lz:{key}")

    with pytest.raises(ZeroDivisionError):
        with lim.lease(key) as lease:
            assert not lim.acquire(key).acquired
            1 / 0
    assert lease.released is True and not r.exists(f"lz:{key}")

    with lim.lease(key, token="request-42") as lease:
        assert lease.token == "request-42"
        assert lim.release(key, "request-42")  # released inside the block
    assert lease.released is False  # nothing was left to release
    with pytest.raises(RuntimeError, match="entered once"):
        with lease:
            pass


def test_lease_denied_raises_with_retry_after(r: redis.Redis, key: str) -> None:
    lim = ConcurrencyLimiter(r, 2, "20s", prefix="lz")
    with lim.lease(key), lim.lease(key):
        entered = False
        with pytest.raises(LeaseDenied) as info:
            with lim.lease(key):
                entered = True
        assert not entered
        e = info.value
        assert not e.result.acquired and e.result.available == 0 and e.result.max == 2
        assert 19 < e.retry_after <= 20 and e.headers()["Retry-After"] == "20"
        assert f"lz:{key}" in str(e) and "all 2 slots are taken" in str(e)
    assert not r.exists(f"lz:{key}")


def test_renew_keeps_the_lease_past_its_time(r: redis.Redis, key: str) -> None:
    lim = ConcurrencyLimiter(r, 1, "500ms", prefix="lz")
    with lim.lease(key, renew=True) as lease:  # renewed every 250 ms
        for _ in range(6):  # 1.5 s, three leases long
            time.sleep(0.25)
            assert not lim.acquire(key).acquired, "the renewed lease expired"
        assert lease.renewals >= 4 and not lease.lost
        assert lease.result is not None and lease.result.acquired
    assert lease.released is True and not r.exists(f"lz:{key}")
    assert not any(t.name.startswith("redis-ratelimit lease") for t in threading.enumerate())

    # without renewal the same block loses its slot after 500 ms
    with lim.lease(key) as lease:
        time.sleep(0.6)
        intruder = lim.acquire(key)
        assert intruder.acquired
    assert lease.released is False
    assert lim.release(key, intruder.token)


def test_renew_too_late_is_reported_as_lost(r: redis.Redis, key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="redis_ratelimit")
    lim = ConcurrencyLimiter(r, 1, "100ms", prefix="lz")
    with lim.lease(key, renew=0.3) as lease:  # renews every 300 ms: too late for 100 ms
        time.sleep(0.15)
        other = ConcurrencyLimiter(r, 1, "10s", prefix="lz").acquire(key)  # takes the slot
        assert other.acquired
        time.sleep(0.3)
        assert lease.lost and lease.renewals >= 1
    assert "expired before it was renewed" in caplog.text
    assert lim.release(key, other.token)


# -- async with limiter.lease(key) -------------------------------------------------


def test_async_lease_context(server: Server, key: str, r: redis.Redis) -> None:
    async def main() -> None:
        c = redis.asyncio.Redis(host=server.host, port=server.port)
        lim = AsyncConcurrencyLimiter(c, 1, "500ms", prefix="lz")
        async with lim.lease(key, renew=True) as lease:
            assert isinstance(lease, AsyncLease)
            for _ in range(6):  # 1.5 s, three leases long
                await asyncio.sleep(0.25)
                assert not (await lim.acquire(key)).acquired, "the renewed lease expired"
            assert lease.renewals >= 4 and not lease.lost
        assert lease.released is True and not await c.exists(f"lz:{key}")

        with pytest.raises(KeyError):
            async with lim.lease(key) as lease:
                raise KeyError("boom")
        assert lease.released is True and not await c.exists(f"lz:{key}")

        async with lim.lease(key):
            with pytest.raises(LeaseDenied) as info:
                async with lim.lease(key):
                    pass
            assert info.value.headers()["Retry-After"] == "1"  # 500 ms, rounded up
            assert 0 < info.value.result.retry_after_ms <= 500

        # a task cancelled inside the block still releases (the release is shielded)
        inside = asyncio.Event()

        async def job() -> None:
            async with lim.lease(key, renew=0.05):
                inside.set()
                await asyncio.sleep(30)

        task = asyncio.ensure_future(job())
        await inside.wait()
        assert await c.exists(f"lz:{key}")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if not others and not await c.exists(f"lz:{key}"):
                break
            await asyncio.sleep(0.01)
        assert not await c.exists(f"lz:{key}")
        assert others == []  # the release and the renewal task are done
        await c.aclose()

    asyncio.run(main())


# -- Redis unreachable, module missing ------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
def test_unreachable_fail_modes(is_async: bool, caplog: pytest.LogCaptureFixture) -> None:
    def run(fn: Any) -> Any:
        """fn(limiter class, dead client) -> result, sync or in a loop."""
        if not is_async:
            return fn(ConcurrencyLimiter, _dead_client(False), lambda x: x)

        async def go() -> Any:
            async def aw(x: Any) -> Any:
                return await x

            return await fn(AsyncConcurrencyLimiter, _dead_client(True), aw)

        return asyncio.run(go())

    def acquire(**kw: Any) -> Any:
        return run(lambda cls, c, w: w(cls(c, 2, "10s", **kw).acquire("k", "tok")))

    def release(**kw: Any) -> Any:
        return run(lambda cls, c, w: w(cls(c, 2, "10s", **kw).release("k", "tok")))

    with pytest.raises(redis.ConnectionError):
        acquire()
    with pytest.raises(redis.ConnectionError):
        release()
    caplog.set_level(logging.WARNING, logger="redis_ratelimit")
    caplog.clear()
    res = acquire(on_error="open")
    assert res.acquired and res.error and res.token == "tok" and res.headers() == {}
    assert "RL.ACQUIRE rl:k failed" in caplog.text and "failing open: lease granted" in caplog.text
    caplog.clear()
    res = acquire(on_error="closed", error_retry_after=2)
    assert not res.acquired and res.error and res.headers() == {"Retry-After": "2"}
    assert "failing closed: lease denied" in caplog.text
    caplog.clear()
    assert release(on_error="open") is False
    assert "RL.RELEASE rl:k failed" in caplog.text and "ends when it expires" in caplog.text


def test_unreachable_lease_blocks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="redis_ratelimit")
    ran = []
    with ConcurrencyLimiter(_dead_client(False), 2, "10s", on_error="open").lease("k") as lease:
        ran.append(1)  # failing open: the block runs
    assert ran and lease.result is not None and lease.result.error and lease.released is False
    with pytest.raises(LeaseDenied, match="unreachable") as info:
        with ConcurrencyLimiter(_dead_client(False), 2, "10s", on_error="closed", error_retry_after=3).lease("k"):
            ran.append(2)
    assert ran == [1] and info.value.headers() == {"Retry-After": "3"}

    async def main() -> None:
        lim = AsyncConcurrencyLimiter(_dead_client(True), 2, "10s", on_error="closed")
        with pytest.raises(LeaseDenied):
            async with lim.lease("k"):
                ran.append(3)

    asyncio.run(main())
    assert ran == [1]


def test_module_not_loaded_is_named() -> None:
    proc, srv = start_redis(with_module=False)
    try:
        c = redis.Redis(host=srv.host, port=srv.port)
        with pytest.raises(ModuleNotLoadedError, match="loadmodule"):
            ConcurrencyLimiter(c, 1).acquire("k")
        with pytest.raises(ModuleNotLoadedError):
            ConcurrencyLimiter(c, 1).release("k", "t")
        c.close()
    finally:
        stop_pid(proc)
        shutil.rmtree(srv.dir, ignore_errors=True)


def test_threads_never_hold_more_than_max(server: Server, key: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = redis.ConnectionPool(host=server.host, port=server.port, max_connections=32)
    lim = ConcurrencyLimiter(redis.Redis(connection_pool=pool), 4, "10s", prefix="lz")
    inside = 0
    peak = 0
    lock = threading.Lock()

    def work(_: int) -> bool:
        nonlocal inside, peak
        try:
            with lim.lease(key):
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.02)
                with lock:
                    inside -= 1
            return True
        except LeaseDenied:
            return False

    with ThreadPoolExecutor(16) as ex:
        ran = sum(ex.map(work, range(300)))
    assert peak == 4 and 4 <= ran < 300
    pool.disconnect()


# -- results and headers (no I/O) ------------------------------------------------


def test_lease_result_and_headers() -> None:
    ok = decode_lease([1, 10, 7, 30_000, 0], "t")
    assert ok == LeaseResult(True, 10, 7, 30_000, 0, "t") and ok.reset_after == 30.0 and ok.retry_after == 0.0
    assert ok.headers() == {"RateLimit-Policy": '"concurrency";q=10;qu="concurrent-requests"',
                            "RateLimit": '"concurrency";r=7'}
    no = decode_lease([b"0", b"10", b"0", b"29000", b"1"], b"t")
    assert not no and no.token == b"t" and no.headers(name="jobs") == {
        "RateLimit-Policy": '"jobs";q=10;qu="concurrent-requests"', "RateLimit": '"jobs";r=0',
        "Retry-After": "1"}
    assert decode_lease([0, 10, 0, 2500, 1001], "t").headers()["Retry-After"] == "2"
    with pytest.raises(ValueError):
        decode_lease([1, 2, 3], "t")
    rate = {"RateLimit-Policy": '"10/s";q=10;w=1', "RateLimit": '"10/s";r=9;t=1', "X-RateLimit-Limit": "10"}
    merged = merge_headers(rate, ok.headers())
    assert merged["RateLimit-Policy"] == '"10/s";q=10;w=1, "concurrency";q=10;qu="concurrent-requests"'
    assert merged["RateLimit"] == '"10/s";r=9;t=1, "concurrency";r=7'
    assert merged["X-RateLimit-Limit"] == "10"
    assert merge_headers({"Retry-After": "3"}, {"Retry-After": "20"}) == {"Retry-After": "20"}
