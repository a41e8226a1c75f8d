"""asyncio API: ``redis_ratelimit.aio.RateLimiter`` is
:class:`redis_ratelimit.AsyncRateLimiter`, ``redis_ratelimit.aio.ConcurrencyLimiter``
is :class:`redis_ratelimit.AsyncConcurrencyLimiter`; ``redis_ratelimit.aio.strategies``
mirrors ``limits.aio.strategies``."""

from .._async import AsyncConcurrencyLimiter, AsyncLease, AsyncRateLimiter
from .._async import AsyncConcurrencyLimiter as ConcurrencyLimiter
from .._async import AsyncRateLimiter as RateLimiter

__all__ = ["AsyncRateLimiter", "RateLimiter", "AsyncConcurrencyLimiter", "ConcurrencyLimiter", "AsyncLease"]
