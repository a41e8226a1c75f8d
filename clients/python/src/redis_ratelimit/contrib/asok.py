"""Glue for the Asok web framework (https://pypi.org/project/asok/, tested with 0.8).

Asok's own limiter (``asok.ratelimit``) counts in process memory or in its
cache with a get-then-incr that is not atomic, and its automatic per-route
prefix uses the module name Asok gives page files (``page_<id()>``), which
differs in every worker process. This module keeps Asok's API and makes the
limits exact and shared by every worker:

- :func:`configure` once (a ``redis.Redis`` client or a URL; default
  ``REDIS_URL`` from the environment, else ``redis://localhost:6379/0``);
- :class:`RateLimitMiddleware`: ``app.use(RateLimitMiddleware("100/m"))``, or
  in ``src/middlewares/ratelimit.py``: ``handle = RateLimitMiddleware("100/m").handle``
  (Asok calls ``handle(request, next)``);
- :func:`rate_limit`: ``@rate_limit("5/m")`` on a page handler, with an
  automatic per-route prefix that is the same in every worker (the page
  file's path under ``src/pages`` and the function name);
- :func:`check`: ``check(request, "5/m")`` in a handler raises Asok's
  ``RateLimitExceeded`` (Asok answers 429 with ``Retry-After``).

Every limited response carries ``RateLimit-Policy``, ``RateLimit``,
``X-RateLimit-*``, and ``Retry-After`` when denied. The limit strings are
Asok's (``"10/s"``, ``"60/m"``, ``"1000/h"``, ``"5000/d"``, or an int with
``window`` seconds) and anything else the module accepts (``"10/s;1000/day"``).

Asok also installs its own in-memory global limiter (100 requests a minute per
IP and per process); set ``app.config["RATE_LIMIT"] = False`` to leave
limiting to this module.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, TypeVar, Union

import redis

from .._core import OnError, RateLimitResult, normalize_strategy, parse_limits
from .._sync import RateLimiter

__all__ = [
    "configure",
    "RateLimitMiddleware",
    "rate_limit",
    "check",
    "route_id",
    "client_ip",
]

F = TypeVar("F", bound=Callable[..., Any])
KeyFunc = Callable[[Any], Optional[str]]

_lock = threading.Lock()
_settings: Dict[str, Any] = {
    "client": None,
    "url": None,
    "strategy": "fixed-window",
    "prefix": "rl",
    "on_error": "raise",
}

STATIC_PREFIXES = ("/static/", "/css/", "/js/", "/images/", "/uploads/", "/__health", "/__reload")


def configure(
    client: "Optional[redis.Redis]" = None,
    *,
    url: Optional[str] = None,
    strategy: str = "fixed-window",
    prefix: str = "rl",
    on_error: OnError = "raise",
) -> None:
    """Defaults for the middleware, decorator and check of this module."""
    with _lock:
        _settings.update(client=client, url=url, strategy=strategy, prefix=prefix, on_error=on_error)


def _client() -> "redis.Redis":
    with _lock:
        c = _settings["client"]
        if c is None:
            url = _settings["url"] or os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
            c = _settings["client"] = redis.Redis.from_url(url)
        return c  # type: ignore[no-any-return]


def client_ip(request: Any) -> str:
    """Default key: Asok's ``request.ip`` (honours ``TRUSTED_PROXIES``)."""
    ip = getattr(request, "ip", None)
    return str(ip) if ip else "unknown"


def _limit_text(limit: Union[str, int], window: Optional[int]) -> str:
    if isinstance(limit, int) and not isinstance(limit, bool):
        return f"{limit}/{window or 60}s"
    return str(limit)


def route_id(filename: str, qualname: str, module: str = "") -> str:
    """A name for a handler that is the same in every worker process: the
    file's path under ``src/pages`` (or the module name outside of it) and
    the function's qualified name."""
    norm = filename.replace(os.sep, "/")
    marker = "/src/pages/"
    if marker in norm:
        return f"{norm.split(marker, 1)[1]}:{qualname}"
    if module and not module.startswith("page_"):
        return f"{module}.{qualname}"
    return f"{os.path.basename(norm)}:{qualname}"


