"""The limits-compatible strategies: the same user code, run once with
`limits` (its own Lua scripts, on the same server) and once with
`redis_ratelimit` by changing the import, gives the same answers."""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from typing import Any, List, Tuple

import limits
import pytest
import redis
import redis.asyncio
from limits import parse
from limits.storage import RedisStorage

from conftest import Server

assert limits.__version__.startswith("5."), limits.__version__

NAMES = ["FixedWindowRateLimiter", "MovingWindowRateLimiter", "SlidingWindowCounterRateLimiter"]


def scenario(strategies: Any, storage: Any, name: str, who: str) -> List[Tuple[Any, ...]]:
    """Code as a limits user writes it."""
    limiter = getattr(strategies, name)(storage)
    per_hour = parse("5/hour")
    per_day = parse("7 per day")
    out: List[Tuple[Any, ...]] = []
    for cost in (1, 1, 2, 1, 1, 3, 1):
        out.append(("hit", cost, limiter.hit(per_hour, who, "api", cost=cost)))
    out.append(("test", limiter.test(per_hour, who, "api"), limiter.test(per_day, who, "api", cost=7)))
    stats = limiter.get_window_stats(per_hour, who, "api")
    out.append(("stats", stats.remaining, stats.reset_time > time.time() - 1))
    limiter.clear(per_hour, who, "api")
    out.append(("after clear", limiter.test(per_hour, who, "api", cost=5), limiter.get_window_stats(per_hour, who, "api").remaining))
    out.append(("other identifiers", limiter.hit(per_hour, who, "other")))
    return out


async def ascenario(strategies: Any, storage: Any, name: str, who: str) -> List[Tuple[Any, ...]]:
    limiter = getattr(strategies, name)(storage)
    per_hour = parse("5/hour")
    out: List[Tuple[Any, ...]] = []
    for cost in (1, 1, 2, 1, 1, 3, 1):
        out.append(("hit", cost, await limiter.hit(per_hour, who, cost=cost)))
    out.append(("test", await limiter.test(per_hour, who)))
    stats = await limiter.get_window_stats(per_hour, who)
    out.append(("stats", stats.remaining))
    await limiter.clear(per_hour, who)
    out.append(("after clear", await limiter.test(per_hour, who, cost=5)))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_same_answers_as_limits(server: Server, name: str) -> None:
    storage = RedisStorage(server.url)
    theirs = scenario(importlib.import_module("limits.strategies"), storage, name, "u-" + uuid.uuid4().hex)
    ours = scenario(importlib.import_module("redis_ratelimit.strategies"), storage, name, "u-" + uuid.uuid4().hex)
    assert ours == theirs
    assert [x[2] for x in ours[:7]] == [True, True, True, True, False, False, False]


@pytest.mark.parametrize("name", NAMES)
def test_same_answers_as_limits_aio(server: Server, name: str) -> None:
    from limits.aio.storage import RedisStorage as AioRedisStorage

    async def both() -> Tuple[Any, Any]:
        storage = AioRedisStorage("async+" + server.url, implementation="redispy")
        theirs = await ascenario(importlib.import_module("limits.aio.strategies"), storage, name, uuid.uuid4().hex)
        ours = await ascenario(importlib.import_module("redis_ratelimit.aio.strategies"), storage, name, uuid.uuid4().hex)
        return theirs, ours

    theirs, ours = asyncio.run(both())
    assert ours == theirs


def test_storage_forms_and_keys(server: Server) -> None:
    from redis_ratelimit.strategies import MovingWindowRateLimiter, STRATEGIES

    c = redis.Redis(host=server.host, port=server.port)
    item = parse("2/minute")
    who = uuid.uuid4().hex
    by_client = MovingWindowRateLimiter(c)
    by_uri = MovingWindowRateLimiter(server.url)
    by_storage = MovingWindowRateLimiter(RedisStorage(server.url))
    assert by_client.hit(item, who) and by_uri.hit(item, who)
    assert not by_storage.hit(item, who)  # all three share one limit
    assert c.exists(f"LIMITS:{item.key_for(who)}")  # limits' own key layout
    assert c.pttl(f"LIMITS:{item.key_for(who)}") > 0
    assert set(STRATEGIES) >= {"fixed-window", "moving-window", "sliding-window-counter"}
    with pytest.raises(TypeError):
        MovingWindowRateLimiter(object())
    c.close()


def test_gcra_and_odd_items(server: Server) -> None:
    from redis_ratelimit.strategies import FixedWindowRateLimiter, GCRARateLimiter

    c = redis.Redis(host=server.host, port=server.port)
    who = uuid.uuid4().hex
    g = GCRARateLimiter(c, burst=2)
    item = parse("10/hour")
    assert g.hit(item, who) and g.hit(item, who) and not g.hit(item, who)
    f = FixedWindowRateLimiter(c)
    zero = limits.RateLimitItemPerSecond(0)
    assert not f.hit(zero, who) and not f.test(zero, who)
    assert f.get_window_stats(zero, who).remaining == 0
    year = parse("1/year")  # limits' year is 360 days; sent as seconds
    assert f.hit(year, who) and not f.hit(year, who)
    assert 0 < c.pttl(f"LIMITS:{year.key_for(who)}") <= 360 * 86400 * 1000
    c.close()


def test_async_uri_storage(server: Server) -> None:
    from redis_ratelimit.aio.strategies import FixedWindowRateLimiter

    async def go() -> List[bool]:
        lim = FixedWindowRateLimiter("async+" + server.url)
        item = parse("3/minute")
        who = uuid.uuid4().hex
        res = [await lim.hit(item, who) for _ in range(4)]
        await lim.client.aclose()
        return res

    assert asyncio.run(go()) == [True, True, True, False]
