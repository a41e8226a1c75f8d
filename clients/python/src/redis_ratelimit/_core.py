"""The limiter base shared by the sync and asyncio clients, and how a
missing module is recognised. Nothing here does I/O."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

from ._config import (
    Duration,
    OnError,
    Penalty,
    _Config,
    _LeaseConfig,
    check_token,
    logger,
    new_token,
    renew_interval,
)
from ._results import LeaseResult, Token


class ModuleNotLoadedError(RuntimeError):
    """The Redis server answered ``unknown command 'RL.HIT'``: the
    redis-ratelimit module is not loaded there."""


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
        penalty: Optional[Penalty] = None,
        on_error: OnError = "raise",
        error_retry_after: float = 1.0,
    ) -> None:
        self.client = client
        self._cfg = _Config(limits, strategy, prefix, burst, on_error, error_retry_after, penalty)

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
    def penalty(self) -> Optional[str]:
        """The ``PENALTY`` argument sent with every hit and test (``"1h"``;
        a number or timedelta given as ``"<n>ms"``), or None."""
        return self._cfg.penalty

    @property
    def penalty_ms(self) -> Optional[int]:
        """The penalty in ms, or None."""
        return self._cfg.penalty_ms

    @property
    def on_error(self) -> OnError:
        return self._cfg.on_error

    def redis_key(self, key: str) -> str:
        """The Redis key that holds the state of ``key``."""
        return self._cfg.key(key)


class LeaseDenied(Exception):
    """A ``with limiter.lease(key):`` block could not start: the key holds
    ``max`` live leases (or Redis was unreachable with ``on_error="closed"``).

    ``result`` is the :class:`LeaseResult`; ``retry_after`` (seconds) and
    ``headers()`` (with ``Retry-After``) are the answer to give a client.
    """

    def __init__(self, key: str, result: LeaseResult) -> None:
        self.key = key
        self.result = result
        if result.error:
            why = "Redis is unreachable (on_error='closed')"
        else:
            why = f"all {result.max} slots are taken"
        super().__init__(f"lease denied at {key!r}: {why}; retry after {result.retry_after:g} s")

    @property
    def retry_after(self) -> float:
        """Seconds until a slot frees at the latest."""
        return self.result.retry_after

    def headers(self) -> Dict[str, str]:
        """The HTTP headers of the denial (``Retry-After`` and the policy)."""
        return self.result.headers()


class _ConcurrencyBase:
    """The constructor and accessors of ConcurrencyLimiter and
    AsyncConcurrencyLimiter, which add the calls (blocking or awaited)."""

    def __init__(
        self,
        client: Any,
        max: int,
        lease: Duration = "30s",
        prefix: str = "rl",
        *,
        on_error: OnError = "raise",
        error_retry_after: float = 1.0,
    ) -> None:
        self.client = client
        self._cfg = _LeaseConfig(max, lease, prefix, on_error, error_retry_after)

    @property
    def max(self) -> int:
        """The most leases a key holds at once."""
        return self._cfg.max

    @property
    def lease_duration(self) -> str:
        """The lease argument sent with every acquire (``"30s"``; a number or
        timedelta given as ``"<n>ms"``)."""
        return self._cfg.lease

    @property
    def lease_ms(self) -> int:
        """How long a lease lasts unless renewed or released, in ms."""
        return self._cfg.lease_ms

    @property
    def prefix(self) -> str:
        return self._cfg.prefix

    @property
    def on_error(self) -> OnError:
        return self._cfg.on_error

    def redis_key(self, key: str) -> str:
        """The Redis key that holds the leases of ``key``."""
        return self._cfg.key(key)


class _LeaseBase:
    """State shared by the sync and asyncio ``with limiter.lease(key)``
    objects: the key, the token, the latest result, and what a renewal's
    outcome means."""

    def __init__(self, limiter: _ConcurrencyBase, key: str, token: Optional[Token],
                 renew: Union[bool, float]) -> None:
        self.limiter = limiter
        self.key = key
        self.token: Token = new_token() if token is None else check_token(token)
        self.interval: Optional[float] = renew_interval(renew, limiter.lease_ms)
        #: the result of the acquire (then of the latest renewal); None before
        self.result: Optional[LeaseResult] = None
        #: renewals made (each an RL.ACQUIRE with the same token)
        self.renewals = 0
        #: True once a renewal found the lease gone and every slot taken
        #: (it expired before it was renewed); renewals go on trying
        self.lost = False
        #: the outcome of the release at the end (None before it ran)
        self.released: Optional[bool] = None
        self._entered = False
        self._held = False  # the first acquire granted the lease

    def _start(self) -> None:
        if self._entered:
            raise RuntimeError("a Lease is entered once; call limiter.lease() again")
        self._entered = True

    def _acquired(self, result: LeaseResult) -> None:
        self.result = result
        if not result.acquired:
            raise LeaseDenied(self.limiter.redis_key(self.key), result)
        self._held = True

    def _renewed(self, result: LeaseResult) -> None:
        self.renewals += 1
        self.result = result
        if not result.acquired and not result.error:
            self.lost = True
            logger.warning(
                "redis_ratelimit: the lease %r at %s expired before it was renewed and all %d slots "
                "are taken; renewals go on trying",
                self.token,
                self.limiter.redis_key(self.key),
                result.max,
            )

    def _renew_failed(self, exc: BaseException) -> None:
        logger.warning(
            "redis_ratelimit: renewing the lease %r at %s failed (%s: %s); retrying in %.3g s",
            self.token,
            self.limiter.redis_key(self.key),
            type(exc).__name__,
            exc,
            self.interval,
        )


def module_missing(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "unknown command" in msg and "rl." in msg


MODULE_MISSING_HINT = (
    "the Redis server does not know RL.* commands: start it with "
    "--loadmodule /path/to/libredis_ratelimit.so"
)
