"""The limits storage (``ratelimit://``): limits' own strategy classes, as
Flask-Limiter and SlowAPI build them, decide through one RL.* command each
on the module. (limits' own test suite runs against it too:
clients/python/limits-suite/run.sh, part of `make test`.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Dict, List

import limits
import pytest
import redis
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES as LIMITS_STRATEGIES

import redis_ratelimit.limits_storage  # noqa: F401  (the one import an app adds)
from conftest import Server
from redis_ratelimit import _storage_core as core
from redis_ratelimit.aio.limits_storage import AsyncRateLimitStorage
from redis_ratelimit.limits_storage import RateLimitStorage, redis_url


def calls(c: redis.Redis) -> Dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT."""
    stats = c.info("commandstats")
    return {k[len("cmdstat_"):]: int(v["calls"]) for k, v in stats.items()}


def test_uris_map_to_redis_py_urls() -> None:
    assert redis_url("ratelimit://h:1/2") == "redis://h:1/2"
    assert redis_url("ratelimits://:pw@h:1") == "rediss://:pw@h:1"
    assert redis_url("ratelimit+unix:///tmp/s.sock") == "unix:///tmp/s.sock"
    assert redis_url("async+ratelimit://h") == "redis://h"
    with pytest.raises(ValueError):
        redis_url("redis://h")


def test_keys_give_back_their_limit() -> None:
    assert core.key_limit(parse("10/second").key_for("a", "b")) == "10/1s"
    assert core.key_limit(parse("5 per 2 minutes").key_for("x/y")) == "5/120s"
    assert core.key_limit(parse("1/year").key_for()) == f"1/{360 * 86400}s"  # limits' year
    assert core.key_limit(parse("3/hour").key_for(), expiry=60) == "3/60s"
    assert core.key_limit(limits.RateLimitItemPerSecond(0).key_for()) is None
    for bad in ("nope", "a/b/c/fortnight", "LIMITER/x/1/1/parsec"):
        with pytest.raises(ValueError):
            core.key_limit(bad)


@pytest.mark.parametrize("strategy", sorted(LIMITS_STRATEGIES))
def test_every_limits_strategy_decides_with_one_rl_hit(server: Server, r: redis.Redis, strategy: str) -> None:
    storage = storage_from_string(f"ratelimit://{server.host}:{server.port}/0")
    assert isinstance(storage, RateLimitStorage)
    assert storage.check()
    limiter = LIMITS_STRATEGIES[strategy](storage)
    item = parse("5/minute")
    who = uuid.uuid4().hex
    r.config_resetstat()
    results = [limiter.hit(item, who) for _ in range(7)]
    assert results == [True] * 5 + [False] * 2
    used = calls(r)
    assert used.get("rl.hit") == 7, used
    # Nothing but RL.HIT ran: no script, no INCR, no read.
    assert set(used) - {"rl.hit", "config|resetstat"} == set(), used
    key = f"RATELIMIT:{item.key_for(who)}"
    assert r.type(key) == b"string" and 0 < r.pttl(key) <= 120_000
    stats = r.execute_command("RL.STATS", key, "5/60s", "STRATEGY", strategy)
    assert core.used_and_reset(stats)[0] == 5  # the module holds the usage
    assert not limiter.test(item, who)
    ws = limiter.get_window_stats(item, who)
    assert ws.remaining == 0 and time.time() < ws.reset_time <= time.time() + 120
    limiter.clear(item, who)
    assert not r.exists(key)
    assert limiter.test(item, who) and limiter.get_window_stats(item, who).remaining == 5


def test_cost_and_denied_hits(server: Server, r: redis.Redis) -> None:
    storage = RateLimitStorage(f"ratelimit://{server.host}:{server.port}")
    fixed = LIMITS_STRATEGIES["fixed-window"](storage)
    item = parse("10/minute")
    who = uuid.uuid4().hex
    assert not fixed.hit(item, who, cost=11)  # never fits
    assert fixed.hit(item, who, cost=6)
    assert not fixed.hit(item, who, cost=5)  # denied, not counted (limits counts it)
    assert fixed.hit(item, who, cost=4)
    assert fixed.get_window_stats(item, who).remaining == 0
    # incr reports what limits compares: above the amount when denied.
    assert storage.incr(item.key_for(who), 60, amount=1) == 11
    assert storage.get(item.key_for(who)) == 10


def test_storage_options_and_prefix(server: Server, r: redis.Redis) -> None:
    storage = storage_from_string(
        f"ratelimit://{server.host}:{server.port}/0", key_prefix="app", socket_timeout=5
    )
    limiter = LIMITS_STRATEGIES["moving-window"](storage)
    who = uuid.uuid4().hex
    assert limiter.hit(parse("1/hour"), who)
    assert r.exists(f"app:{parse('1/hour').key_for(who)}")
    assert storage.reset() >= 1
    assert not r.keys("app:*")


