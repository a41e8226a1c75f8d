"""Shared parts of the ``limits``-compatible strategies (sync and asyncio)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, List, NamedTuple, Optional, Tuple, Union

from ._core import MODULE_MISSING_HINT, ModuleNotLoadedError, module_missing

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = ["WindowStats", "item_args", "window_stats", "resolve_client"]

try:  # the same class as limits when limits is installed
    from limits.util import WindowStats
except ImportError:  # pragma: no cover - limits is optional

    class WindowStats(NamedTuple):  # type: ignore[no-redef]
        """Time as seconds since the epoch when the window resets, and the
        quantity remaining in it (as ``limits.WindowStats``)."""

        reset_time: float
        remaining: int


DEFAULT_KEY_PREFIX = "LIMITS"
MAX_COST = 4294967295


def item_limit(item: "RateLimitItem") -> Optional[str]:
    """The module's limit text for a limits item; None for an amount of 0
    (which limits accepts and which never admits anything)."""
    if item.amount <= 0:
        return None
    # limits reads a window of 0 seconds (`10/0 seconds`) as 1 second
    return f"{item.amount}/{max(1, item.get_expiry())}s"


def item_key(prefix: str, item: "RateLimitItem", identifiers: Tuple[Any, ...]) -> str:
    k = item.key_for(*identifiers)
    return f"{prefix}:{k}" if prefix else k


class _StrategyBase:
    """The constructor and arguments shared by the sync and asyncio
    ``RateLimiter`` of the strategies modules (which add the calls)."""

    STRATEGY: ClassVar[str] = "fixed-window"
    _ASYNC: ClassVar[bool] = False

    def __init__(self, storage: Any, *, key_prefix: Optional[str] = None) -> None:
        self.storage = storage
        self.client, prefix = resolve_client(storage, asyncio=self._ASYNC)
        self.key_prefix = prefix if key_prefix is None else key_prefix
        self.burst: Optional[int] = None
        # As limits: with a storage built with wrap_exceptions=True, Redis
        # errors come out as limits.errors.StorageError.
        self.wrap_exceptions = bool(getattr(storage, "wrap_exceptions", False))

    def _failed(self, exc: BaseException) -> BaseException:
        """The exception to raise for a Redis error ``exc`` (the module
        missing is reported as such)."""
        check_module(exc)
        if self.wrap_exceptions:
            from limits.errors import StorageError

            return StorageError(exc)  # type: ignore[arg-type]
        return exc

    def _probe_cost(self, stats: Any) -> Optional[int]:
        from . import _storage_core as core

        return None if stats is None else core.probe_cost(stats, self.STRATEGY)

    def _args(
        self, cmd: str, item: "RateLimitItem", identifiers: Any, cost: Optional[int]
    ) -> Optional[List[Union[str, int]]]:
        return item_args(cmd, self.key_prefix, self.STRATEGY, item, identifiers, cost, self.burst)


def item_args(
    cmd: str,
    prefix: str,
    strategy: str,
    item: "RateLimitItem",
    identifiers: Tuple[Any, ...],
    cost: Optional[int],
    burst: Optional[int],
) -> Optional[List[Union[str, int]]]:
    text = item_limit(item)
    if text is None or (cost is not None and cost > MAX_COST):
        return None  # admits nothing: an amount of 0, or a cost past any limit
    args: List[Union[str, int]] = [cmd, item_key(prefix, item, identifiers), text, "STRATEGY", strategy]
    if cost is not None and cost != 1:
        args += ["COST", cost]
    if burst is not None:
        args += ["BURST", burst]
    return args


def window_stats(item: "RateLimitItem", strategy: str, stats: Any, probe: Any) -> WindowStats:
    """limits' WindowStats from the RL.STATS reply (and the RL.TEST probe
    :func:`_storage_core.probe_cost` asked for): remaining, and reset_time
    with limits' meaning for the strategy."""
    from . import _storage_core as core

    now = time.time()
    if stats is None:
        return WindowStats(now, 0)
    from ._results import decode_stats

    remaining = decode_stats(stats)[0].remaining
    return WindowStats(now + core.next_free_in(stats, strategy, item.get_expiry(), probe), remaining)


def check_burst(burst: Any) -> Optional[int]:
    """A GCRA burst as the module takes it (1 to 4294967295), checked when
    the limiter is built rather than at every call."""
    if burst is None:
        return None
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_COST:
        raise ValueError(f"burst must be an integer from 1 to {MAX_COST}, not {burst!r}")
    return burst


def check_module(exc: BaseException) -> None:
    if module_missing(exc):
        raise ModuleNotLoadedError(MODULE_MISSING_HINT) from exc


def resolve_client(storage: Any, asyncio: bool) -> Tuple[Any, str]:
    """(redis client, key prefix) from what a limits user passes as storage:
    a redis-py client, a ``redis://`` URI, or a limits Redis storage."""
    if isinstance(storage, str):
        uri = storage[len("async+"):] if storage[:6].lower() == "async+" else storage
        scheme = uri.partition("://")[0].lower()
        if scheme.startswith("ratelimit"):
            from .limits_storage import redis_url

            uri = redis_url(uri)
        elif scheme not in ("redis", "rediss", "unix"):
            raise TypeError(
                f"storage must be a redis://, rediss://, unix:// or ratelimit:// URI, not {storage!r}"
            )
        if asyncio:
            import redis.asyncio

            return redis.asyncio.Redis.from_url(uri), DEFAULT_KEY_PREFIX
        import redis

        return redis.Redis.from_url(uri), DEFAULT_KEY_PREFIX
    if _is_redis_py(storage, asyncio):
        return storage, DEFAULT_KEY_PREFIX
    prefix = getattr(storage, "key_prefix", DEFAULT_KEY_PREFIX)
    inner = getattr(storage, "storage", None)
    if inner is None:
        bridge = getattr(storage, "bridge", None)
        inner = getattr(bridge, "storage", None)
        prefix = getattr(bridge, "key_prefix", prefix)
    if inner is not None and _is_redis_py(inner, asyncio):
        return inner, prefix
    kind = "asyncio " if asyncio else ""
    what = type(inner if inner is not None else storage)
    hint = ""
    if inner is not None and what.__module__.split(".")[0] == "coredis":
        hint = (
            " (limits' asyncio RedisStorage uses coredis unless given "
            "implementation='redispy')"
        )
    raise TypeError(
        f"storage must be a redis-py {kind}client, a redis:// URI or a limits Redis "
        f"storage backed by redis-py {kind}, not {what.__module__}.{what.__name__}{hint}"
    )


def _is_redis_py(client: Any, asyncio: bool) -> bool:
    """A redis-py client of the right kind (sync or asyncio, plain or cluster)."""
    if asyncio:
        import redis.asyncio

        return isinstance(client, (redis.asyncio.Redis, redis.asyncio.RedisCluster))
    import redis

    return isinstance(client, (redis.Redis, redis.RedisCluster))
