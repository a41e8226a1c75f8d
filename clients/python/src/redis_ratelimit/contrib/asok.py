"""Glue for the Asok web framework (https://pypi.org/project/asok/, tested with 0.8).

Asok's own limiter (``asok.ratelimit``) counts in process memory or in its
cache with a get-then-incr that is not atomic, and its automatic per-route
prefix uses the module name Asok gives page files (``page_<id()>``), which
differs in every worker process. This module keeps Asok's API and makes the
limits exact and shared by every worker:

- :func:`configure` once (a ``redis.Redis`` client or a URL; default
  ``REDIS_URL`` from the environment, else ``redis://localhost:6379/0``). It
  also routes Asok's own entry points to the module with no call-site
  change: ``request.rate_limit("3/day")``, ``app.rate_limit(...)`` and a
  ``rate_limit`` imported from ``asok`` after the call (``asok_api=False``
  leaves Asok's own);
- :class:`RateLimitMiddleware`: ``app.use(RateLimitMiddleware("100/m"))``, or
  in ``src/middlewares/ratelimit.py``: ``handle = RateLimitMiddleware("100/m").handle``
  (Asok calls ``handle(request, next)``);
- :func:`rate_limit`: ``@rate_limit("5/m")`` on a page handler, with an
  automatic per-route prefix that is the same in every worker (the page
  file's path under ``src/pages`` and the function name);
- :func:`check`: ``check(request, "5/m")`` in a handler raises Asok's
  ``RateLimitExceeded`` (Asok answers 429 with ``Retry-After``).

Every limited response carries ``RateLimit-Policy``, ``RateLimit``,
``X-RateLimit-*``, and ``Retry-After`` when denied, once: when a global and
a route limit both apply, the headers describe the more restrictive. Asok's
keywords are accepted (``key_func``, ``storage``: its cache is not needed
and is ignored, ``prefix``, ``max_requests``, an int limit with ``window``
seconds). The limit strings are Asok's (``"10/s"``, ``"60/m"``,
``"1000/h"``, ``"5000/d"``) and anything else the module accepts
(``"10/s;1000/day"``), read as written: Asok itself reads only the first
letter after the ``/`` and falls back to 60 s, so there ``"5/10s"``,
``"5/2m"`` and ``"5/week"`` are 5 a minute and ``"5/month"`` is 5 a minute
(``m``), and a string it cannot parse is 60 a minute; here they mean 10
seconds, 2 minutes, a week and 30 days, and a bad string is an error.

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

from .._config import OnError
from .._grammar import normalize_strategy, parse_limits
from .._results import RateLimitResult
from .._sync import RateLimiter

__all__ = [
    "configure",
    "RateLimitMiddleware",
    "RateLimit",
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
    # Bumped by configure(): limiters built before are rebuilt on next use.
    "version": 0,
}

STATIC_PREFIXES = ("/static/", "/css/", "/js/", "/images/", "/uploads/", "/__health", "/__reload")


def configure(
    client: "Optional[redis.Redis]" = None,
    *,
    url: Optional[str] = None,
    strategy: str = "fixed-window",
    prefix: str = "rl",
    on_error: OnError = "raise",
    asok_api: bool = True,
) -> None:
    """Defaults for the middleware, decorator and check of this module.

    With ``asok_api`` (the default) Asok's own entry points use the module
    too, with no change at their call sites: ``request.rate_limit(...)``
    (raises Asok's ``RateLimitExceeded``), ``app.rate_limit(...)`` and a
    ``rate_limit`` imported from ``asok`` after this call. ``asok_api=False``
    puts Asok's own back."""
    with _lock:
        _settings.update(client=client, url=url, strategy=strategy, prefix=prefix, on_error=on_error)
        _settings["version"] += 1
    _route_asok_api(asok_api)


_asok_originals: Dict[str, Any] = {}


def _request_rate_limit(
    self: Any, limit: Union[str, int], window: Optional[int] = None, prefix: Optional[str] = None
) -> RateLimitResult:
    """Asok's ``request.rate_limit(limit, window=None, prefix=None)`` on the module."""
    return _check(self, limit, window, None, prefix, None, None, None, None, 1, depth=2)


def _route_asok_api(on: bool) -> None:
    """Point Asok's ``Request.rate_limit`` and ``rate_limit`` (which
    ``app.rate_limit`` calls) at this module, or back at Asok's own."""
    try:
        import asok as asok_pkg
        import asok.ratelimit as asok_ratelimit
        from asok.request import Request
    except ImportError:
        return
    with _lock:
        if on:
            if not _asok_originals:
                _asok_originals.update(
                    request=Request.rate_limit, module=asok_ratelimit.rate_limit, package=asok_pkg.rate_limit
                )
            Request.rate_limit = _request_rate_limit
            asok_ratelimit.rate_limit = rate_limit
            asok_pkg.rate_limit = rate_limit
        elif _asok_originals:
            Request.rate_limit = _asok_originals["request"]
            asok_ratelimit.rate_limit = _asok_originals["module"]
            asok_pkg.rate_limit = _asok_originals["package"]
            _asok_originals.clear()


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


def _asok_client(storage: Any, client: "Optional[redis.Redis]") -> "Optional[redis.Redis]":
    """Asok's ``storage=`` keyword: its ``Cache`` is not needed (the module
    keeps the counts) and is ignored; a redis-py client given there is used."""
    if client is None and isinstance(storage, redis.Redis):
        return storage
    return client


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
        self._version = -1

    def get(self) -> RateLimiter:
        if self._limiter is None or self._version != _settings["version"]:
            self._version = _settings["version"]
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


def _restriction(result: RateLimitResult) -> Tuple[int, float]:
    """Sort key, most restrictive first: denied before admitted; among
    denials the longest wait (never = infinite), among admissions the fewest
    remaining (the module's own rule for the binding limit)."""
    if not result.allowed:
        wait = float("inf") if result.retry_after_ms < 0 else float(result.retry_after_ms)
        return (0, -wait)
    return (1, float(result.remaining))


_RESULT_ATTR = "_redis_ratelimit_result"


def _add_headers(request: Any, result: RateLimitResult) -> None:
    """Put ``result``'s headers on the response, once per response: when a
    global and a route limit both apply, the headers describe the more
    restrictive of the two (not both, which would repeat every header)."""
    headers = getattr(request, "response_headers", None)
    if headers is None:
        return
    shown: Optional[RateLimitResult] = getattr(request, _RESULT_ATTR, None)
    if shown is not None:
        if _restriction(result) >= _restriction(shown):
            return
        names = {n.lower() for n in shown.headers()}
        headers[:] = [(n, v) for n, v in headers if n.lower() not in names]
    try:
        setattr(request, _RESULT_ATTR, result)
    except AttributeError:  # a request object without attributes: show every result
        pass
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
        key_func: Optional[KeyFunc] = None,
        storage: Any = None,
        prefix: Optional[str] = None,
        *,
        limiter: Optional[RateLimiter] = None,
        strategy: Optional[str] = None,
        client: "Optional[redis.Redis]" = None,
        burst: Optional[int] = None,
        on_error: Optional[OnError] = None,
        cost: int = 1,
        exempt_paths: Iterable[str] = STATIC_PREFIXES,
        max_requests: Optional[int] = None,
    ) -> None:
        # Asok's RateLimit(limit, window, key_func, storage, prefix, max_requests=)
        if max_requests is not None:
            limits = max_requests
        client = _asok_client(storage, client)
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


