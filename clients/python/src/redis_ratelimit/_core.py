"""Parts shared by the sync and asyncio clients: limit parsing, command
arguments, reply decoding, result objects and HTTP headers.

Nothing here does I/O.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "Limit",
    "LimitStats",
    "RateLimitResult",
    "ModuleNotLoadedError",
    "OnError",
    "parse_limits",
    "normalize_strategy",
]

logger = logging.getLogger("redis_ratelimit")

OnError = Literal["raise", "open", "closed"]
"""What :meth:`RateLimiter.hit` / ``test`` do when Redis cannot be reached:
``"raise"`` the ``redis`` exception, fail ``"open"`` (admit) or fail
``"closed"`` (deny). Both fail modes log a warning on every failure."""

MS_PER_UNIT: Dict[str, int] = {}


def _units(ms: int, *names: str, plural: Sequence[str] = ()) -> None:
    for n in names:
        MS_PER_UNIT[n] = ms
    for n in plural:
        MS_PER_UNIT[n] = ms
        MS_PER_UNIT[n + "s"] = ms


_SECOND = 1000
_DAY = 86400 * _SECOND
_units(1, "ms", plural=("msec", "millisecond"))
_units(_SECOND, "s", plural=("sec", "second"))
_units(60 * _SECOND, "m", plural=("min", "minute"))
_units(3600 * _SECOND, "h", plural=("hr", "hour"))
_units(_DAY, "d", plural=("day",))
_units(7 * _DAY, "w", plural=("week",))
_units(30 * _DAY, "mo", plural=("month",))
_units(365 * _DAY, "y", plural=("yr", "year"))

MAX_AMOUNT = 4294967295
MAX_WINDOW_MS = 10 * 365 * _DAY
MAX_LIMITS = 16

# Whitespace is Python's own \s (as in the limits library, and the module);
# digits and letters are ASCII only; `per` needs no spaces around it.
_LIMIT_RE = re.compile(r"^\s*([0-9]+)\s*(?:/|[pP][eE][rR])\s*([0-9]+)?\s*([a-zA-Z]+)\s*$")

STRATEGIES: Dict[str, str] = {
    "fixed-window": "fixed-window",
    "fixed": "fixed-window",
    "moving-window": "moving-window",
    "moving": "moving-window",
    "sliding-window-counter": "sliding-window-counter",
    "sliding": "sliding-window-counter",
    "gcra": "gcra",
    "token-bucket": "gcra",
}


class ModuleNotLoadedError(RuntimeError):
    """The Redis server answered ``unknown command 'RL.HIT'``: the
    redis-ratelimit module is not loaded there."""


@dataclass(frozen=True)
class Limit:
    """One limit of a limits string, e.g. ``10/s`` -> amount 10, window 1000 ms."""

    text: str
    amount: int
    window_ms: int

    @property
    def window(self) -> float:
        """The window in seconds."""
        return self.window_ms / 1000.0

    @property
    def name(self) -> str:
        """Name used in the ``RateLimit-Policy`` / ``RateLimit`` headers."""
        return " ".join(self.text.split())


def _bounded_int(digits: str) -> int:
    """A decimal number, or MAX_AMOUNT * 1000 for anything that large (every
    range check then fails the way the module's does)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 12 else MAX_AMOUNT * 1000


def parse_limits(text: str) -> Tuple[Limit, ...]:
    """Parse a limits string exactly as the module does (its section 1).

    Raises ``ValueError`` naming the bad part. The server stays the
    authority; this is for early errors and for the headers' windows.
    """
    if not isinstance(text, str):
        raise TypeError(f"limits must be a str, not {type(text).__name__}")
    parts = re.split(r"[;,|]", text)
    if len(parts) > MAX_LIMITS:
        raise ValueError(f"invalid limit {text!r}: more than {MAX_LIMITS} limits")
    out: List[Limit] = []
    seen: Dict[int, str] = {}
    for part in parts:
        if not part.strip():
            raise ValueError(f"invalid limit {part!r}: empty limit")
        m = _LIMIT_RE.match(part)
        if not m:
            raise ValueError(
                f"invalid limit {part!r}: expected '<amount>/<unit>', "
                "'<amount>/<multiple><unit>' or '<amount> per <multiple> <unit>'"
            )
        # Leading zeros are allowed (as in the module); past 10 significant
        # digits a number is out of range anyway (and Python's int() refuses
        # strings of over 4300 digits).
        amount = _bounded_int(m.group(1))
        multiple = _bounded_int(m.group(2)) if m.group(2) is not None else 1
        unit = m.group(3).lower()
        if unit not in MS_PER_UNIT:
            raise ValueError(f"invalid limit {part!r}: unknown unit {m.group(3)!r}")
        if not 1 <= amount <= MAX_AMOUNT:
            raise ValueError(f"invalid limit {part!r}: amount must be 1 to {MAX_AMOUNT}")
        if multiple < 1:
            raise ValueError(f"invalid limit {part!r}: multiple must be at least 1")
        window_ms = multiple * MS_PER_UNIT[unit]
        if window_ms > MAX_WINDOW_MS:
            raise ValueError(f"invalid limit {part!r}: window longer than 10 years")
        if window_ms in seen:
            raise ValueError(
                f"invalid limit {part!r}: same window as {seen[window_ms]!r}"
            )
        seen[window_ms] = part
        out.append(Limit(part.strip(), amount, window_ms))
    return tuple(out)


def normalize_strategy(strategy: str) -> str:
    try:
        return STRATEGIES[strategy.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown strategy {strategy!r}; expected one of "
            "fixed-window, moving-window, sliding-window-counter, gcra"
        ) from None


def _ceil_s(ms: int) -> int:
    """Milliseconds to whole seconds, rounded up (0 stays 0)."""
    return -(-ms // 1000) if ms > 0 else 0


@dataclass(frozen=True)
class RateLimitResult:
    """The reply of RL.HIT / RL.TEST, plus what the HTTP headers need.

    ``bool(result)`` is ``allowed``.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after_ms: int
    retry_after_ms: int
    policy: Tuple[Limit, ...] = ()
    strategy: str = "fixed-window"
    #: True when Redis could not be reached and the limiter failed open or
    #: closed instead of asking the module; the numbers are then made up.
    error: bool = False
    #: client clock (time.time()) when the result was made, for X-RateLimit-Reset
    at: float = field(default_factory=time.time, compare=False)

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def reset_after(self) -> float:
        """Seconds until the binding limit is fully replenished."""
        return self.reset_after_ms / 1000.0

    @property
    def retry_after(self) -> float:
        """Seconds until this same hit would be admitted: 0.0 if admitted,
        ``math.inf`` if it never can be (cost larger than the limit)."""
        if self.retry_after_ms < 0:
            return math.inf
        return self.retry_after_ms / 1000.0

    @property
    def reset_at(self) -> float:
        """Epoch seconds (client clock) at which the binding limit is full again."""
        return self.at + self.reset_after

    @property
    def binding(self) -> Optional[Limit]:
        """The limit the reply describes (the module names it by its amount;
        among limits with that amount, the first whose window can hold the
        reported reset time). For GCRA the reply's limit is the burst."""
        if not self.policy:
            return None
        cands = [lim for lim in self.policy if lim.amount == self.limit]
        if not cands and self.strategy == "gcra":  # limit is BURST, not L
            cands = list(self.policy)
        if not cands:
            return None
        for lim in cands:
            if self.strategy == "gcra":  # TAT - now <= B * T = B * W / L
                span = self.limit * lim.window_ms / lim.amount + 1
            elif self.strategy == "sliding-window-counter":
                span = 2 * lim.window_ms
            else:
                span = lim.window_ms
            if self.reset_after_ms <= span:
                return lim
        return cands[0]

    def headers(self, *, reset: Literal["epoch", "delta"] = "epoch") -> Dict[str, str]:
        """HTTP response headers for this result.

        - ``RateLimit-Policy`` and ``RateLimit`` as in the IETF draft
          (draft-ietf-httpapi-ratelimit-headers-08 and later):
          ``"10/s";q=10;w=1`` and ``"10/s";r=3;t=1``;
        - ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``,
          ``X-RateLimit-Reset`` (epoch seconds like Flask-Limiter and SlowAPI,
          or with ``reset="delta"`` seconds from now);
        - ``Retry-After`` (whole seconds, rounded up) on a denied hit that can
          ever pass.

        A result made while Redis was unreachable carries only
        ``Retry-After`` when it denies.
        """
        h: Dict[str, str] = {}
        if self.error:
            if not self.allowed and self.retry_after_ms > 0:
                h["Retry-After"] = str(max(1, _ceil_s(self.retry_after_ms)))
            return h
        reset_s = _ceil_s(self.reset_after_ms)
        binding = self.binding
        if self.policy:
            h["RateLimit-Policy"] = ", ".join(
                f'"{lim.name}";q={lim.amount};w={max(1, _ceil_s(lim.window_ms))}'
                for lim in self.policy
            )
        name = binding.name if binding is not None else "default"
        h["RateLimit"] = f'"{name}";r={self.remaining};t={reset_s}'
        h["X-RateLimit-Limit"] = str(self.limit)
        h["X-RateLimit-Remaining"] = str(self.remaining)
        if reset == "epoch":
            h["X-RateLimit-Reset"] = str(math.ceil(self.at + self.reset_after))
        else:
            h["X-RateLimit-Reset"] = str(reset_s)
        if not self.allowed and self.retry_after_ms > 0:
            h["Retry-After"] = str(_ceil_s(self.retry_after_ms))
        return h


@dataclass(frozen=True)
class LimitStats:
    """One entry of RL.STATS."""

    limit: int
    window_ms: int
    strategy: str
    remaining: int
    reset_after_ms: int
    retry_after_ms: int

    @property
    def window(self) -> float:
        return self.window_ms / 1000.0

    @property
    def reset_after(self) -> float:
        return self.reset_after_ms / 1000.0

    @property
    def retry_after(self) -> float:
        if self.retry_after_ms < 0:
            return math.inf
        return self.retry_after_ms / 1000.0


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def decode_result(reply: Any, policy: Tuple[Limit, ...], strategy: str) -> RateLimitResult:
    if not isinstance(reply, (list, tuple)) or len(reply) != 5:
        raise ValueError(f"unexpected RL.HIT reply: {reply!r}")
    a, lim, rem, reset, retry = (int(x) for x in reply)
    return RateLimitResult(
        allowed=a == 1,
        limit=lim,
        remaining=rem,
        reset_after_ms=reset,
        retry_after_ms=retry,
        policy=policy,
        strategy=strategy,
    )


def decode_stats(reply: Any) -> List[LimitStats]:
    out: List[LimitStats] = []
    for entry in reply:
        d: Mapping[Any, Any]
        if isinstance(entry, dict):
            d = {_s(k): v for k, v in entry.items()}
        else:  # RESP2: flat list of names and values
            it = iter(entry)
            d = {_s(k): v for k, v in zip(it, it)}
        out.append(
            LimitStats(
                limit=int(d["limit"]),
                window_ms=int(d["window_ms"]),
                strategy=_s(d["strategy"]),
                remaining=int(d["remaining"]),
                reset_after_ms=int(d["reset_after_ms"]),
                retry_after_ms=int(d["retry_after_ms"]),
            )
        )
    return out


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


class _LimiterBase:
    """The constructor and accessors of RateLimiter and AsyncRateLimiter,
    which add the calls (blocking or awaited) on their own client type."""

    def __init__(
        self,
        client: Any,
        limits: str,
        strategy: str = "fixed-window",
        prefix: str = "rl",
        *,
        burst: Optional[int] = None,
        on_error: OnError = "raise",
        error_retry_after: float = 1.0,
    ) -> None:
        self.client = client
        self._cfg = _Config(limits, strategy, prefix, burst, on_error, error_retry_after)

    @property
    def limits(self) -> str:
        return self._cfg.limits

    @property
    def strategy(self) -> str:
        return self._cfg.strategy

    @property
    def prefix(self) -> str:
        return self._cfg.prefix

    @property
    def burst(self) -> Optional[int]:
        return self._cfg.burst

    @property
    def on_error(self) -> OnError:
        return self._cfg.on_error

    def redis_key(self, key: str) -> str:
        """The Redis key that holds the state of ``key``."""
        return self._cfg.key(key)


def module_missing(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "unknown command" in msg and "rl." in msg


MODULE_MISSING_HINT = (
    "the Redis server does not know RL.* commands: start it with "
    "--loadmodule /path/to/libredis_ratelimit.so"
)