def test_async_storage(server: Server) -> None:
    from limits.aio.strategies import STRATEGIES as AIO_STRATEGIES

    async def go() -> List[List[bool]]:
        storage = storage_from_string(f"async+ratelimit://{server.host}:{server.port}")
        assert isinstance(storage, AsyncRateLimitStorage)
        assert await storage.check()
        out = []
        for name in sorted(AIO_STRATEGIES):
            limiter = AIO_STRATEGIES[name](storage)
            item = parse("3/minute")
            who = uuid.uuid4().hex
            out.append([await limiter.hit(item, who) for _ in range(4)])
            assert (await limiter.get_window_stats(item, who)).remaining == 0
        await storage.storage.aclose()
        return out

    assert asyncio.run(go()) == [[True, True, True, False]] * 3


def test_only_redis_py_async_is_accepted(server: Server) -> None:
    with pytest.raises(ValueError, match="redis-py"):
        storage_from_string(f"async+ratelimit://{server.host}:{server.port}", implementation="coredis")


def test_dropin_refuses_a_client_that_is_not_redis_py_at_construction(server: Server) -> None:
    from limits.aio.storage import RedisStorage as AioRedisStorage

    from redis_ratelimit.aio.strategies import FixedWindowRateLimiter as AioFixed
    from redis_ratelimit.strategies import FixedWindowRateLimiter

    coredis_storage: Any = AioRedisStorage(f"async+redis://{server.host}:{server.port}")  # limits' default: coredis
    with pytest.raises(TypeError, match="coredis unless given implementation='redispy'"):
        AioFixed(coredis_storage)
    with pytest.raises(TypeError, match="redis-py asyncio client"):
        AioFixed(redis.Redis(host=server.host, port=server.port))  # sync client for asyncio
    with pytest.raises(TypeError, match="redis-py client"):
        FixedWindowRateLimiter(object())


def test_reset_deletes_only_the_prefix_taken_literally(server: Server, r: redis.Redis) -> None:
    r.set("user:1:session", "precious")
    r.set("app1:x", "keep")
    for prefix in ("", "app[1]", "a*"):
        storage = storage_from_string(f"ratelimit://{server.host}:{server.port}", key_prefix=prefix)
        LIMITS_STRATEGIES["fixed-window"](storage).hit(parse("1/minute"), "ip")
        assert r.exists(f"{prefix}:{parse('1/minute').key_for('ip')}")  # limits' layout: "<prefix>:<key>"
        assert storage.reset() == 1, prefix
    assert r.get("user:1:session") == b"precious" and r.get("app1:x") == b"keep"


def test_a_cost_past_any_limit_is_denied_not_an_error(server: Server) -> None:
    from redis_ratelimit.strategies import FixedWindowRateLimiter as DropIn

    storage = storage_from_string(f"RATELIMIT://{server.host}:{server.port}")  # scheme case as limits allows
    item = parse("10/minute")
    for limiter in [LIMITS_STRATEGIES[s](storage) for s in sorted(LIMITS_STRATEGIES)] + [DropIn(storage)]:
        who = uuid.uuid4().hex
        assert limiter.hit(item, who, cost=2**32) is False
        assert limiter.hit(item, who) is True
    assert DropIn(storage).test(item, "x", cost=2**40) is False


def test_dropin_storage_arguments(server: Server) -> None:
    from limits.errors import StorageError
    from limits.storage import MemoryStorage, RedisStorage

    from redis_ratelimit.strategies import FixedWindowRateLimiter as DropIn
    from redis_ratelimit.strategies import GCRARateLimiter

    item = parse("2/minute")
    assert DropIn(f"ratelimit://{server.host}:{server.port}").hit(item, uuid.uuid4().hex)
    for bad in ("memory://", "redis+sentinel://h:1/m", MemoryStorage()):
        with pytest.raises(TypeError):
            DropIn(bad)
    # limits' wrap_exceptions is honoured, as by limits' own strategies.
    wrapped = DropIn(RedisStorage("redis://127.0.0.1:1", wrap_exceptions=True))
    with pytest.raises(StorageError):
        wrapped.hit(item, "k")
    with pytest.raises(redis.ConnectionError):
        DropIn(RedisStorage("redis://127.0.0.1:1")).hit(item, "k")
    for burst in (0, -1, "x", 2**40, True):
        with pytest.raises(ValueError):
            GCRARateLimiter(f"redis://{server.host}:{server.port}", burst=burst)  # type: ignore[arg-type]


def test_client_parser_takes_any_number_of_digits() -> None:
    from redis_ratelimit._grammar import parse_limits

    assert [(lim.amount, lim.window_ms) for lim in parse_limits("0" * 4400 + "1/second")] == [(1, 1000)]
    with pytest.raises(ValueError):
        parse_limits("9" * 5000 + "/second")