RateLimit = RateLimitMiddleware
"""Asok's name for its limiter class (``RateLimit("100/m")`` as middleware)."""


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
    storage: Any = None,
    max_requests: Optional[int] = None,
) -> Callable[[F], F]:
    """``@rate_limit("5/m")`` on an Asok handler (``def get(request)``), as
    Asok's own decorator (and ``app.rate_limit`` after :func:`configure`),
    with a per-route prefix shared by all workers: ``<prefix>:<route_id>``
    (pass ``prefix=`` to share a limit between routes). Asok's keywords
    ``storage`` and ``max_requests`` are accepted (see :func:`_asok_client`)."""
    if max_requests is not None:
        limit = max_requests
    client = _asok_client(storage, client)

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
    return _check(request, limit, window, key, prefix, strategy, client, burst, on_error, cost, depth=2)


def _check(
    request: Any,
    limit: Union[str, int],
    window: Optional[int],
    key: Optional[str],
    prefix: Optional[str],
    strategy: Optional[str],
    client: "Optional[redis.Redis]",
    burst: Optional[int],
    on_error: Optional[OnError],
    cost: int,
    depth: int,
) -> RateLimitResult:
    """:func:`check`, naming the route after the function ``depth`` frames up."""
    route = None
    if prefix is None:
        f = sys._getframe(depth)
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
