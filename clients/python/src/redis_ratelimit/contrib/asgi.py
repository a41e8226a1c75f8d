"""ASGI middleware (Starlette, FastAPI, Litestar, plain ASGI).

::

    from redis.asyncio import Redis
    from redis_ratelimit import AsyncRateLimiter
    from redis_ratelimit.contrib.asgi import RateLimitMiddleware

    limiter = AsyncRateLimiter(Redis(), "10/s;1000/day", strategy="moving-window")
    app.add_middleware(RateLimitMiddleware, limiter=limiter)

Every HTTP request is charged to its key (by default the client address);
a denied request gets ``429 Too Many Requests`` with ``Retry-After`` and the
rate-limit headers, an admitted one gets the rate-limit headers added to the
app's response. WebSocket and lifespan traffic pass through.

Requests in flight per key are capped with ``concurrency=`` (alone or next
to a rate limit)::

    from redis_ratelimit import AsyncConcurrencyLimiter

    inflight = AsyncConcurrencyLimiter(Redis(), max=10, lease="60s")
    app.add_middleware(RateLimitMiddleware, concurrency=inflight)

Each request holds a lease at its key until the app has finished its
response (also when it raises, or the client goes away); a request that
finds ``max`` leases held gets ``429`` with ``Retry-After``.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Dict, Iterable, List, MutableMapping, Optional, Tuple, Union

from .._async import AsyncConcurrencyLimiter, AsyncLease, AsyncRateLimiter
from .._core import LeaseDenied
from .._results import merge_headers

__all__ = ["RateLimitMiddleware", "client_address"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
KeyFunc = Callable[[Scope], Union[Optional[str], Awaitable[Optional[str]]]]
CostFunc = Callable[[Scope], int]


def client_address(scope: Scope) -> str:
    """Default key: the peer address of the connection (behind a proxy, use
    uvicorn's ``--proxy-headers`` or pass your own ``key_func``)."""
    client = scope.get("client")
    if client:
        return str(client[0])
    return "unknown"


def _encode(headers: Iterable[Tuple[str, str]]) -> List[Tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class RateLimitMiddleware:
    """Pure ASGI middleware; see the module docstring.

    - ``limiter``: the rate limit (an :class:`AsyncRateLimiter`), or None.
    - ``concurrency``: an :class:`AsyncConcurrencyLimiter` that caps the
      requests in flight per key, or None (at least one of the two).
      ``renew``: renew each request's lease while it runs (True: every
      ``lease / 2``; a number: that many seconds), for requests that may
      outlast the lease.
    - ``key_func(scope)`` returns the key to charge (sync or async); ``None``
      exempts the request. Default: :func:`client_address`.
    - ``exempt_paths``: path prefixes that are never limited.
    - ``cost``: an int or ``cost(scope) -> int``.
    - ``reset``: ``X-RateLimit-Reset`` as ``"epoch"`` seconds or ``"delta"``.

    With both, the lease is taken first: a request refused for either
    reason consumes nothing (a rate-limit denial releases the lease it
    took), and an admitted one holds its lease until its response is done.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: Optional[AsyncRateLimiter] = None,
        *,
        concurrency: Optional[AsyncConcurrencyLimiter] = None,
        renew: Union[bool, float] = False,
        key_func: Optional[KeyFunc] = None,
        exempt_paths: Iterable[str] = (),
        cost: Union[int, CostFunc] = 1,
        headers: bool = True,
        reset: str = "epoch",
    ) -> None:
        if limiter is None and concurrency is None:
            raise TypeError("RateLimitMiddleware needs a limiter, a concurrency limiter, or both")
        self.app = app
        self.limiter = limiter
        self.concurrency = concurrency
        self.renew = renew
        self.key_func: KeyFunc = key_func or client_address
        self.exempt_paths = tuple(exempt_paths)
        self.cost = cost
        self.add_headers = headers
        self.reset = "delta" if reset == "delta" else "epoch"

    async def _key(self, scope: Scope) -> Optional[str]:
        k = self.key_func(scope)
        if inspect.isawaitable(k):
            k = await k
        return k

    def _headers(self, h: Dict[str, str]) -> List[Tuple[bytes, bytes]]:
        if not self.add_headers:  # only Retry-After, on a denial
            h = {k: v for k, v in h.items() if k == "Retry-After"}
        return _encode(h.items())

    async def _deny(self, send: Send, extra: List[Tuple[bytes, bytes]]) -> None:
        body = b"Too Many Requests\n"
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ]
                + extra,
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.exempt_paths and str(scope.get("path", "")).startswith(self.exempt_paths)
        ):
            await self.app(scope, receive, send)
            return
        key = await self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        lease: Optional[AsyncLease] = None
        h: Dict[str, str] = {}
        if self.concurrency is not None:
            lease = self.concurrency.lease(key, renew=self.renew)
            try:
                h = (await lease.acquire()).headers()
            except LeaseDenied as e:
                await self._deny(send, self._headers(e.headers()))
                return
        try:
            if self.limiter is not None:
                cost = self.cost(scope) if callable(self.cost) else self.cost
                result = await self.limiter.hit(key, cost)
                rate = result.headers(reset="delta" if self.reset == "delta" else "epoch")
                if not result.allowed:
                    await self._deny(send, self._headers(rate))
                    return
                h = merge_headers(rate, h)
            extra = self._headers(h)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start" and extra:
                    message = dict(message)
                    message["headers"] = list(message.get("headers", [])) + extra
                await send(message)

            await self.app(scope, receive, send_with_headers)
        finally:
            # after the response, an exception or a disconnect; shielded from
            # cancellation
            if lease is not None:
                await lease.release()
