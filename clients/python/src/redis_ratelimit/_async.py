"""The asyncio client on redis.asyncio: the same API as RateLimiter, awaited."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, List, Optional, Type, Union

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._config import check_token, logger, new_token
from ._core import (
    MODULE_MISSING_HINT,
    ModuleNotLoadedError,
    _ConcurrencyBase,
    _LeaseBase,
    _LimiterBase,
    module_missing,
)
from ._results import (
    LeaseResult,
    LimitStats,
    RateLimitResult,
    Token,
    decode_lease,
    decode_result,
    decode_stats,
)

__all__ = ["AsyncRateLimiter", "AsyncConcurrencyLimiter", "AsyncLease"]

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


async def _execute(client: "redis.asyncio.Redis", args: List[Any]) -> Any:
    try:
        return await client.execute_command(*args)  # type: ignore[no-untyped-call]
    except ResponseError as e:
        if module_missing(e):
            raise ModuleNotLoadedError(MODULE_MISSING_HINT) from e
        raise


class AsyncRateLimiter(_LimiterBase):
    """Rate limits kept by the redis-ratelimit module, one round trip a call.

    ``AsyncRateLimiter(client, "10/s;1000/day", strategy="moving-window", prefix="rl")``

    - ``client``: a ``redis.asyncio.Redis`` (RESP2 or RESP3).
    - ``limits``: one or more limits, ``;``, ``,`` or ``|`` separated, in the
      grammar of the module (``10/s``, ``5 per 2 minutes``, ``20/500ms``...);
      all are charged together, all or nothing.
    - ``strategy``: ``fixed-window`` (default), ``moving-window``,
      ``sliding-window-counter`` or ``gcra`` (with ``burst=``).
    - ``prefix``: the Redis key is ``f"{prefix}:{key}"`` (just ``key`` if empty).
    - ``penalty``: lock the key for that long once a hit is denied for
      usage (``PENALTY``; ``"1h"``, ``"15m"``, ``"500ms"``, a number of
      seconds or a ``timedelta``). While locked, every hit and test at the
      key is denied with ``retry_after`` at least the time left; sent with
      ``hit`` and ``test`` only.
    - ``on_error``: when Redis is unreachable, ``"raise"`` (default), fail
      ``"open"`` (admit) or ``"closed"`` (deny, ``Retry-After`` =
      ``error_retry_after`` seconds). Failing open or closed logs a warning on
      logger ``redis_ratelimit`` each time.
    """

    client: "redis.asyncio.Redis"

    async def _call(self, args: List[Any]) -> Any:
        return await _execute(self.client, args)

    async def _decide(self, cmd: str, key: str, cost: int) -> RateLimitResult:
        args = self._cfg.args(cmd, key, cost)
        try:
            reply = await self._call(args)
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.fallback(cmd, key, e)
        return decode_result(
            reply, self._cfg.policy, self._cfg.strategy, self._cfg.locks_when_denied(cmd, cost)
        )

    async def hit(self, key: str, cost: int = 1) -> RateLimitResult:
        """Consume ``cost`` from every limit at ``key`` if all admit it (RL.HIT)."""
        return await self._decide("RL.HIT", key, cost)

    async def test(self, key: str, cost: int = 1) -> RateLimitResult:
        """What :meth:`hit` would answer now, changing nothing (RL.TEST)."""
        return await self._decide("RL.TEST", key, cost)

    async def refund(self, key: str, cost: int = 1) -> RateLimitResult:
        """Give ``cost`` (1 and up) back to every limit at ``key``, for a hit
        that should not count after all (RL.REFUND). Usage never goes below
        zero, and a penalty in force stays. Answers what ``test(key, cost=0)``
        answers right after. Refund only a hit that was admitted: a denied
        hit consumed nothing, and refunding it gives back an earlier one."""
        return await self._decide("RL.REFUND", key, cost)

    async def stats(self, key: str) -> List[LimitStats]:
        """State of each limit, in the order written (RL.STATS)."""
        args = self._cfg.args("RL.STATS", key, None)
        return decode_stats(await self._call(args))

    async def clear(self, key: str) -> int:
        """Forget this limiter's usage at ``key`` (RL.CLEAR key limits
        STRATEGY s); returns how many limit states held usage."""
        return int(await self._call(self._cfg.clear_args(key)))


class AsyncConcurrencyLimiter(_ConcurrencyBase):
    """At most ``max`` leases held at a key at once, each released by its
    holder or expired after ``lease`` (RL.ACQUIRE / RL.RELEASE): the
    asyncio twin of :class:`redis_ratelimit.ConcurrencyLimiter`, the same
    API awaited.

    ``AsyncConcurrencyLimiter(client, max=10, lease="30s", prefix="rl")``
    with a ``redis.asyncio.Redis`` client::

        async with limiter.lease("tenant:7"):    # raises LeaseDenied when full
            await run_the_job()
    """

    client: "redis.asyncio.Redis"

    async def acquire(self, key: str, token: Optional[Token] = None) -> LeaseResult:
        """Take a lease at ``key`` named ``token`` (a fresh random one when
        None) if fewer than ``max`` are held; if ``token`` holds a live lease
        already, renew it (it ends ``lease`` from now, and still counts
        once). The result carries the token; pass it to :meth:`release`."""
        token = new_token() if token is None else check_token(token)
        args = self._cfg.acquire_args(key, token)
        try:
            reply = await _execute(self.client, args)
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.acquire_fallback(key, token, e)
        return decode_lease(reply, token)

    async def release(self, key: str, token: Token) -> bool:
        """End the lease of ``token`` at ``key``: True if it was live, False
        if it had ended (released before, or expired). Harmless to repeat."""
        args = self._cfg.release_args(key, check_token(token))
        try:
            return int(await _execute(self.client, args)) == 1
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.release_fallback(key, e)

    def lease(self, key: str, *, token: Optional[Token] = None, renew: Union[bool, float] = False) -> "AsyncLease":
        """An async context manager that holds a lease at ``key`` while its
        block runs: acquired on entry (a fresh token unless ``token`` is
        given; :class:`LeaseDenied` when every slot is taken), released on
        exit, also when the block raises or is cancelled. ``renew=True``
        renews it from a background task every ``lease / 2``
        (``renew=<seconds>``: that often) while the block runs."""
        return AsyncLease(self, key, token, renew)


def _retrieve(fut: "asyncio.Future[Any]") -> None:
    """Done callback of a release left running by a cancelled block: log
    its failure rather than leave it unretrieved."""
    if not fut.cancelled() and fut.exception() is not None:
        logger.warning("redis_ratelimit: releasing a lease failed: %r", fut.exception())


class AsyncLease(_LeaseBase):
    """``async with limiter.lease(key) as lease:`` (see
    :meth:`AsyncConcurrencyLimiter.lease`); the asyncio twin of
    :class:`redis_ratelimit.Lease`."""

    limiter: AsyncConcurrencyLimiter

    def __init__(self, limiter: AsyncConcurrencyLimiter, key: str, token: Optional[Token],
                 renew: Union[bool, float]) -> None:
        super().__init__(limiter, key, token, renew)
        self._stop: Optional[asyncio.Event] = None
        self._task: "Optional[asyncio.Task[None]]" = None
        self._ending: "Optional[asyncio.Future[bool]]" = None

    async def acquire(self) -> LeaseResult:
        """Take the lease (raises :class:`LeaseDenied` when every slot is
        taken) and start renewing it if asked to."""
        self._start()
        result = await self.limiter.acquire(self.key, self.token)
        self._acquired(result)
        if self.interval is not None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(self._renew_loop(self._stop, self.interval))
        return result

    async def _renew_loop(self, stop: asyncio.Event, interval: float) -> None:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), interval)
                return
            except asyncio.TimeoutError:
                pass
            try:
                result = await self.limiter.acquire(self.key, self.token)
            except Exception as e:  # noqa: BLE001 - keep renewing; log each failure
                self._renew_failed(e)
                continue
            self._renewed(result)

    async def _end(self) -> bool:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            await self._task  # a renewal in flight lands before the release
        return await self.limiter.release(self.key, self.token)

    async def release(self) -> bool:
        """Stop renewing (waiting for a renewal in flight), then release the
        lease; True if it was still live. Runs once; later calls answer the
        first outcome. The release runs to its end even if the awaiting
        task is cancelled (it is shielded)."""
        if self.released is not None:
            return self.released
        if not self._held:  # never acquired: nothing to release
            self.released = False
            return False
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        try:
            self.released = await asyncio.shield(self._ending)
        except asyncio.CancelledError:
            self._ending.add_done_callback(_retrieve)
            raise
        except BaseException:
            self.released = False
            raise
        return self.released

    async def __aenter__(self) -> "AsyncLease":
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.release()
