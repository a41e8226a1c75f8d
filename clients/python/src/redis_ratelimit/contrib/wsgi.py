"""WSGI middleware (Flask, Django, Bottle, Asok, any WSGI app).

::

    import redis
    from redis_ratelimit import RateLimiter
    from redis_ratelimit.contrib.wsgi import RateLimitMiddleware

    app.wsgi_app = RateLimitMiddleware(app.wsgi_app, RateLimiter(redis.Redis(), "100/m"))
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from .._results import RateLimitResult
from .._sync import RateLimiter

__all__ = ["RateLimitMiddleware", "remote_addr"]

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
KeyFunc = Callable[[Environ], Optional[str]]


def remote_addr(environ: Environ) -> str:
    """Default key: ``REMOTE_ADDR`` (behind a proxy, pass your own ``key_func``)."""
    return str(environ.get("REMOTE_ADDR") or "unknown")


class RateLimitMiddleware:
    """Charges each request to ``key_func(environ)`` (``None`` exempts it);
    denies with ``429`` and ``Retry-After``; adds the rate-limit headers to
    every limited response."""

    def __init__(
        self,
        app: WSGIApp,
        limiter: RateLimiter,
        *,
        key_func: Optional[KeyFunc] = None,
        exempt_paths: Iterable[str] = (),
        cost: Union[int, Callable[[Environ], int]] = 1,
        reset: str = "epoch",
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.key_func: KeyFunc = key_func or remote_addr
        self.exempt_paths = tuple(exempt_paths)
        self.cost = cost
        self.reset = "delta" if reset == "delta" else "epoch"

    def _headers(self, result: RateLimitResult) -> List[Tuple[str, str]]:
        return list(result.headers(reset="delta" if self.reset == "delta" else "epoch").items())

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if self.exempt_paths and path.startswith(self.exempt_paths):
            return self.app(environ, start_response)
        key = self.key_func(environ)
        if key is None:
            return self.app(environ, start_response)
        cost = self.cost(environ) if callable(self.cost) else self.cost
        result = self.limiter.hit(key, cost)
        extra = self._headers(result)
        if not result.allowed:
            body = b"Too Many Requests\n"
            start_response(
                "429 Too Many Requests",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))] + extra,
            )
            return [body]

        def start_with_headers(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info is not None:
                return start_response(status, list(headers) + extra, exc_info)
            return start_response(status, list(headers) + extra)

        return self.app(environ, start_with_headers)
