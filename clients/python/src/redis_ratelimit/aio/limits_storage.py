"""The asyncio ``limits`` storage backed by the module: ``async+ratelimit://``
(and ``async+ratelimits://``, ``async+ratelimit+unix://``), redis-py's
asyncio client underneath. Registered by ``import
redis_ratelimit.limits_storage`` (or by importing this module).
"""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple, Type, Union

import redis
import redis.asyncio
from limits.aio.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage
from redis.exceptions import ResponseError

from .. import _storage_core as core
from .._compat import check_module
from ..limits_storage import DEFAULT_PREFIX, SCHEMES, redis_url

__all__ = ["AsyncRateLimitStorage", "ASYNC_SCHEMES"]

ASYNC_SCHEMES = [f"async+{s}" for s in SCHEMES]


class AsyncRateLimitStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """The asyncio twin of :class:`redis_ratelimit.limits_storage.RateLimitStorage`."""

    STORAGE_SCHEME = ASYNC_SCHEMES

    def __init__(
        self,
        uri: str,
        key_prefix: str = DEFAULT_PREFIX,
        wrap_exceptions: bool = False,
        connection_pool: Optional[redis.asyncio.ConnectionPool] = None,
        implementation: str = "redispy",
        **options: Union[float, str, bool],
    ) -> None:
        # limits' asyncio Redis storage takes an implementation; this one is
        # redis-py only (the option is accepted so that code passing it works).
        if implementation != "redispy":
            raise ValueError(
                f"async+ratelimit:// uses redis-py's asyncio client, not {implementation!r}"
            )
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.key_prefix = key_prefix
        if connection_pool is not None:
            self.storage: redis.asyncio.Redis = redis.asyncio.Redis(connection_pool=connection_pool, **options)  # type: ignore[arg-type]
        else:
            self.storage = redis.asyncio.Redis.from_url(redis_url(uri), **options)  # type: ignore[arg-type]

    @property
    def base_exceptions(self) -> Union[Type[Exception], Tuple[Type[Exception], ...]]:
        return redis.RedisError

    def _key(self, key: str) -> str:
        # As limits' RedisStorage: always "<prefix>:<key>", even for "".
        return f"{self.key_prefix}:{key}"

    async def _call(self, *args: Union[str, int]) -> Any:
        try:
            return await self.storage.execute_command(*args)  # type: ignore[no-untyped-call]
        except ResponseError as e:
            check_module(e)
            raise

    # -- fixed window (limits' FixedWindowRateLimiter) ----------------------

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        text = core.key_limit(key, expiry)
        if text is None or amount > core.MAX_COST:
            return amount + 1  # an amount of 0 admits nothing; nor does such a cost
        reply = await self._call(*core.hit_args("RL.HIT", self._key(key), text, core.FIXED, amount))
        return core.incr_count(reply, amount)

    async def get(self, key: str) -> int:
        text = core.key_limit(key)
        if text is None:
            return 0
        used, _, _ = core.used_and_reset(await self._call(*core.stats_args(self._key(key), text, core.FIXED)))
        return used

    async def get_expiry(self, key: str) -> float:
        text = core.key_limit(key)
        if text is None:
            return time.time()
        _, reset_in, _ = core.used_and_reset(await self._call(*core.stats_args(self._key(key), text, core.FIXED)))
        return time.time() + reset_in

    # -- moving window ------------------------------------------------------

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        text = core.limit_text(limit, expiry)
        if text is None or amount > core.MAX_COST:
            return False
        return core.admitted(await self._call(*core.hit_args("RL.HIT", self._key(key), text, core.MOVING, amount)))

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> Tuple[float, int]:
        text = core.limit_text(limit, expiry)
        if text is None:
            return time.time(), 0
        stats, probe = await self._stats_and_probe(key, text, core.MOVING)
        used = core.used_and_reset(stats)[0]
        if not used:
            return time.time(), 0
        # limits reads start + expiry as the time the oldest hit leaves.
        return time.time() + core.next_free_in(stats, core.MOVING, expiry, probe) - expiry, used

    async def _stats_and_probe(self, key: str, text: str, strategy: str) -> Tuple[Any, Any]:
        """RL.STATS and, where :func:`core.probe_cost` asks for it, one RL.TEST."""
        stats = await self._call(*core.stats_args(self._key(key), text, strategy))
        cost = core.probe_cost(stats, strategy)
        probe = None if cost is None else await self._call(*core.hit_args("RL.TEST", self._key(key), text, strategy, cost))
        return stats, probe

    # -- sliding window counter --------------------------------------------

    async def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        text = core.limit_text(limit, expiry)
        if text is None or amount > core.MAX_COST:
            return False
        return core.admitted(await self._call(*core.hit_args("RL.HIT", self._key(key), text, core.SLIDING, amount)))

    async def get_sliding_window(self, key: str, expiry: int) -> Tuple[float, float, int, float]:  # type: ignore[override]  # a float previous count, see core.limits_sliding_window
        text = core.key_limit(key, expiry)
        if text is None:
            return 0, 0.0, 0, 0.0
        # The module's figures, in a form limits' arithmetic gives back
        # (see core.limits_sliding_window).
        stats, probe = await self._stats_and_probe(key, text, core.SLIDING)
        return core.limits_sliding_window(stats, expiry, probe)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self.clear(key)

    # -- the rest -----------------------------------------------------------

    async def clear(self, key: str) -> None:
        await self._call("RL.CLEAR", self._key(key))

    async def check(self) -> bool:
        try:
            return bool(await self.storage.ping())
        except Exception:  # noqa: BLE001 - limits' contract: False when unhealthy
            return False

    async def reset(self) -> Optional[int]:
        """Deletes every key under the prefix, ``<prefix>:*`` with the
        prefix matched literally (SCAN + UNLINK in batches)."""
        n = 0
        batch = []
        async for k in self.storage.scan_iter(match=self._key("*"), count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                n += int(await self.storage.unlink(*batch))
                batch = []
        if batch:
            n += int(await self.storage.unlink(*batch))
        return n
