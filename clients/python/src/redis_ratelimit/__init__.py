"""Python client of the redis-ratelimit Redis module.

>>> import redis
>>> from redis_ratelimit import RateLimiter
>>> limiter = RateLimiter(redis.Redis(), "10/s;1000/day", strategy="moving-window")
>>> r = limiter.hit("user:42")          # doctest: +SKIP
>>> r.allowed, r.remaining, r.retry_after, r.headers()  # doctest: +SKIP

Concurrency leases (at most ``max`` at once per key, RL.ACQUIRE / RL.RELEASE):

>>> from redis_ratelimit import ConcurrencyLimiter
>>> jobs = ConcurrencyLimiter(redis.Redis(), max=10, lease="30s")
>>> with jobs.lease("tenant:7", renew=True):  # doctest: +SKIP
...     run_the_job()
"""

from ._async import AsyncConcurrencyLimiter, AsyncLease, AsyncRateLimiter
from ._config import Duration, OnError, Penalty
from ._core import LeaseDenied, ModuleNotLoadedError
from ._grammar import Limit, parse_limits
from ._results import LeaseResult, LimitStats, RateLimitResult
from ._sync import ConcurrencyLimiter, Lease, RateLimiter

__version__ = "0.1.0"

__all__ = [
    "RateLimiter",
    "AsyncRateLimiter",
    "RateLimitResult",
    "LimitStats",
    "ConcurrencyLimiter",
    "AsyncConcurrencyLimiter",
    "Lease",
    "AsyncLease",
    "LeaseResult",
    "LeaseDenied",
    "Duration",
    "Limit",
    "ModuleNotLoadedError",
    "OnError",
    "Penalty",
    "parse_limits",
    "__version__",
]
