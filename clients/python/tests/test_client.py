"""RateLimiter and AsyncRateLimiter against the real module."""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import time
from typing import Any, Awaitable, Callable, TypeVar

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_ratelimit import AsyncRateLimiter, ModuleNotLoadedError, RateLimiter, RateLimitResult
from conftest import Server, free_port, start_redis, stop_pid

T = TypeVar("T")

STRATEGIES = ["fixed-window", "moving-window", "sliding-window-counter", "gcra"]


class SyncFacade:
    """Runs the same scenario against RateLimiter or AsyncRateLimiter."""

    def __init__(self, server: Server, is_async: bool, resp3: bool = False) -> None:
        self.server = server
        self.is_async = is_async
        self.resp3 = resp3
        self.loop = asyncio.new_event_loop() if is_async else None
        kw: dict = {"protocol": 3} if resp3 else {}
        if is_async:
            self.client: Any = redis.asyncio.Redis(host=server.host, port=server.port, **kw)
        else:
            self.client = redis.Redis(host=server.host, port=server.port, **kw)

    def limiter(self, *a: Any, **kw: Any) -> Any:
        cls = AsyncRateLimiter if self.is_async else RateLimiter
        lim = cls(self.client, *a, **kw)
        facade = self

        class L:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(lim, name)
                if not inspect.iscoroutinefunction(attr) or not facade.is_async:
                    return attr
                return lambda *x, **y: facade.run(attr(*x, **y))

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
def api(request: pytest.FixtureRequest, server: Server) -> Any:
    f = SyncFacade(server, request.param.startswith("async"), request.param.endswith("resp3"))
    yield f
    f.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_admits_exactly_the_limit(api: SyncFacade, key: str, strategy: str) -> None:
    lim = api.limiter("5/h", strategy=strategy, prefix="rl")
    results = [lim.hit(key) for _ in range(8)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 3
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    assert all(r.limit == 5 for r in results)
    denied = results[-1]
    assert denied.retry_after_ms > 0 and denied.retry_after > 0
    assert 0 < denied.reset_after_ms <= (2 if strategy == "sliding-window-counter" else 1) * 3_600_000
    assert "Retry-After" in denied.headers()


def test_hit_test_stats_clear(api: SyncFacade, key: str) -> None:
    lim = api.limiter("10/s;1000/day", strategy="moving-window", prefix="app")
    assert lim.redis_key(key) == f"app:{key}"
    r1 = lim.hit(key, cost=3)
    assert isinstance(r1, RateLimitResult) and r1.allowed and r1.remaining == 7 and r1.limit == 10
    t = lim.test(key, cost=7)
    assert t.allowed and t.remaining == 0
    assert not lim.test(key, cost=8).allowed
    assert lim.hit(key, cost=0).remaining == 7  # COST 0 changes nothing
    stats = lim.stats(key)
    assert [(s.limit, s.window_ms, s.strategy, s.remaining) for s in stats] == [
        (10, 1000, "moving-window", 7), (1000, 86_400_000, "moving-window", 997)]
    assert stats[0].window == 1.0 and 0 < stats[0].reset_after <= 1.0
    assert lim.clear(key) == 2
    assert lim.stats(key)[0].remaining == 10
    assert lim.clear(key) == 0


def test_cost_larger_than_limit_never(api: SyncFacade, key: str) -> None:
    lim = api.limiter("5/s")
    res = lim.hit(key, cost=6)
    assert not res.allowed and res.retry_after_ms == -1 and res.retry_after == float("inf")
    assert "Retry-After" not in res.headers()


def test_window_replenishes(api: SyncFacade, key: str) -> None:
    lim = api.limiter("2/300ms", strategy="moving-window")
    assert lim.hit(key) and lim.hit(key)
    denied = lim.hit(key)
    assert not denied
    time.sleep(denied.retry_after + 0.02)
    assert lim.hit(key)


def test_gcra_burst(api: SyncFacade, key: str) -> None:
    lim = api.limiter("30/60s", strategy="gcra", burst=16)
    first = lim.hit(key)
    assert (first.allowed, first.limit, first.remaining, first.reset_after_ms) == (True, 16, 15, 2000)
    big = lim.hit(key, cost=15)
    assert big.allowed and big.remaining == 0
    denied = lim.hit(key)
    assert not denied.allowed and 1900 <= denied.retry_after_ms <= 2000
    assert lim.stats(key)[0].strategy == "gcra"
    assert denied.headers()["RateLimit"].startswith('"30/60s";r=0;')


def test_gcra_token_bucket_alias_and_bad_burst(server: Server, key: str) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    lim = RateLimiter(c, "3/s", strategy="token-bucket", burst=1)
    assert lim.strategy == "gcra"
    assert lim.hit(key) and not lim.hit(key)
    with pytest.raises(ValueError):
        RateLimiter(c, "3/s", strategy="moving-window", burst=2)
    with pytest.raises(ValueError):
        RateLimiter(c, "3/s", strategy="gcra", burst=0)
    with pytest.raises(ValueError):
        RateLimiter(c, "3/s", strategy="leaky")
    with pytest.raises(ValueError):
        RateLimiter(c, "3/fortnight")
    with pytest.raises(ValueError):
        lim.hit(key, cost=-1)
    c.close()


def test_all_or_nothing_across_limits(api: SyncFacade, key: str) -> None:
    lim = api.limiter("3/h;5/d", strategy="fixed-window")
    assert all(lim.hit(key) for _ in range(3))
    res = lim.hit(key)
    assert not res and res.limit == 3
    assert [s.remaining for s in lim.stats(key)] == [0, 2]  # the denied hit charged nothing


def test_wrongtype_is_raised(server: Server, key: str) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    c.set(f"rl:{key}", "not rate-limit state")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        RateLimiter(c, "1/s", on_error="open").hit(key)
    c.close()


def _dead_client(is_async: bool) -> Any:
    port = free_port()  # nothing listens there
    kw: dict = dict(host="127.0.0.1", port=port, socket_connect_timeout=0.2, socket_timeout=0.2)
    if is_async:  # no retries: redis-py 6+ retries with backoff by default
        from redis.asyncio.retry import Retry as ARetry

        return redis.asyncio.Redis(retry=ARetry(NoBackoff(), 0), **kw)
    return redis.Redis(retry=Retry(NoBackoff(), 0), **kw)


@pytest.mark.parametrize("is_async", [False, True])
def test_unreachable_fail_modes(is_async: bool, caplog: pytest.LogCaptureFixture) -> None:
    cls: Callable[..., Any] = AsyncRateLimiter if is_async else RateLimiter

    def call(method: str = "hit", **kw: Any) -> Any:
        if not is_async:
            return getattr(cls(_dead_client(False), "10/s", **kw), method)("k")

        async def go() -> Any:  # the client is made inside the loop (Python 3.9)
            return await getattr(cls(_dead_client(True), "10/s", **kw), method)("k")

        return asyncio.run(go())

    with pytest.raises(redis.ConnectionError):
        call()
    caplog.set_level(logging.WARNING, logger="redis_ratelimit")
    caplog.clear()
    res = call(on_error="open")
    assert res.allowed and res.error and res.headers() == {}
    assert "failing open" in caplog.text and "admitted" in caplog.text
    caplog.clear()
    res = call("test", on_error="closed", error_retry_after=5)
    assert not res.allowed and res.error and res.headers() == {"Retry-After": "5"}
    assert "failing closed" in caplog.text and "denied" in caplog.text
    with pytest.raises(ValueError):
        cls(None, "10/s", on_error="ignore")


def test_module_not_loaded_is_named() -> None:
    proc, srv = start_redis(with_module=False)
    try:
        c = redis.Redis(host=srv.host, port=srv.port)
        with pytest.raises(ModuleNotLoadedError, match="loadmodule"):
            RateLimiter(c, "1/s").hit("k")
        c.close()
    finally:
        stop_pid(proc)
        shutil.rmtree(srv.dir, ignore_errors=True)


def test_concurrent_threads_exact(server: Server, key: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = redis.ConnectionPool(host=server.host, port=server.port, max_connections=32)
    lim = RateLimiter(redis.Redis(connection_pool=pool), "50/h", strategy="sliding-window-counter")
    with ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda _: lim.hit(key).allowed, range(200)))
    assert sum(results) == 50
    pool.disconnect()


