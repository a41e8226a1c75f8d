"""What a limiter sends (its limits, strategy, key prefix, burst, penalty)
and what it answers when Redis cannot be reached; shared by the sync and asyncio
limiters. Nothing here does I/O."""

from __future__ import annotations

import logging
import math
import secrets
from datetime import timedelta
from typing import List, Literal, Optional, Tuple, Union

from ._grammar import MAX_AMOUNT, MAX_WINDOW_MS, normalize_strategy, parse_duration, parse_limits
from ._results import LeaseResult, RateLimitResult, Token

logger = logging.getLogger("redis_ratelimit")

OnError = Literal["raise", "open", "closed"]
"""What :meth:`RateLimiter.hit` / ``test`` do when Redis cannot be reached:
``"raise"`` the ``redis`` exception, fail ``"open"`` (admit) or fail
``"closed"`` (deny). Both fail modes log a warning on every failure."""

Penalty = Union[str, int, float, timedelta]
"""How long a breach locks the key (``PENALTY``): a string in the module's
grammar (``"1h"``, ``"15m"``, ``"500ms"``, ``"2 days"``), a number of
seconds, or a ``timedelta``; 1 ms to 10 years."""


Duration = Union[str, int, float, timedelta]
"""A duration the module takes (a ``PENALTY``, a lease): a string in its
grammar (``"30s"``, ``"500ms"``, ``"2 minutes"``), a number of seconds, or a
``timedelta``; 1 ms to 10 years."""


def duration_arg(value: Duration, what: str = "duration") -> Tuple[str, int]:
    """The module's argument for a duration and its length in ms.

    A string is checked against the module's grammar and sent as written; a
    number of seconds or a ``timedelta`` is rounded to the nearest ms and
    sent as ``"<n>ms"``. Raises ``ValueError`` (``TypeError`` for another
    type), naming ``what`` ("penalty", "lease")."""
    if isinstance(value, str):
        try:
            ms = parse_duration(value)
        except ValueError as e:
            raise ValueError(f"invalid {what}: {e}") from None
        return value.strip(), ms
    if isinstance(value, timedelta):
        us = value // timedelta(microseconds=1)
        ms = (us + 500) // 1000
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"invalid {what} {value!r}: must be 1 ms to 10 years")
        ms = round(value * 1000)
    else:
        raise TypeError(
            f"{what} must be a str ('1h'), seconds or a timedelta, not {type(value).__name__}"
        )
    if not 1 <= ms <= MAX_WINDOW_MS:
        raise ValueError(f"invalid {what} {value!r}: must be 1 ms to 10 years")
    return f"{ms}ms", ms


def penalty_arg(penalty: Penalty) -> Tuple[str, int]:
    """The ``PENALTY`` argument for ``penalty`` and its length in ms
    (:func:`duration_arg`)."""
    return duration_arg(penalty, "penalty")


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


# -- concurrency leases (RL.ACQUIRE / RL.RELEASE, contract section 13) -------

MAX_LEASES = 10000
MAX_TOKEN_BYTES = 128


def new_token() -> str:
    """A fresh random lease token: 32 hex digits (128 random bits)."""
    return secrets.token_hex(16)


def check_token(token: Token) -> Token:
    """``token`` if the module takes it (1 to 128 bytes; a str counts in
    UTF-8, as redis-py sends it; a bytearray or memoryview becomes bytes),
    else ``ValueError`` / ``TypeError``."""
    if isinstance(token, str):
        n = len(token.encode("utf-8"))
    elif isinstance(token, (bytes, bytearray, memoryview)):
        token = bytes(token)
        n = len(token)
    else:
        raise TypeError(f"a lease token must be str or bytes, not {type(token).__name__}")
    if not 1 <= n <= MAX_TOKEN_BYTES:
        raise ValueError(f"a lease token must be 1 to {MAX_TOKEN_BYTES} bytes, not {n}")
    return token


def renew_interval(renew: Union[bool, float], lease_ms: int) -> Optional[float]:
    """Seconds between renewals of a lease held in a ``with`` block: None
    (``renew=False``), half the lease (``renew=True``), or ``renew`` seconds
    (a number, which should be well below the lease)."""
    if renew is False:
        return None
    if renew is True:
        return max(0.001, lease_ms / 2000.0)
    if isinstance(renew, (int, float)) and math.isfinite(renew) and renew > 0:
        return float(renew)
    raise ValueError(f"renew must be True, False or a number of seconds above 0, not {renew!r}")


class _LeaseConfig:
    """What a concurrency limiter sends; shared by the sync and asyncio
    limiters."""

    def __init__(
        self,
        max: int,
        lease: Duration,
        prefix: str,
        on_error: OnError,
        error_retry_after: float,
    ) -> None:
        if isinstance(max, bool) or not isinstance(max, int) or not 1 <= max <= MAX_LEASES:
            raise ValueError(f"max must be an integer from 1 to {MAX_LEASES}, not {max!r}")
        self.max = max
        self.lease, self.lease_ms = duration_arg(lease, "lease")
        if on_error not in ("raise", "open", "closed"):
            raise ValueError("on_error must be 'raise', 'open' or 'closed'")
        self.on_error: OnError = on_error
        retry_ms = int(math.ceil(error_retry_after * 1000))
        self.error_retry_after_ms = retry_ms if retry_ms > 0 else 0
        self.prefix = prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}" if self.prefix else key

    def acquire_args(self, key: str, token: Token) -> List[Union[str, int, bytes]]:
        return ["RL.ACQUIRE", self.key(key), self.max, self.lease, token]

    def release_args(self, key: str, token: Token) -> List[Union[str, int, bytes]]:
        return ["RL.RELEASE", self.key(key), token]

    def acquire_fallback(self, key: str, token: Token, exc: BaseException) -> LeaseResult:
        """The result of an acquire when Redis is unreachable and on_error
        is open (a lease granted by nobody) or closed (denied)."""
        acquired = self.on_error == "open"
        logger.warning(
            "redis_ratelimit: RL.ACQUIRE %s failed (%s: %s); failing %s: %s",
            self.key(key),
            type(exc).__name__,
            exc,
            self.on_error,
            "lease granted" if acquired else "lease denied",
        )
        return LeaseResult(
            acquired=acquired,
            max=self.max,
            available=0,
            reset_after_ms=0,
            retry_after_ms=0 if acquired else self.error_retry_after_ms,
            token=token,
            error=True,
        )

    def release_fallback(self, key: str, exc: BaseException) -> bool:
        """A release that could not reach Redis (on_error open or closed):
        logged; the lease ends when it expires."""
        logger.warning(
            "redis_ratelimit: RL.RELEASE %s failed (%s: %s); failing %s: the lease ends when it expires",
            self.key(key),
            type(exc).__name__,
            exc,
            self.on_error,
        )
        return False
