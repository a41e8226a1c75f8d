"""The synchronous client on redis-py."""

from __future__ import annotations

from typing import Any, List

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._core import (
    MODULE_MISSING_HINT,
    ModuleNotLoadedError,
    _LimiterBase,
    module_missing,
)
from ._results import (
    LimitStats,
    RateLimitResult,
    decode_result,
    decode_stats,
)

__all__ = ["RateLimiter"]

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class RateLimiter(_LimiterBase):
    """Rate limits kept by the redis-ratelimit module, one round trip a call.

    ``RateLimiter(client, "10/s;1000/day", strategy="moving-window", prefix="rl")``

    - ``client``: a ``redis.Redis`` (RESP2 or RESP3).
    - ``limits``: one or more limits, ``;``, ``,`` or ``|`` separated, in the
      grammar of the module (``10/s``, ``5 per 2 minutes``, ``20/500ms``...);
      all are charged together, all or nothing.
    - ``strategy``: ``fixed-window`` (default), ``moving-window``,
      ``sliding-window-counter`` or ``gcra`` (with ``burst=``).
    - ``prefix``: the Redis key is ``f"{prefix}:{key}"`` (just ``key`` if empty).
    - ``penalty``: lock the key for that long once a hit is denied for
      usage (``PENALTY``; ``"1h"``, ``"15m"``, ``"500ms"``, a number of
      seconds or a ``timedelta``). While locked, every hit and test at the
      key is denied with ``retry_after`` at least the time left; sent with
      ``hit`` and ``test`` only.
    - ``on_error``: when Redis is unreachable, ``"raise"`` (default), fail
      ``"open"`` (admit) or ``"closed"`` (deny, ``Retry-After`` =
      ``error_retry_after`` seconds). Failing open or closed logs a warning on
      logger ``redis_ratelimit`` each time.
    """

    client: "redis.Redis"

    def _call(self, args: List[Any]) -> Any:
        try:
            return self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        except ResponseError as e:
            if module_missing(e):
                raise ModuleNotLoadedError(MODULE_MISSING_HINT) from e
            raise

    def _decide(self, cmd: str, key: str, cost: int) -> RateLimitResult:
        args = self._cfg.args(cmd, key, cost)
        try:
            reply = self._call(args)
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.fallback(cmd, key, e)
        return decode_result(
            reply, self._cfg.policy, self._cfg.strategy, self._cfg.locks_when_denied(cmd, cost)
        )

    def hit(self, key: str, cost: int = 1) -> RateLimitResult:
        """Consume ``cost`` from every limit at ``key`` if all admit it (RL.HIT)."""
        return self._decide("RL.HIT", key, cost)

    def test(self, key: str, cost: int = 1) -> RateLimitResult:
        """What :meth:`hit` would answer now, changing nothing (RL.TEST)."""
        return self._decide("RL.TEST", key, cost)

    def refund(self, key: str, cost: int = 1) -> RateLimitResult:
        """Give ``cost`` (1 and up) back to every limit at ``key``, for a hit
        that should not count after all (RL.REFUND). Usage never goes below
        zero, and a penalty in force stays. Answers what ``test(key, cost=0)``
        answers right after. Refund only a hit that was admitted: a denied
        hit consumed nothing, and refunding it gives back an earlier one."""
        return self._decide("RL.REFUND", key, cost)

    def stats(self, key: str) -> List[LimitStats]:
        """State of each limit, in the order written (RL.STATS)."""
        args = self._cfg.args("RL.STATS", key, None)
        return decode_stats(self._call(args))

    def clear(self, key: str) -> int:
        """Forget this limiter's usage at ``key`` (RL.CLEAR key limits
        STRATEGY s); returns how many limit states held usage."""
        return int(self._call(self._cfg.clear_args(key)))