def test_async_gather_exact(server: Server, key: str) -> None:
    async def main() -> int:
        pool = redis.asyncio.BlockingConnectionPool(host=server.host, port=server.port, max_connections=16)
        c = redis.asyncio.Redis(connection_pool=pool)
        lim = AsyncRateLimiter(c, "40/h", strategy="gcra")
        res = await asyncio.gather(*(lim.hit(key) for _ in range(150)))
        await c.aclose()
        return sum(r.allowed for r in res)

    assert asyncio.run(main()) == 40


# -- penalties (PENALTY) and refunds (RL.REFUND) ------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_penalty_locks_the_key_until_it_ends(api: SyncFacade, key: str, strategy: str) -> None:
    lim = api.limiter("2/300ms", strategy=strategy, penalty="1500ms")
    assert lim.penalty == "1500ms" and lim.penalty_ms == 1500
    assert lim.hit(key) and lim.hit(key)
    breach = lim.hit(key)  # denied for usage: starts the penalty, and says so
    assert not breach.allowed and breach.penalized and breach.remaining == 0
    assert 1400 < breach.retry_after_ms <= 1500 and breach.reset_after_ms > 1400
    assert api.limiter("2/300ms", strategy=strategy).stats(key)[0].penalty_ms > 1400
    time.sleep(0.65)  # the window is free again (sliding: two windows), the key still locked
    later = lim.hit(key)
    assert not later.allowed and later.penalized and later.remaining == 0
    assert 0 < later.retry_after_ms <= breach.retry_after_ms - 600  # not extended
    # every call at the key is denied, whatever its limits, strategy or cost, with or without PENALTY
    other = api.limiter("1000/s", strategy="fixed-window")
    t = other.hit(key, cost=0)
    assert not t.allowed and not t.penalized and t.remaining == 0 and t.retry_after_ms >= later.retry_after_ms - 50
    stats = lim.stats(key)
    assert stats[0].penalized and stats[0].remaining == 0 and stats[0].retry_after_ms >= stats[0].penalty_ms
    h = later.headers()
    assert int(h["Retry-After"]) * 1000 >= stats[0].penalty_ms
    time.sleep(later.retry_after + 0.05)
    assert lim.stats(key)[0].penalty_ms == 0
    assert lim.hit(key).allowed


