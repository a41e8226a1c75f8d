"""What the module replies, decoded: a hit's result with the HTTP headers
it implies, and RL.STATS lines. Nothing here does I/O."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple, Union

from ._grammar import Limit

Token = Union[str, bytes]
"""A lease token: 1 to 128 bytes (a str is sent as UTF-8)."""


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
    #: True when this was an RL.HIT with a penalty (the limiter's
    #: ``penalty=``) that was denied and could pass some day: the key is
    #: locked (the penalty started now or was already in force) and
    #: ``retry_after`` is at least what the penalty has left. False does not
    #: prove there is none (``test()``, ``refund()``, a cost above the limit,
    #: a lock set by another limiter at the same key): ``stats()[0].penalty_ms``
    #: is the authority.
    penalized: bool = False
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
          ever pass. Under a penalty the module's ``retry_after_ms`` and
          ``reset_after_ms`` already cover the time the penalty has left, so
          ``Retry-After``, ``RateLimit``'s ``t`` and ``X-RateLimit-Reset``
          are never earlier than the end of the lock.

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
    #: ms left of the key's penalty (PENALTY), 0 when none; the same in
    #: every entry of one RL.STATS reply (0 from a module without penalties).
    penalty_ms: int = 0

    @property
    def window(self) -> float:
        return self.window_ms / 1000.0

    @property
    def penalty(self) -> float:
        """Seconds left of the key's penalty, 0.0 when none."""
        return self.penalty_ms / 1000.0

    @property
    def penalized(self) -> bool:
        """True while a penalty locks the key."""
        return self.penalty_ms > 0

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


def decode_result(
    reply: Any, policy: Tuple[Limit, ...], strategy: str, locks_when_denied: bool = False
) -> RateLimitResult:
    """The five integers of RL.HIT / RL.TEST / RL.REFUND. ``locks_when_denied``:
    the call was an RL.HIT with PENALTY and a cost above 0, so a denial that
    can pass some day means the key is under a penalty."""
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
        penalized=locks_when_denied and a != 1 and retry >= 0,
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
                penalty_ms=int(d.get("penalty_ms", 0)),
            )
        )
    return out


@dataclass(frozen=True)
class LeaseResult:
    """The reply of RL.ACQUIRE (a concurrency lease), plus the token it was
    sent with and what the HTTP headers need.

    ``bool(result)`` is ``acquired``.
    """

    acquired: bool
    #: the most leases the key holds at once (the limiter's ``max``)
    max: int
    #: slots left after this call (never negative)
    available: int
    #: ms until every live lease at the key has ended (0 when none)
    reset_after_ms: int
    #: 0 when acquired; else ms until the earliest live lease ends, at the
    #: latest (a holder that releases frees its slot sooner)
    retry_after_ms: int
    #: the token that names the lease; pass it to ``release``
    token: Token = ""
    #: True when Redis could not be reached and the limiter failed open or
    #: closed instead of asking the module; the numbers are then made up.
    error: bool = False
    #: client clock (time.time()) when the result was made
    at: float = field(default_factory=time.time, compare=False)

    def __bool__(self) -> bool:
        return self.acquired

    @property
    def reset_after(self) -> float:
        """Seconds until every live lease at the key has ended."""
        return self.reset_after_ms / 1000.0

    @property
    def retry_after(self) -> float:
        """Seconds until a slot frees at the latest (0.0 when acquired)."""
        return self.retry_after_ms / 1000.0

    def headers(self, name: str = "concurrency") -> Dict[str, str]:
        """HTTP response headers for this result:

        - ``RateLimit-Policy: "concurrency";q=<max>;qu="concurrent-requests"``
          and ``RateLimit: "concurrency";r=<available>`` (the IETF draft's
          quota unit for requests in flight; ``name`` names the policy);
        - ``Retry-After`` (whole seconds, rounded up, at least 1) when denied:
          when the earliest lease expires, the latest a slot frees.

        A result made while Redis was unreachable carries only
        ``Retry-After`` when it denies.
        """
        h: Dict[str, str] = {}
        if not self.error:
            h["RateLimit-Policy"] = f'"{name}";q={self.max};qu="concurrent-requests"'
            h["RateLimit"] = f'"{name}";r={self.available}'
        if not self.acquired and self.retry_after_ms > 0:
            h["Retry-After"] = str(max(1, _ceil_s(self.retry_after_ms)))
        return h


def decode_lease(reply: Any, token: Token) -> LeaseResult:
    """The five integers of RL.ACQUIRE."""
    if not isinstance(reply, (list, tuple)) or len(reply) != 5:
        raise ValueError(f"unexpected RL.ACQUIRE reply: {reply!r}")
    a, mx, avail, reset, retry = (int(x) for x in reply)
    return LeaseResult(
        acquired=a == 1,
        max=mx,
        available=avail,
        reset_after_ms=reset,
        retry_after_ms=retry,
        token=token,
    )


def merge_headers(*parts: Mapping[str, str]) -> Dict[str, str]:
    """Headers of several results in one dict: the list fields
    (``RateLimit-Policy``, ``RateLimit``) joined with ``", "``, the longest
    ``Retry-After``, else the first value."""
    out: Dict[str, str] = {}
    for part in parts:
        for k, v in part.items():
            if k not in out:
                out[k] = v
            elif k in ("RateLimit-Policy", "RateLimit"):
                out[k] = f"{out[k]}, {v}"
            elif k == "Retry-After":
                out[k] = str(max(int(out[k]), int(v)))
    return out
