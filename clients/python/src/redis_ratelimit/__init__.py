"""Python client of the redis-ratelimit Redis module.

>>> import redis
>>> from redis_ratelimit import RateLimiter
>>> limiter = RateLimiter(redis.Redis(), "10/s;1000/day", strategy="moving-window")
>>> r = limiter.hit("user:42")          # doctest: +SKIP
>>> r.allowed, r.remaining, r.retry_after, r.headers()  # doctest: +SKIP
"""

from ._async import AsyncRateLimiter
from ._config import OnError, Penalty
from ._core import ModuleNotLoadedError
from ._grammar import Limit, parse_limits
from ._results import LimitStats, RateLimitResult
from ._sync import RateLimiter

__version__ = "0.1.0"

__all__ = [
    "RateLimiter",
    "AsyncRateLimiter",
    "RateLimitResult",
    "LimitStats",
    "Limit",
    "ModuleNotLoadedError",
    "OnError",
    "Penalty",
    "parse_limits",
    "__version__",
]
