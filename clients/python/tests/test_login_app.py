"""The login-protection recipe end to end (examples/login_app.py,
docs/login-protection.md) on the real module: failed logins are counted
per account (hit before the password is checked, refund on success), and
the attempt after the fifth failure locks the account for the penalty.

Short durations through the app's configuration: 5 failures per 3 s, a
4 s lock (longer than the window, as 15 minutes and an hour are)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, Iterator

import httpx
import pytest
import redis
import redis.asyncio
from starlette.testclient import TestClient

from redis_ratelimit import RateLimiter

from conftest import PKG, ROOT, Server, free_port, stop_pid

sys.path.insert(0, str(PKG / "examples"))
import login_app  # noqa: E402

LIMIT = "5/3s"
PENALTY = "4s"


@pytest.fixture
def accounts() -> Dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {f"alice-{tag}": "wonderland", f"bob-{tag}": "builder"}


@pytest.fixture
def client(server: Server, accounts: Dict[str, str]) -> Iterator[TestClient]:
    app = login_app.LoginApp(redis.asyncio.Redis.from_url(server.url), login_app.Users(accounts),
                             limit=LIMIT, penalty=PENALTY)
    with TestClient(app) as c:  # one event loop for the app's Redis connections
        yield c


def login(client: Any, username: str, password: str) -> httpx.Response:
    return client.post("/login", data={"username": username, "password": password})  # type: ignore[no-any-return]


def stats(r: redis.Redis, account: str) -> Any:
    """The state of the recipe's limit for an account (what the app's limiter sees)."""
    return RateLimiter(r, LIMIT, strategy="moving-window", prefix="login").stats(account.casefold())[0]


def test_successes_never_lock_the_account(client: TestClient, accounts: Dict[str, str], r: redis.Redis) -> None:
    alice = next(iter(accounts))
    statuses = [login(client, alice, "wonderland").status_code for _ in range(20)]
    assert statuses == [200] * 20  # 4 times the limit, in a row
    assert not r.exists(f"login:{alice}")  # every hit was refunded: no state left
    assert stats(r, alice).remaining == 5


def test_five_failures_lock_the_account_for_the_penalty(
    client: TestClient, accounts: Dict[str, str], r: redis.Redis
) -> None:
    alice, bob = accounts
    start = time.monotonic()
    failures = [login(client, alice, f"guess-{i}") for i in range(5)]
    assert [f.status_code for f in failures] == [401] * 5
    assert time.monotonic() - start < 3, "the 5 failures took longer than the 3 s window"
    assert stats(r, alice).remaining == 0 and stats(r, alice).penalty_ms == 0  # full, not locked yet

    # the next attempt, with the right password, is refused and locks the account
    locked = login(client, alice, "wonderland")
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "4"  # the whole penalty is left
    assert locked.json() == {"message": login_app.MESSAGES[429], "retry_after": 4}
    st = stats(r, alice)
    assert 0 < st.penalty_ms <= 4000 and st.penalized and st.remaining == 0

    # still locked: right or wrong password, the same answer, and the lock is not extended
    for password in ("wonderland", "guess-6"):
        again = login(client, alice, password)
        assert again.status_code == 429 and 1 <= int(again.headers["retry-after"]) <= 4
    assert stats(r, alice).penalty_ms <= st.penalty_ms

    # another account is unaffected
    assert login(client, bob, "builder").status_code == 200
    assert login(client, bob, "nope").status_code == 401
    assert stats(r, bob).penalty_ms == 0

    # the lock ends after the penalty (the failures left the 3 s window before)
    time.sleep(stats(r, alice).penalty + 0.1)
    assert stats(r, alice).penalty_ms == 0
    assert login(client, alice, "wonderland").status_code == 200
    assert login(client, alice, "guess-7").status_code == 401
    assert stats(r, alice).remaining == 4  # failures count afresh


def test_only_failures_count(client: TestClient, accounts: Dict[str, str], r: redis.Redis) -> None:
    alice = next(iter(accounts))
    assert [login(client, alice, "x").status_code for _ in range(4)] == [401] * 4
    assert login(client, alice, "wonderland").status_code == 200  # refunded: still 4 failures
    assert stats(r, alice).remaining == 1
    assert login(client, alice, "y").status_code == 401  # the fifth failure
    assert login(client, alice, "wonderland").status_code == 429


def test_unknown_accounts_and_bad_requests(client: TestClient, accounts: Dict[str, str]) -> None:
    ghost = "ghost-" + uuid.uuid4().hex[:8]
    assert login(client, ghost, "wonderland").status_code == 401  # same answer as a wrong password
    assert client.post("/login", data={"username": ghost}).status_code == 400
    assert client.get("/login").status_code == 405
    assert client.get("/nowhere").status_code == 404
    assert b"<form" in client.get("/").content
    alice = next(iter(accounts))
    ok = client.post("/login", json={"username": alice.upper(), "password": "wonderland"})
    assert ok.status_code == 200 and ok.json() == {"message": "welcome"}


def test_example_served_by_uvicorn_configured_by_environment(server: Server) -> None:
    """The module-level app, as `uvicorn login_app:app` serves it, reads its
    settings from the environment."""
    user = "carol-" + uuid.uuid4().hex[:8]
    port = free_port()
    env = dict(os.environ, REDIS_URL=server.url, LOGIN_LIMIT="2/2s", LOGIN_PENALTY="3s",
               LOGIN_USERS=f"{user}:s3cret,dave:pw")
    log = open(os.path.join(server.dir, "login-app.log"), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "login_app:app", "--app-dir", str(PKG / "examples"),
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("uvicorn did not start:\n" + open(log.name, errors="replace").read()[-2000:])
                time.sleep(0.1)
        with httpx.Client(base_url=base) as c:
            def attempt(password: str) -> httpx.Response:
                return c.post("/login", data={"username": user, "password": password})

            assert [attempt("no").status_code for _ in range(2)] == [401, 401]
            locked = attempt("s3cret")
            assert locked.status_code == 429 and locked.headers["retry-after"] == "3"
            assert locked.headers["x-ratelimit-remaining"] == "0"
            time.sleep(3.1)
            assert attempt("s3cret").status_code == 200
    finally:
        stop_pid(proc)
        log.close()


def test_docs_show_the_tested_recipe() -> None:
    """docs/login-protection.md shows the recipe of the example as it is."""
    source = (PKG / "examples" / "login_app.py").read_text()
    begin = source.index("# --- recipe")
    end = source.index("# --- end of recipe ---")
    recipe = source[source.index("\n", begin) + 1:end]
    assert "limiter.refund(account)" in recipe
    doc = (ROOT / "docs" / "login-protection.md").read_text()
    assert recipe in doc
