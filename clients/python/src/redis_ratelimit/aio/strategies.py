"""Drop-in replacements for ``limits.aio.strategies`` backed by the module.

``from limits.aio.strategies import MovingWindowRateLimiter`` becomes
``from redis_ratelimit.aio.strategies import MovingWindowRateLimiter``; the
storage may be a ``redis.asyncio.Redis``, a ``redis://`` or
``async+redis://`` URI, or a limits ``RedisStorage(...,
implementation="redispy")``. See :mod:`redis_ratelimit.strategies`.

Generated (with strategies.py) by tools/gen_strategies.py: change the
script, not this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Type

from redis.exceptions import RedisError

from .._compat import WindowStats, _StrategyBase, check_burst, item_key, window_stats

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = [
    "RateLimiter",
    "FixedWindowRateLimiter",
    "MovingWindowRateLimiter",
    "SlidingWindowCounterRateLimiter",
    "GCRARateLimiter",
    "STRATEGIES",
    "WindowStats",
]


class RateLimiter(_StrategyBase):
    """Base class with the method names and arguments of ``limits.aio.strategies.RateLimiter``."""

    _ASYNC = True

    async def _run(self, cmd: str, item: "RateLimitItem", identifiers: Any, cost: Optional[int]) -> Any:
        args = self._args(cmd, item, identifiers, cost)
        if args is None:
            return None
        try:
            return await self.client.execute_command(*args)
        except RedisError as e:
            failed = self._failed(e)
            if failed is e:
                raise
            raise failed from e

    async def hit(self, item: "RateLimitItem", *identifiers: str, cost: int = 1) -> bool:
        """Consume ``cost`` from the limit; True if it was admitted."""
        reply = await self._run("RL.HIT", item, identifiers, cost)
        return reply is not None and int(reply[0]) == 1

    async def test(self, item: "RateLimitItem", *identifiers: str, cost: int = 1) -> bool:
        """True if a hit of ``cost`` would be admitted now (nothing changes)."""
        reply = await self._run("RL.TEST", item, identifiers, cost)
        return reply is not None and int(reply[0]) == 1

    async def get_window_stats(self, item: "RateLimitItem", *identifiers: str) -> WindowStats:
        """(reset_time as epoch seconds, remaining), with limits' meaning of
        reset_time per strategy (one RL.STATS, and an RL.TEST where needed)."""
        stats = await self._run("RL.STATS", item, identifiers, None)
        cost = self._probe_cost(stats)
        probe = None if cost is None else await self._run("RL.TEST", item, identifiers, cost)
        return window_stats(item, self.STRATEGY, stats, probe)

    async def clear(self, item: "RateLimitItem", *identifiers: str) -> None:
        """Forget the usage of this limit for these identifiers."""
        try:
            await self.client.execute_command("RL.CLEAR", item_key(self.key_prefix, item, identifiers))
        except RedisError as e:
            failed = self._failed(e)
            if failed is e:
                raise
            raise failed from e


class FixedWindowRateLimiter(RateLimiter):
    STRATEGY = "fixed-window"


class MovingWindowRateLimiter(RateLimiter):
    STRATEGY = "moving-window"


class SlidingWindowCounterRateLimiter(RateLimiter):
    STRATEGY = "sliding-window-counter"


class GCRARateLimiter(RateLimiter):
    """Not in limits: GCRA (token bucket); ``burst`` defaults to the item's amount."""

    STRATEGY = "gcra"

    def __init__(self, storage: Any, *, burst: Optional[int] = None, key_prefix: Optional[str] = None) -> None:
        super().__init__(storage, key_prefix=key_prefix)
        self.burst = check_burst(burst)


STRATEGIES: Dict[str, Type[RateLimiter]] = {
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "gcra": GCRARateLimiter,
}
