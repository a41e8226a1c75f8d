"""A ``limits`` storage backed by the module: Flask-Limiter, SlowAPI and any
``limits`` user switch with a storage URI.

Importing this module registers the schemes with ``limits``::

    import redis_ratelimit.limits_storage  # noqa: F401  (registers ratelimit://)

    limiter = Limiter(get_remote_address, app=app, storage_uri="ratelimit://localhost:6379")

``ratelimit://host:port/db``, ``ratelimits://`` (TLS) and
``ratelimit+unix:///path/to.sock`` are redis-py connections (the rest of the
URI and the storage options go to ``redis.Redis.from_url``, as with limits'
``redis://``); ``async+ratelimit://`` and the others are the asyncio
variants (:mod:`redis_ratelimit.aio.limits_storage`, registered by the same
import). Each strategy call of limits is one RL.* command (the moving
window's statistics two reads): see the package README for the mapping and
the differences.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple, Type, Union

import redis
from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage
from redis.exceptions import ResponseError

from . import _storage_core as core
from ._compat import check_module

__all__ = ["RateLimitStorage", "DEFAULT_PREFIX", "SCHEMES", "redis_url"]

DEFAULT_PREFIX = "RATELIMIT"
"""Not limits' ``LIMITS``: keys that limits' own scripts wrote there hold
other values (the module answers WRONGTYPE for them), so a switch starts
with fresh keys."""

SCHEMES = ["ratelimit", "ratelimits", "ratelimit+unix"]


def redis_url(uri: str) -> str:
    """The redis-py URL of a ``[async+]ratelimit[s|+unix]://`` URI."""
    if uri[:6].lower() == "async+":
        uri = uri[len("async+"):]
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    mapping = {"ratelimit": "redis", "ratelimits": "rediss", "ratelimit+unix": "unix"}
    if not sep or scheme not in mapping:
        raise ValueError(f"not a ratelimit:// URI: {uri!r}")
    return f"{mapping[scheme]}://{rest}"


class RateLimitStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """limits storage whose every decision is an RL.HIT on the server."""

    STORAGE_SCHEME = SCHEMES

    def __init__(
        self,
        uri: str,
        key_prefix: str = DEFAULT_PREFIX,
        wrap_exceptions: bool = False,
        connection_pool: Optional[redis.ConnectionPool] = None,
        **options: Union[float, str, bool],
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.key_prefix = key_prefix
        if connection_pool is not None:
            self.storage: redis.Redis = redis.Redis(connection_pool=connection_pool, **options)  # type: ignore[arg-type]
        else:
            self.storage = redis.Redis.from_url(redis_url(uri), **options)

    @property
    def base_exceptions(self) -> Union[Type[Exception], Tuple[Type[Exception], ...]]:
        return redis.RedisError

    def _key(self, key: str) -> str:
        # As limits' RedisStorage: always "<prefix>:<key>", even for "".
        return f"{self.key_prefix}:{key}"

    def _call(self, *args: Union[str, int]) -> Any:
        try:
            return self.storage.execute_command(*args)  # type: ignore[no-untyped-call]
        except ResponseError as e:
            check_module(e)
            raise

    # -- fixed window (limits' FixedWindowRateLimiter) ----------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        text = core.key_limit(key, expiry)
        if text is None or amount > core.MAX_COST:
            return amount + 1  # an amount of 0 admits nothing; nor does such a cost
        reply = self._call(*core.hit_args("RL.HIT", self._key(key), text, core.FIXED, amount))
        return core.incr_count(reply, amount)

    def get(self, key: str) -> int:
        text = core.key_limit(key)
        if text is None:
            return 0
        used, _, _ = core.used_and_reset(self._call(*core.stats_args(self._key(key), text, core.FIXED)))
        return used

    def get_expiry(self, key: str) -> float:
        text = core.key_limit(key)
        if text is None:
            return time.time()
        _, reset_in, _ = core.used_and_reset(self._call(*core.stats_args(self._key(key), text, core.FIXED)))
        return time.time() + reset_in

    # -- moving window ------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        text = core.limit_text(limit, expiry)
        if text is None or amount > core.MAX_COST:
            return False
        return core.admitted(self._call(*core.hit_args("RL.HIT", self._key(key), text, core.MOVING, amount)))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> Tuple[float, int]:
        text = core.limit_text(limit, expiry)
        if text is None:
            return time.time(), 0
        stats, probe = self._stats_and_probe(key, text, core.MOVING)
        used = core.used_and_reset(stats)[0]
        if not used:
            return time.time(), 0
        # limits reads start + expiry as the time the oldest hit leaves.
        return time.time() + core.next_free_in(stats, core.MOVING, expiry, probe) - expiry, used

    def _stats_and_probe(self, key: str, text: str, strategy: str) -> Tuple[Any, Any]:
        """RL.STATS and, where :func:`core.probe_cost` asks for it, one RL.TEST."""
        stats = self._call(*core.stats_args(self._key(key), text, strategy))
        cost = core.probe_cost(stats, strategy)
        probe = None if cost is None else self._call(*core.hit_args("RL.TEST", self._key(key), text, strategy, cost))
        return stats, probe

    # -- sliding window counter --------------------------------------------

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        text = core.limit_text(limit, expiry)
        if text is None or amount > core.MAX_COST:
            return False
        return core.admitted(self._call(*core.hit_args("RL.HIT", self._key(key), text, core.SLIDING, amount)))

    def get_sliding_window(self, key: str, expiry: int) -> Tuple[float, float, int, float]:  # type: ignore[override]  # a float previous count, see core.limits_sliding_window
        text = core.key_limit(key, expiry)
        if text is None:
            return 0, 0.0, 0, 0.0
        # The module's figures, in a form limits' arithmetic gives back
        # (see core.limits_sliding_window).
        stats, probe = self._stats_and_probe(key, text, core.SLIDING)
        return core.limits_sliding_window(stats, expiry, probe)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.clear(key)

    # -- the rest -----------------------------------------------------------

    def clear(self, key: str) -> None:
        self._call("RL.CLEAR", self._key(key))

    def check(self) -> bool:
        try:
            return bool(self.storage.ping())
        except Exception:  # noqa: BLE001 - limits' contract: False when unhealthy
            return False

    def reset(self) -> Optional[int]:
        """Deletes every key under the prefix, ``<prefix>:*`` with the
        prefix matched literally (SCAN + UNLINK in batches)."""
        n = 0
        batch = []
        for k in self.storage.scan_iter(match=core.glob_escape(self.key_prefix) + ":*", count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                n += int(self.storage.unlink(*batch))
                batch = []
        if batch:
            n += int(self.storage.unlink(*batch))
        return n


# One import registers the asyncio schemes too.
from .aio import limits_storage as _aio  # noqa: E402,F401
