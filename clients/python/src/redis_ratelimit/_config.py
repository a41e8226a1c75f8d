"""What a limiter sends (its limits, strategy, key prefix, burst, penalty)
and what it answers when Redis cannot be reached; shared by the sync and asyncio
limiters. Nothing here does I/O."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import List, Literal, Optional, Tuple, Union

from ._grammar import MAX_AMOUNT, MAX_WINDOW_MS, normalize_strategy, parse_duration, parse_limits
from ._results import RateLimitResult

logger = logging.getLogger("redis_ratelimit")

OnError = Literal["raise", "open", "closed"]
"""What :meth:`RateLimiter.hit` / ``test`` do when Redis cannot be reached:
``"raise"`` the ``redis`` exception, fail ``"open"`` (admit) or fail
``"closed"`` (deny). Both fail modes log a warning on every failure."""

Penalty = Union[str, int, float, timedelta]
"""How long a breach locks the key (``PENALTY``): a string in the module's
grammar (``"1h"``, ``"15m"``, ``"500ms"``, ``"2 days"``), a number of
seconds, or a ``timedelta``; 1 ms to 10 years."""


def penalty_arg(penalty: Penalty) -> Tuple[str, int]:
    """The ``PENALTY`` argument for ``penalty`` and its length in ms.

    A string is checked against the module's grammar and sent as written; a
    number of seconds or a ``timedelta`` is rounded to the nearest ms and
    sent as ``"<n>ms"``. Raises ``ValueError`` (``TypeError`` for another
    type)."""
    if isinstance(penalty, str):
        try:
            ms = parse_duration(penalty)
        except ValueError as e:
            raise ValueError(f"invalid penalty: {e}") from None
        return penalty.strip(), ms
    if isinstance(penalty, timedelta):
        us = penalty // timedelta(microseconds=1)
        ms = (us + 500) // 1000
    elif isinstance(penalty, (int, float)) and not isinstance(penalty, bool):
        if not math.isfinite(penalty):
            raise ValueError(f"invalid penalty {penalty!r}: must be 1 ms to 10 years")
        ms = round(penalty * 1000)
    else:
        raise TypeError(
            f"penalty must be a str ('1h'), seconds or a timedelta, not {type(penalty).__name__}"
        )
    if not 1 <= ms <= MAX_WINDOW_MS:
        raise ValueError(f"invalid penalty {penalty!r}: must be 1 ms to 10 years")
    return f"{ms}ms", ms


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
        penalty: Optional[Penalty] = None,
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
        self.penalty: Optional[str] = None
        self.penalty_ms: Optional[int] = None
        if penalty is not None:
            self.penalty, self.penalty_ms = penalty_arg(penalty)
        if on_error not in ("raise", "open", "closed"):
            raise ValueError("on_error must be 'raise', 'open' or 'closed'")
        self.on_error: OnError = on_error
        self.error_retry_after_ms = max(0, int(math.ceil(error_retry_after * 1000)))
        self.prefix = prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}" if self.prefix else key

    def args(self, cmd: str, key: str, cost: Optional[int]) -> List[Union[str, int]]:
        """RL.HIT / RL.TEST (with the penalty, if any), RL.REFUND (COST 1
        and up) or RL.STATS (``cost`` None)."""
        a: List[Union[str, int]] = [cmd, self.key(key), self.limits, "STRATEGY", self.strategy]
        if cost is not None:
            low = 1 if cmd == "RL.REFUND" else 0
            if isinstance(cost, bool) or not isinstance(cost, int) or not low <= cost <= MAX_AMOUNT:
                raise ValueError(f"cost must be an integer from {low} to {MAX_AMOUNT}")
            if cost != 1:
                a += ["COST", cost]
        if self.burst is not None:
            a += ["BURST", self.burst]
        if self.penalty is not None and cmd in ("RL.HIT", "RL.TEST"):
            a += ["PENALTY", self.penalty]
        return a

    def locks_when_denied(self, cmd: str, cost: int) -> bool:
        """Whether a denial of this call (when it could pass some day) means
        the key is under a penalty: an RL.HIT with PENALTY and a cost above 0
        is denied only because of usage, which starts a penalty, or because
        one is in force (section 11)."""
        return cmd == "RL.HIT" and self.penalty is not None and cost > 0

    def clear_args(self, key: str) -> List[Union[str, int]]:
        return ["RL.CLEAR", self.key(key), self.limits, "STRATEGY", self.strategy]

    def fallback(self, cmd: str, key: str, exc: BaseException) -> RateLimitResult:
        """The result when Redis is unreachable and on_error is open/closed."""
        first = self.policy[0]
        allowed = self.on_error == "open"
        if cmd == "RL.REFUND":
            outcome = "refund not made"
        else:
            outcome = "request admitted" if allowed else "request denied"
        logger.warning(
            "redis_ratelimit: %s %s failed (%s: %s); failing %s: %s",
            cmd,
            self.key(key),
            type(exc).__name__,
            exc,
            self.on_error,
            outcome,
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