def test_penalty_on_test_only_reports(api: SyncFacade, key: str) -> None:
    lim = api.limiter("1/h;100/d", penalty="2h")
    assert lim.hit(key)
    probe = lim.test(key)  # what a hit would answer: denied, and locked for 2 h
    assert not probe.allowed and not probe.penalized and 7_190_000 < probe.retry_after_ms <= 7_200_000
    stats = lim.stats(key)
    assert [s.penalty_ms for s in stats] == [0, 0]  # RL.TEST changed nothing
    res = lim.hit(key)
    assert not res.allowed and res.penalized and 7_190_000 < res.retry_after_ms <= 7_200_000
    stats = lim.stats(key)
    assert stats[0].penalty_ms == stats[1].penalty_ms > 7_190_000 and stats[0].penalty > 7190
    # HTTP headers under the penalty: never earlier than its end
    h = res.headers()
    assert h["Retry-After"] == str(-(-res.retry_after_ms // 1000)) and int(h["Retry-After"]) >= 7190
    assert int(h["X-RateLimit-Reset"]) >= int(time.time()) + 7190
    assert h["X-RateLimit-Remaining"] == "0" and ";r=0;t=" in h["RateLimit"]


def test_penalty_not_started_by_a_hit_that_can_never_pass(api: SyncFacade, key: str) -> None:
    lim = api.limiter("2/h", penalty="1h")
    never = lim.hit(key, cost=3)
    assert not never.allowed and never.retry_after_ms == -1 and not never.penalized
    assert lim.stats(key)[0].penalty_ms == 0
    assert lim.hit(key, cost=2).allowed


def test_penalty_values_on_the_wire(server: Server, key: str) -> None:
    from datetime import timedelta

    c = redis.Redis(host=server.host, port=server.port)
    for value, text in [(" 2 Minutes ", "2 Minutes"), ("hour", "hour"), (90, "90000ms"), (0.25, "250ms"),
                        (timedelta(minutes=15), "900000ms")]:
        lim = RateLimiter(c, "1/h", penalty=value)
        assert lim.penalty == text
        lim.clear(key)
        assert lim.hit(key) and lim.hit(key).penalized  # the module takes it
        assert c.execute_command("RL.CLEAR", f"rl:{key}") == 1
    c.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_refund_gives_usage_back(api: SyncFacade, key: str, strategy: str) -> None:
    lim = api.limiter("5/h;50/d", strategy=strategy, penalty="1h")  # no PENALTY goes with RL.REFUND
    for _ in range(3):
        assert lim.hit(key)
    back = lim.refund(key)
    assert isinstance(back, RateLimitResult) and back.allowed and not back.penalized
    assert (back.limit, back.remaining) == (5, 3)
    now = lim.test(key, cost=0)  # the reply is what RL.TEST COST 0 gives right after
    assert (now.allowed, now.limit, now.remaining, now.retry_after_ms) == (True, 5, 3, 0)
    assert abs(now.reset_after_ms - back.reset_after_ms) <= 50
    assert [s.remaining for s in lim.stats(key)] == [3, 48]
    assert lim.refund(key, cost=2).remaining == 5
    all_back = lim.refund(key, cost=100)  # never below zero; an empty key is deleted
    assert (all_back.allowed, all_back.remaining, all_back.reset_after_ms) == (True, 5, 0)
    assert [s.remaining for s in lim.stats(key)] == [5, 50]


def test_refund_key_deleted_cost_range_and_penalty_stays(server: Server, key: str) -> None:
    c = redis.Redis(host=server.host, port=server.port)
    lim = RateLimiter(c, "2/h", penalty="1h")
    assert lim.hit(key, cost=2)
    assert lim.refund(key, cost=2).remaining == 2
    assert not c.exists(lim.redis_key(key))  # no usage left: the key is gone
    assert lim.refund(key).remaining == 2  # nothing to give back: nothing written
    assert not c.exists(lim.redis_key(key))
    for bad in (0, -1, 4294967296, True, 1.0):
        with pytest.raises(ValueError):
            lim.refund(key, cost=bad)  # type: ignore[arg-type]
    assert lim.hit(key, cost=2) and lim.hit(key).penalized  # locked
    under = lim.refund(key, cost=2)  # refunds never lift a penalty
    assert not under.allowed and under.remaining == 0 and under.retry_after_ms > 3_500_000
    assert lim.stats(key)[0].penalty_ms > 3_500_000
    c.close()


def test_refund_when_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="redis_ratelimit")
    with pytest.raises(redis.ConnectionError):
        RateLimiter(_dead_client(False), "10/s").refund("k")
    res = RateLimiter(_dead_client(False), "10/s", on_error="open").refund("k")
    assert res.error and "RL.REFUND" in caplog.text and "refund not made" in caplog.text

    async def go() -> RateLimitResult:  # the client is made inside the loop (Python 3.9)
        return await AsyncRateLimiter(_dead_client(True), "10/s", on_error="closed").refund("k")

    assert asyncio.run(go()).error
