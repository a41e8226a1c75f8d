"""asyncio API: ``redis_ratelimit.aio.RateLimiter`` is
:class:`redis_ratelimit.AsyncRateLimiter`; ``redis_ratelimit.aio.strategies``
mirrors ``limits.aio.strategies``."""

from .._async import AsyncRateLimiter
from .._async import AsyncRateLimiter as RateLimiter

__all__ = ["AsyncRateLimiter", "RateLimiter"]
