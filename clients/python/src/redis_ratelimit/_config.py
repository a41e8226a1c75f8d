"""What a limiter sends (its limits, strategy, key prefix, burst) and what
it answers when Redis cannot be reached; shared by the sync and asyncio
limiters. Nothing here does I/O."""

from __future__ import annotations

import logging
import math
from typing import List, Literal, Optional, Union

from ._grammar import MAX_AMOUNT, normalize_strategy, parse_limits
from ._results import RateLimitResult

logger = logging.getLogger("redis_ratelimit")

OnError = Literal["raise", "open", "closed"]
"""What :meth:`RateLimiter.hit` / ``test`` do when Redis cannot be reached:
``"raise"`` the ``redis`` exception, fail ``"open"`` (admit) or fail
``"closed"`` (deny). Both fail modes log a warning on every failure."""

class _Config:
    """What a limiter sends; shared by the sync and asyncio limiters."""

    def __init__(
        self,
        limits: str,
        strategy: str,
        prefix: str,
        burst: Optional[int],
        on_error: OnError,
        error_retry_after: float,
    ) -> None:
        self.limits = limits
        self.policy = parse_limits(limits)
        self.strategy = normalize_strategy(strategy)
        if burst is not None:
            if self.strategy != "gcra":
                raise ValueError("burst= is only valid with strategy='gcra'")
            if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_AMOUNT:
                raise ValueError(f"burst must be an integer from 1 to {MAX_AMOUNT}")
        self.burst = burst
        if on_error not in ("raise", "open", "closed"):
            raise ValueError("on_error must be 'raise', 'open' or 'closed'")
        self.on_error: OnError = on_error
        self.error_retry_after_ms = max(0, int(math.ceil(error_retry_after * 1000)))
        self.prefix = prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}" if self.prefix else key

    def args(self, cmd: str, key: str, cost: Optional[int]) -> List[Union[str, int]]:
        a: List[Union[str, int]] = [cmd, self.key(key), self.limits, "STRATEGY", self.strategy]
        if cost is not None:
            if isinstance(cost, bool) or not isinstance(cost, int) or not 0 <= cost <= MAX_AMOUNT:
                raise ValueError(f"cost must be an integer from 0 to {MAX_AMOUNT}")
            if cost != 1:
                a += ["COST", cost]
        if self.burst is not None:
            a += ["BURST", self.burst]
        return a

    def clear_args(self, key: str) -> List[Union[str, int]]:
        return ["RL.CLEAR", self.key(key), self.limits, "STRATEGY", self.strategy]

    def fallback(self, cmd: str, key: str, exc: BaseException) -> RateLimitResult:
        """The result when Redis is unreachable and on_error is open/closed."""
        first = self.policy[0]
        allowed = self.on_error == "open"
        logger.warning(
            "redis_ratelimit: %s %s failed (%s: %s); failing %s: request %s",
            cmd,
            self.key(key),
            type(exc).__name__,
            exc,
            self.on_error,
            "admitted" if allowed else "denied",
        )
        return RateLimitResult(
            allowed=allowed,
            limit=first.amount if self.burst is None else self.burst,
            remaining=0,
            reset_after_ms=0,
            retry_after_ms=0 if allowed else self.error_retry_after_ms,
            policy=self.policy,
            strategy=self.strategy,
            error=True,
        )
