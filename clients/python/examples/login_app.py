"""Protecting a login form: failed logins are limited per account, and a
breach locks the account (docs/login-protection.md).

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn login_app:app --app-dir examples --port 8000
    curl -i -d 'username=alice&password=guess' http://127.0.0.1:8000/login

A plain ASGI app (no framework) on the asyncio client:

- ``GET /``: a login form;
- ``POST /login`` (form or JSON, fields ``username`` and ``password``):
  ``200`` for a correct password, ``401`` for a wrong one (or an unknown
  account), ``429`` with ``Retry-After`` while the account is locked.

Every attempt is charged to the account before the password is checked,
and a success is refunded, so only failures count: after LOGIN_LIMIT
(default ``5/15m``) failures, the next attempt locks the account for
LOGIN_PENALTY (default ``1h``), correct password or not. Accounts:
LOGIN_USERS, ``name:password`` pairs separated by commas (demo default
``alice:wonderland,bob:builder``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from typing import Any, Awaitable, Callable, Dict, Mapping, MutableMapping, Optional, Tuple
from urllib.parse import parse_qs

from redis.asyncio import Redis

from redis_ratelimit import AsyncRateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Users:
    """Accounts and their salted scrypt hashes: a stand-in for your user table."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._hashes: Dict[str, Tuple[bytes, bytes]] = {}
        for name, password in passwords.items():
            salt = os.urandom(16)
            self._hashes[name.casefold()] = (salt, self._scrypt(password, salt))
        self._nobody = (os.urandom(16), b"")  # unknown accounts cost one hash too

    @staticmethod
    def _scrypt(password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)

    def _check(self, username: str, password: str) -> bool:
        salt, digest = self._hashes.get(username.casefold(), self._nobody)
        return hmac.compare_digest(self._scrypt(password, salt), digest)

    async def verify(self, username: str, password: str) -> bool:
        """True if ``password`` is the account's (hashed off the event loop)."""
        return await asyncio.to_thread(self._check, username, password)


# --- recipe (docs/login-protection.md shows this part as it is) ---
def failed_logins(redis: Redis, limit: str = "5/15m", penalty: str = "1h") -> AsyncRateLimiter:
    """Failed logins per account: 5 in 15 minutes, then locked for an hour."""
    return AsyncRateLimiter(redis, limit, strategy="moving-window", prefix="login", penalty=penalty)


async def attempt_login(
    limiter: AsyncRateLimiter, users: Users, username: str, password: str
) -> Tuple[int, Dict[str, str]]:
    """The HTTP status of a login attempt (200, 401 or 429) and headers to add."""
    account = username.casefold()
    attempt = await limiter.hit(account)  # count it as a failure before checking
    if not attempt.allowed:  # locked: refuse without looking at the password
        return 429, attempt.headers()  # Retry-After: seconds until the lock ends
    if not await users.verify(username, password):
        return 401, {}  # the hit stays: one more failure
    await limiter.refund(account)  # success: give the hit back
    return 200, {}
# --- end of recipe ---


FORM = b"""<!doctype html>
<title>Log in</title>
<form method="post" action="/login">
  <label>User <input name="username" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button>Log in</button>
</form>
"""

MESSAGES = {
    200: "welcome",
    400: "send username and password",
    401: "wrong username or password",
    404: "not found",
    405: "method not allowed",
    429: "too many failed logins: this account is locked for a while",
}


class LoginApp:
    """The ASGI app: the recipe behind ``POST /login``."""

    def __init__(self, redis: Redis, users: Users, *, limit: str = "5/15m", penalty: str = "1h") -> None:
        self.redis = redis
        self.users = users
        self.limiter = failed_logins(redis, limit, penalty)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            status, headers, body, ctype = await self.handle(scope, receive)
            await send({
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
                + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            })
            await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, scope: Scope, receive: Receive) -> Tuple[int, Dict[str, str], bytes, bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/" and method in ("GET", "HEAD"):
            return 200, {}, FORM, b"text/html; charset=utf-8"
        if path != "/login":
            return self.respond(404, {})
        if method != "POST":
            return self.respond(405, {"Allow": "POST"})
        fields = parse_fields(scope, await read_body(receive))
        username, password = fields.get("username"), fields.get("password")
        if not username or password is None or len(username) > 256:
            return self.respond(400, {})
        status, headers = await attempt_login(self.limiter, self.users, username, password)
        return self.respond(status, headers)

    @staticmethod
    def respond(status: int, headers: Dict[str, str]) -> Tuple[int, Dict[str, str], bytes, bytes]:
        doc: Dict[str, Any] = {"message": MESSAGES[status]}
        if "Retry-After" in headers:
            doc["retry_after"] = int(headers["Retry-After"])
        return status, headers, json.dumps(doc).encode() + b"\n", b"application/json"


async def read_body(receive: Receive, limit: int = 64 * 1024) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        body += message.get("body", b"")
        if len(body) > limit:
            return b""
        if not message.get("more_body"):
            return body


def parse_fields(scope: Scope, body: bytes) -> Dict[str, str]:
    """``username`` and ``password`` from a JSON or form-encoded body."""
    ctype = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip()
    try:
        if ctype == b"application/json":
            doc = json.loads(body)
            return {k: v for k, v in doc.items() if isinstance(v, str)} if isinstance(doc, dict) else {}
        return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    except ValueError:  # bad JSON or UTF-8
        return {}


def users_from_env(text: Optional[str]) -> Dict[str, str]:
    """``name:password,name:password`` as a dict."""
    users = {}
    for item in (text or "alice:wonderland,bob:builder").split(","):
        name, sep, password = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"LOGIN_USERS: expected name:password, got {item!r}")
        users[name.strip()] = password
    return users


def create_app() -> LoginApp:
    """The app as configured by REDIS_URL, LOGIN_LIMIT, LOGIN_PENALTY and LOGIN_USERS."""
    return LoginApp(
        Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")),
        Users(users_from_env(os.environ.get("LOGIN_USERS"))),
        limit=os.environ.get("LOGIN_LIMIT", "5/15m"),
        penalty=os.environ.get("LOGIN_PENALTY", "1h"),
    )


app = create_app()