class _Lazy:
    """A RateLimiter built on first use, so that configure() may come later.

    The Redis key prefix is ``prefix`` if given, else the configured prefix
    followed by ``:<route>`` when a route is named."""

    def __init__(self, limits: str, strategy: Optional[str], prefix: Optional[str], route: Optional[str],
                 client: "Optional[redis.Redis]", burst: Optional[int], on_error: Optional[OnError]) -> None:
        parse_limits(limits)  # fail at import time on a bad limit or strategy
        if strategy is not None:
            normalize_strategy(strategy)
        self.args = (limits, strategy, prefix, route, client, burst, on_error)
        self._limiter: Optional[RateLimiter] = None

    def get(self) -> RateLimiter:
        if self._limiter is None:
            limits, strategy, prefix, route, client, burst, on_error = self.args
            if prefix is None:
                prefix = str(_settings["prefix"])
                if route:
                    prefix = f"{prefix}:{route}" if prefix else route
            self._limiter = RateLimiter(
                client or _client(),
                limits,
                strategy or _settings["strategy"],
                prefix,
                burst=burst,
                on_error=on_error or _settings["on_error"],
            )
        return self._limiter


def _add_headers(request: Any, result: RateLimitResult) -> None:
    headers = getattr(request, "response_headers", None)
    if headers is not None:
        headers.extend(result.headers().items())


def _charge(request: Any, limiter: RateLimiter, key: str, cost: int) -> RateLimitResult:
    """Charge ``key`` and put the rate-limit headers on ``request``'s response."""
    result = limiter.hit(key, cost)
    _add_headers(request, result)
    return result


def _too_many(request: Any, result: RateLimitResult) -> Any:
    """The 429 response, the way Asok's own limiter renders it."""
    retry = result.headers().get("Retry-After", "")
    if hasattr(request, "status_code"):
        request.status_code(429)
    if hasattr(request, "content_type"):
        request.content_type = "text/html; charset=utf-8"
    environ = getattr(request, "environ", None) or {}
    app = environ.get("asok.app") if isinstance(environ, dict) else None
    if app is not None and hasattr(app, "_render_error_page"):
        try:
            return app._render_error_page(request, 429)
        except Exception:
            pass
    return f"<h1>429 Too Many Requests</h1><p>Retry in {retry or 'a few '}s.</p>"


class RateLimitMiddleware:
    """Asok middleware: ``handle(request, next)``.

    ``RateLimitMiddleware("100/m")`` or ``RateLimitMiddleware(limiter=RateLimiter(...))``.
    ``key_func(request)`` gives the key (default :func:`client_ip`; ``None``
    exempts the request); paths under ``exempt_paths`` (default Asok's static
    and health paths) are never limited.
    """

    def __init__(
        self,
        limits: Optional[Union[str, int]] = None,
        window: Optional[int] = None,
        *,
        limiter: Optional[RateLimiter] = None,
        key_func: Optional[KeyFunc] = None,
        strategy: Optional[str] = None,
        prefix: Optional[str] = None,
        client: "Optional[redis.Redis]" = None,
        burst: Optional[int] = None,
        on_error: Optional[OnError] = None,
        cost: int = 1,
        exempt_paths: Iterable[str] = STATIC_PREFIXES,
    ) -> None:
        if limiter is None and limits is None:
            raise TypeError("RateLimitMiddleware needs limits (e.g. '100/m') or limiter=")
        self._fixed = limiter
        self._lazy = None if limiter is not None else _Lazy(
            _limit_text(limits if limits is not None else 0, window), strategy, prefix, None, client, burst, on_error
        )
        self.key_func: KeyFunc = key_func or client_ip
        self.cost = cost
        self.exempt_paths = tuple(exempt_paths)

    @property
    def limiter(self) -> RateLimiter:
        if self._fixed is not None:
            return self._fixed
        assert self._lazy is not None
        return self._lazy.get()

    def handle(self, request: Any, next: Callable[[Any], Any]) -> Any:  # noqa: A002 - Asok's name
        path = str(getattr(request, "path", "") or "")
        if self.exempt_paths and path.startswith(self.exempt_paths):
            return next(request)
        key = self.key_func(request)
        if key is None:
            return next(request)
        result = _charge(request, self.limiter, key, self.cost)
        if not result.allowed:
            return _too_many(request, result)
        return next(request)

    __call__ = handle


