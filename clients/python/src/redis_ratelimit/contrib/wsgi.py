"""WSGI middleware (Flask, Django, Bottle, Asok, any WSGI app).

::

    import redis
    from redis_ratelimit import RateLimiter
    from redis_ratelimit.contrib.wsgi import RateLimitMiddleware

    app.wsgi_app = RateLimitMiddleware(app.wsgi_app, RateLimiter(redis.Redis(), "100/m"))

Requests in flight per key are capped with ``concurrency=`` (alone or next
to a rate limit)::

    from redis_ratelimit import ConcurrencyLimiter

    inflight = ConcurrencyLimiter(redis.Redis(), max=10, lease="60s")
    app.wsgi_app = RateLimitMiddleware(app.wsgi_app, concurrency=inflight)

Each request holds a lease at its key until the server closes the
response iterable (PEP 3333: after the last byte, or when the client went
away), or the app raises; a request that finds ``max`` leases held gets
``429`` with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .._core import LeaseDenied
from .._results import merge_headers
from .._sync import ConcurrencyLimiter, Lease, RateLimiter

__all__ = ["RateLimitMiddleware", "remote_addr"]

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
KeyFunc = Callable[[Environ], Optional[str]]


def remote_addr(environ: Environ) -> str:
    """Default key: ``REMOTE_ADDR`` (behind a proxy, pass your own ``key_func``)."""
    return str(environ.get("REMOTE_ADDR") or "unknown")


class _Releasing:
    """The app's response iterable, releasing the request's lease when the
    server closes it (once, after closing the app's own iterable)."""

    def __init__(self, body: Iterable[bytes], lease: Lease) -> None:
        self._body = body
        self._lease = lease

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._lease.release()


def _deny(start_response: StartResponse, extra: List[Tuple[str, str]]) -> Iterable[bytes]:
    body = b"Too Many Requests\n"
    start_response(
        "429 Too Many Requests",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))] + extra,
    )
    return [body]


class RateLimitMiddleware:
    """Charges each request to ``key_func(environ)`` (``None`` exempts it);
    denies with ``429`` and ``Retry-After``; adds the rate-limit headers to
    every limited response.

    - ``limiter``: the rate limit (a :class:`RateLimiter`), or None.
    - ``concurrency``: a :class:`ConcurrencyLimiter` that caps the requests
      in flight per key, or None (at least one of the two). ``renew``:
      renew each request's lease from a thread while it runs (True: every
      ``lease / 2``; a number: that many seconds), for requests that may
      outlast the lease.

    With both, the lease is taken first: a request refused for either
    reason consumes nothing (a rate-limit denial releases the lease it
    took), and an admitted one holds its lease until the server closes its
    response.
    """

    def __init__(
        self,
        app: WSGIApp,
        limiter: Optional[RateLimiter] = None,
        *,
        concurrency: Optional[ConcurrencyLimiter] = None,
        renew: Union[bool, float] = False,
        key_func: Optional[KeyFunc] = None,
        exempt_paths: Iterable[str] = (),
        cost: Union[int, Callable[[Environ], int]] = 1,
        reset: str = "epoch",
    ) -> None:
        if limiter is None and concurrency is None:
            raise TypeError("RateLimitMiddleware needs a limiter, a concurrency limiter, or both")
        self.app = app
        self.limiter = limiter
        self.concurrency = concurrency
        self.renew = renew
        self.key_func: KeyFunc = key_func or remote_addr
        self.exempt_paths = tuple(exempt_paths)
        self.cost = cost
        self.reset = "delta" if reset == "delta" else "epoch"

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if self.exempt_paths and path.startswith(self.exempt_paths):
            return self.app(environ, start_response)
        key = self.key_func(environ)
        if key is None:
            return self.app(environ, start_response)
        lease: Optional[Lease] = None
        h: Dict[str, str] = {}
        if self.concurrency is not None:
            lease = self.concurrency.lease(key, renew=self.renew)
            try:
                h = lease.acquire().headers()
            except LeaseDenied as e:
                return _deny(start_response, list(e.headers().items()))
        try:
            if self.limiter is not None:
                cost = self.cost(environ) if callable(self.cost) else self.cost
                result = self.limiter.hit(key, cost)
                rate = result.headers(reset="delta" if self.reset == "delta" else "epoch")
                if not result.allowed:
                    if lease is not None:
                        lease.release()
                    return _deny(start_response, list(rate.items()))
                h = merge_headers(rate, h)
            extra = list(h.items())

            def start_with_headers(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
                if exc_info is not None:
                    return start_response(status, list(headers) + extra, exc_info)
                return start_response(status, list(headers) + extra)

            body = self.app(environ, start_with_headers)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        return body if lease is None else _Releasing(body, lease)
