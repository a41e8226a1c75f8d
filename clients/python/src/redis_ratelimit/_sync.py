"""The synchronous client on redis-py."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, List, Optional, Type, Union

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._config import check_token, new_token
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

__all__ = ["RateLimiter", "ConcurrencyLimiter", "Lease"]

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


def _execute(client: "redis.Redis", args: List[Any]) -> Any:
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    except ResponseError as e:
        if module_missing(e):
            raise ModuleNotLoadedError(MODULE_MISSING_HINT) from e
        raise


class RateLimiter(_LimiterBase):
    """Rate limits kept by the redis-ratelimit module, one round trip a call.

    ``RateLimiter(client, "10/s;1000/day", strategy="moving-window", prefix="rl")``

    - ``client``: a ``redis.Redis`` (RESP2 or RESP3).
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

    client: "redis.Redis"

    def _call(self, args: List[Any]) -> Any:
        return _execute(self.client, args)

    def _decide(self, cmd: str, key: str, cost: int) -> RateLimitResult:
        args = self._cfg.args(cmd, key, cost)
        try:
            reply = self._call(args)
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.fallback(cmd, key, e)
        return decode_result(
            reply, self._cfg.policy, self._cfg.strategy, self._cfg.locks_when_denied(cmd, cost)
        )

    def hit(self, key: str, cost: int = 1) -> RateLimitResult:
        """Consume ``cost`` from every limit at ``key`` if all admit it (RL.HIT)."""
        return self._decide("RL.HIT", key, cost)

    def test(self, key: str, cost: int = 1) -> RateLimitResult:
        """What :meth:`hit` would answer now, changing nothing (RL.TEST)."""
        return self._decide("RL.TEST", key, cost)

    def refund(self, key: str, cost: int = 1) -> RateLimitResult:
        """Give ``cost`` (1 and up) back to every limit at ``key``, for a hit
        that should not count after all (RL.REFUND). Usage never goes below
        zero, and a penalty in force stays. Answers what ``test(key, cost=0)``
        answers right after. Refund only a hit that was admitted: a denied
        hit consumed nothing, and refunding it gives back an earlier one."""
        return self._decide("RL.REFUND", key, cost)

    def stats(self, key: str) -> List[LimitStats]:
        """State of each limit, in the order written (RL.STATS)."""
        args = self._cfg.args("RL.STATS", key, None)
        return decode_stats(self._call(args))

    def clear(self, key: str) -> int:
        """Forget this limiter's usage at ``key`` (RL.CLEAR key limits
        STRATEGY s); returns how many limit states held usage."""
        return int(self._call(self._cfg.clear_args(key)))


class ConcurrencyLimiter(_ConcurrencyBase):
    """At most ``max`` leases held at a key at once, each released by its
    holder or expired after ``lease`` (RL.ACQUIRE / RL.RELEASE): a limit on
    work in flight, shared by every process, that a crashed holder cannot
    leak.

    ``ConcurrencyLimiter(client, max=10, lease="30s", prefix="rl")``

    - ``client``: a ``redis.Redis`` (RESP2 or RESP3).
    - ``max``: 1 to 10000 leases at once per key.
    - ``lease``: how long a lease lasts unless released or renewed
      (``"30s"``, ``"500ms"``, ``"2 minutes"``, a number of seconds or a
      ``timedelta``; 1 ms to 10 years). Make it longer than the work it
      covers, or renew it (``lease(key, renew=True)``).
    - ``prefix``: the Redis key is ``f"{prefix}:{key}"`` (just ``key`` if
      empty). Leases may share a key with a RateLimiter's limits.
    - ``on_error``: when Redis is unreachable, ``"raise"`` (default), fail
      ``"open"`` (the acquire answers a lease granted by nobody) or
      ``"closed"`` (denied, ``retry_after`` = ``error_retry_after``); a
      release that cannot reach Redis then logs and answers False (the lease
      expires). Each failure logs a warning on logger ``redis_ratelimit``.

    ::

        with limiter.lease("tenant:7"):      # raises LeaseDenied when full
            run_the_job()
    """

    client: "redis.Redis"

    def acquire(self, key: str, token: Optional[Token] = None) -> LeaseResult:
        """Take a lease at ``key`` named ``token`` (a fresh random one when
        None) if fewer than ``max`` are held; if ``token`` holds a live lease
        already, renew it (it ends ``lease`` from now, and still counts
        once). The result carries the token; pass it to :meth:`release`."""
        token = new_token() if token is None else check_token(token)
        args = self._cfg.acquire_args(key, token)
        try:
            reply = _execute(self.client, args)
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.acquire_fallback(key, token, e)
        return decode_lease(reply, token)

    def release(self, key: str, token: Token) -> bool:
        """End the lease of ``token`` at ``key``: True if it was live, False
        if it had ended (released before, or expired). Harmless to repeat."""
        args = self._cfg.release_args(key, check_token(token))
        try:
            return int(_execute(self.client, args)) == 1
        except UNREACHABLE as e:
            if self._cfg.on_error == "raise":
                raise
            return self._cfg.release_fallback(key, e)

    def lease(self, key: str, *, token: Optional[Token] = None, renew: Union[bool, float] = False) -> "Lease":
        """A context manager that holds a lease at ``key`` while its block
        runs: acquired on entry (a fresh token unless ``token`` is given;
        :class:`LeaseDenied` when every slot is taken), released on exit,
        also when the block raises. ``renew=True`` renews it from a
        background thread every ``lease / 2`` (``renew=<seconds>``: that
        often) while the block runs, for work that may outlast the lease."""
        return Lease(self, key, token, renew)


class Lease(_LeaseBase):
    """``with limiter.lease(key) as lease:`` (see
    :meth:`ConcurrencyLimiter.lease`). ``lease.token`` names the lease,
    ``lease.result`` is the latest :class:`LeaseResult`, ``lease.lost``
    tells that a renewal came too late (the lease had expired and every
    slot was taken). :meth:`acquire` and :meth:`release` are the two halves
    of the ``with`` statement, for code that cannot use one."""

    limiter: ConcurrencyLimiter

    def __init__(self, limiter: ConcurrencyLimiter, key: str, token: Optional[Token],
                 renew: Union[bool, float]) -> None:
        super().__init__(limiter, key, token, renew)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def acquire(self) -> LeaseResult:
        """Take the lease (raises :class:`LeaseDenied` when every slot is
        taken) and start renewing it if asked to."""
        self._start()
        result = self.limiter.acquire(self.key, self.token)
        self._acquired(result)
        if self.interval is not None:
            self._thread = threading.Thread(
                target=self._renew_loop, name=f"redis-ratelimit lease {self.key}", daemon=True
            )
            self._thread.start()
        return result

    def _renew_loop(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            try:
                result = self.limiter.acquire(self.key, self.token)
            except Exception as e:  # noqa: BLE001 - keep renewing; log each failure
                self._renew_failed(e)
                continue
            self._renewed(result)

    def release(self) -> bool:
        """Stop renewing (waiting for a renewal in flight), then release the
        lease; True if it was still live. Runs once; later calls answer the
        first outcome."""
        if self.released is not None:
            return self.released
        if not self._held:  # never acquired: nothing to release
            self.released = False
            return False
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.released = False  # also if the release below raises
        self.released = self.limiter.release(self.key, self.token)
        return self.released

    def __enter__(self) -> "Lease":
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()