def rate_limit(
    limit: Union[str, int],
    window: Optional[int] = None,
    *,
    key_func: Optional[KeyFunc] = None,
    prefix: Optional[str] = None,
    strategy: Optional[str] = None,
    client: "Optional[redis.Redis]" = None,
    burst: Optional[int] = None,
    on_error: Optional[OnError] = None,
    cost: int = 1,
) -> Callable[[F], F]:
    """``@rate_limit("5/m")`` on an Asok handler (``def get(request)``), as
    Asok's own decorator, with a per-route prefix shared by all workers:
    ``<prefix>:<route_id>`` (pass ``prefix=`` to share a limit between routes)."""

    def decorator(fn: F) -> F:
        rid = route_id(fn.__code__.co_filename, fn.__qualname__, fn.__module__)
        lazy = _Lazy(_limit_text(limit, window), strategy, prefix, rid, client, burst, on_error)
        kf: KeyFunc = key_func or client_ip

        @functools.wraps(fn)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            key = kf(request)
            if key is None:
                return fn(request, *args, **kwargs)
            result = _charge(request, lazy.get(), key, cost)
            if not result.allowed:
                return _too_many(request, result)
            return fn(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


_check_cache: Dict[Tuple[Any, ...], _Lazy] = {}


def check(
    request: Any,
    limit: Union[str, int],
    window: Optional[int] = None,
    *,
    key: Optional[str] = None,
    prefix: Optional[str] = None,
    strategy: Optional[str] = None,
    client: "Optional[redis.Redis]" = None,
    burst: Optional[int] = None,
    on_error: Optional[OnError] = None,
    cost: int = 1,
) -> RateLimitResult:
    """Charge ``request`` (by default its client IP) against ``limit``; on
    denial raise Asok's ``RateLimitExceeded`` (Asok answers 429 with
    ``Retry-After``). Like ``request.rate_limit()``, the default prefix names
    the calling function, the same way in every worker."""
    route = None
    if prefix is None:
        f = sys._getframe(1)
        route = route_id(f.f_code.co_filename, f.f_code.co_name, str(f.f_globals.get("__name__", "")))
    text = _limit_text(limit, window)
    ck = (text, strategy, prefix, route, id(client) if client is not None else None, burst, on_error)
    with _lock:
        lazy = _check_cache.get(ck)
        if lazy is None:
            lazy = _check_cache[ck] = _Lazy(text, strategy, prefix, route, client, burst, on_error)
    result = _charge(request, lazy.get(), key if key is not None else client_ip(request), cost)
    if not result.allowed:
        raise _exceeded(result)
    return result


def _exceeded(result: RateLimitResult) -> Exception:
    retry = int(result.headers().get("Retry-After", "0") or 0)
    try:
        from asok.exceptions import RateLimitExceeded
    except ImportError:  # Asok not installed: a stand-in with the same fields
        return RateLimitExceededFallback(f"Too Many Requests. Retry in {retry}s.", retry)
    return RateLimitExceeded(message=f"Too Many Requests. Retry in {retry}s.", retry_after=retry)  # type: ignore[no-any-return]


class RateLimitExceededFallback(Exception):
    """Raised by :func:`check` when Asok is not importable (status 429, retry_after)."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
