"""Limit parsing, results and headers (no I/O), and the parser agreeing
with the module's own grammar on a real server."""

from __future__ import annotations

import math

import pytest
import redis

from redis_ratelimit import Limit, RateLimitResult, parse_limits

GOOD = [
    ("10/s", [(10, 1000)]),
    ("10 per second", [(10, 1000)]),
    ("5/2 minutes", [(5, 120_000)]),
    ("100/15m", [(100, 900_000)]),
    ("1000/day;10/second", [(1000, 86_400_000), (10, 1000)]),
    ("20/500ms", [(20, 500)]),
    ("3/day", [(3, 86_400_000)]),
    ("60/m, 1000/h | 5000/d", [(60, 60_000), (1000, 3_600_000), (5000, 86_400_000)]),
    ("7 PER 3 Hrs", [(7, 3 * 3_600_000)]),
    ("1/mo", [(1, 30 * 86_400_000)]),
    ("1/y", [(1, 365 * 86_400_000)]),
    ("2/10 msecs", [(2, 10)]),
    ("4294967295/w", [(4294967295, 7 * 86_400_000)]),
    ("1/10y", [(1, 10 * 365 * 86_400_000)]),
]

BAD = [
    "", "10/s;", "10/fortnight", "0/s", "10/0s", "4294967296/s", "10/s;20/1000ms",
    "ten/s", "10", "10/11y", ";".join(["1/%dms" % i for i in range(1, 18)]), "10//s", "-1/s", "10/mss",
]


@pytest.mark.parametrize("text,expected", GOOD)
def test_parse_good(text: str, expected: list) -> None:
    assert [(lim.amount, lim.window_ms) for lim in parse_limits(text)] == expected


@pytest.mark.parametrize("text", BAD)
def test_parse_bad(text: str) -> None:
    with pytest.raises(ValueError):
        parse_limits(text)


def test_parser_agrees_with_module(r: redis.Redis, key: str) -> None:
    for text, _ in GOOD:
        r.execute_command("RL.TEST", key, text)  # accepted by both
    for text in BAD:
        with pytest.raises(redis.ResponseError, match="invalid limit"):
            r.execute_command("RL.TEST", key, text)


def test_result_numbers_and_bool() -> None:
    res = RateLimitResult(False, 10, 0, 1500, 250, parse_limits("10/s"), "fixed-window")
    assert not res and res.retry_after == 0.25 and res.reset_after == 1.5
    never = RateLimitResult(False, 10, 0, 0, -1, parse_limits("10/s"), "fixed-window")
    assert never.retry_after == math.inf


def test_headers_denied() -> None:
    res = RateLimitResult(False, 10, 0, 1500, 250, parse_limits("10/s;1000/day"), "moving-window", at=1000.0)
    h = res.headers()
    assert h["RateLimit-Policy"] == '"10/s";q=10;w=1, "1000/day";q=1000;w=86400'
    assert h["RateLimit"] == '"10/s";r=0;t=2'
    assert h["X-RateLimit-Limit"] == "10"
    assert h["X-RateLimit-Remaining"] == "0"
    assert h["X-RateLimit-Reset"] == "1002"
    assert h["Retry-After"] == "1"
    assert res.headers(reset="delta")["X-RateLimit-Reset"] == "2"


def test_headers_allowed_and_binding() -> None:
    pol = parse_limits("10/s;1000/day")
    res = RateLimitResult(True, 1000, 3, 86_000_000, 0, pol, "fixed-window")
    assert res.binding == Limit("1000/day", 1000, 86_400_000)
    assert "Retry-After" not in res.headers()
    assert res.headers()["RateLimit"] == '"1000/day";r=3;t=86000'
    # same amount, different windows: the reset time tells them apart
    pol2 = parse_limits("5/s;5/h")
    assert RateLimitResult(True, 5, 0, 3_000_000, 0, pol2, "fixed-window").binding == pol2[1]
    assert RateLimitResult(True, 5, 0, 900, 0, pol2, "fixed-window").binding == pol2[0]


def test_headers_never_and_error() -> None:
    pol = parse_limits("10/s")
    assert "Retry-After" not in RateLimitResult(False, 10, 0, 0, -1, pol).headers()
    err = RateLimitResult(False, 10, 0, 0, 1000, pol, error=True)
    assert err.headers() == {"Retry-After": "1"}
    assert RateLimitResult(True, 10, 0, 0, 0, pol, error=True).headers() == {}
