"""The limiter base shared by the sync and asyncio clients, and how a
missing module is recognised. Nothing here does I/O."""

from __future__ import annotations

from typing import Any, Optional

from ._config import OnError, Penalty, _Config


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


def module_missing(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "unknown command" in msg and "rl." in msg


MODULE_MISSING_HINT = (
    "the Redis server does not know RL.* commands: start it with "
    "--loadmodule /path/to/libredis_ratelimit.so"
)
