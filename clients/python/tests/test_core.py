"""Limit parsing, results and headers (no I/O), and the parser agreeing
with the module's own grammar on a real server."""

from __future__ import annotations

import math

import pytest
import redis

from redis_ratelimit import Limit, RateLimiter, RateLimitResult, parse_limits
from redis_ratelimit._config import penalty_arg
from redis_ratelimit._grammar import parse_duration
from redis_ratelimit._results import decode_result, decode_stats

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


# -- penalties and refunds: arguments and decoding (no I/O), and the module's
# own PENALTY grammar on a real server

GOOD_DURATIONS = [("500ms", 500), ("30s", 30_000), ("15m", 900_000), ("1h", 3_600_000), ("hour", 3_600_000),
                  ("2 days", 172_800_000), (" 3 Secs ", 3000), ("1ms", 1), ("10y", 10 * 365 * 86_400_000),
                  ("2 W", 14 * 86_400_000), ("1mo", 30 * 86_400_000), ("007min", 420_000)]
BAD_DURATIONS = ["10", "", "0s", "0ms", "11y", "1fortnight", "-1s", "1.5h", "1h30m", "1/h", "h1", "3651d"]


@pytest.mark.parametrize("text,ms", GOOD_DURATIONS)
def test_duration_good(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_duration_bad(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_parser_agrees_with_module(r: redis.Redis, key: str) -> None:
    for text, _ in GOOD_DURATIONS:
        r.execute_command("RL.TEST", key, "1/s", "PENALTY", text)
    for text in BAD_DURATIONS:
        with pytest.raises(redis.ResponseError, match="invalid PENALTY"):
            r.execute_command("RL.TEST", key, "1/s", "PENALTY", text)
    for cmd in ("RL.STATS", "RL.REFUND"):
        with pytest.raises(redis.ResponseError, match="syntax error near 'PENALTY'"):
            r.execute_command(cmd, key, "1/s", "PENALTY", "1h")


def test_penalty_argument() -> None:
    from datetime import timedelta

    assert penalty_arg("1h") == ("1h", 3_600_000)
    assert penalty_arg(" 15 minutes ") == ("15 minutes", 900_000)
    assert penalty_arg(3600) == ("3600000ms", 3_600_000)
    assert penalty_arg(1.1) == ("1100ms", 1100)
    assert penalty_arg(0.001) == ("1ms", 1)
    assert penalty_arg(timedelta(hours=1, microseconds=1500)) == ("3600002ms", 3_600_002)
    for bad in ("10", "0s", 0, 0.0004, -5, float("inf"), float("nan"), timedelta(0), 10 * 366 * 86400):
        with pytest.raises(ValueError):
            penalty_arg(bad)  # type: ignore[arg-type]
    for wrong in (True, None, [1], b"1h"):
        with pytest.raises(TypeError):
            penalty_arg(wrong)  # type: ignore[arg-type]


def test_penalty_sent_with_hit_and_test_only() -> None:
    lim = RateLimiter(None, "5/15m", strategy="gcra", burst=3, penalty="1h")  # type: ignore[arg-type]
    cfg = lim._cfg
    assert cfg.args("RL.HIT", "a", 1) == ["RL.HIT", "rl:a", "5/15m", "STRATEGY", "gcra", "BURST", 3, "PENALTY", "1h"]
    assert cfg.args("RL.TEST", "a", 0)[-4:] == ["BURST", 3, "PENALTY", "1h"]
    assert cfg.args("RL.REFUND", "a", 1) == ["RL.REFUND", "rl:a", "5/15m", "STRATEGY", "gcra", "BURST", 3]
    assert cfg.args("RL.REFUND", "a", 7)[5:7] == ["COST", 7]
    assert "PENALTY" not in cfg.args("RL.STATS", "a", None)
    with pytest.raises(ValueError, match="from 1"):
        cfg.args("RL.REFUND", "a", 0)
    assert RateLimiter(None, "1/s").penalty is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid penalty"):
        RateLimiter(None, "1/s", penalty="10")  # type: ignore[arg-type]


def test_penalized_is_derived_from_a_denied_hit_with_penalty() -> None:
    pol = parse_limits("5/15m")
    assert decode_result([0, 5, 0, 3_600_000, 3_600_000], pol, "fixed-window", True).penalized
    assert not decode_result([0, 5, 0, 3_600_000, -1], pol, "fixed-window", True).penalized  # cost > limit
    assert not decode_result([1, 5, 4, 900_000, 0], pol, "fixed-window", True).penalized
    assert not decode_result([0, 5, 0, 3_600_000, 3_600_000], pol, "fixed-window", False).penalized
    lim = RateLimiter(None, "5/15m", penalty="1h")  # type: ignore[arg-type]
    assert lim._cfg.locks_when_denied("RL.HIT", 1)
    assert not lim._cfg.locks_when_denied("RL.HIT", 0)  # a denied COST 0 never starts a penalty
    assert not lim._cfg.locks_when_denied("RL.TEST", 1) and not lim._cfg.locks_when_denied("RL.REFUND", 1)
    assert not RateLimiter(None, "5/15m")._cfg.locks_when_denied("RL.HIT", 1)  # type: ignore[arg-type]


def test_headers_under_a_penalty() -> None:
    # 5/15m locked for an hour, 3,599,001 ms left: every time is at least that
    res = RateLimitResult(False, 5, 0, 3_599_001, 3_599_001, parse_limits("5/15m"), "moving-window",
                          penalized=True, at=1000.0)
    h = res.headers()
    assert h["Retry-After"] == "3600"  # rounded up: never before the lock ends
    assert h["RateLimit"] == '"5/15m";r=0;t=3600'
    assert h["X-RateLimit-Reset"] == str(1000 + 3600) and h["X-RateLimit-Remaining"] == "0"
    assert h["RateLimit-Policy"] == '"5/15m";q=5;w=900'


def test_stats_decode_penalty_ms() -> None:
    resp2 = [[b"limit", 5, b"window_ms", 900_000, b"strategy", b"fixed-window", b"remaining", 0,
              b"reset_after_ms", 3_000_000, b"retry_after_ms", 3_000_000, b"penalty_ms", 3_000_000]]
    resp3 = [{b"limit": 5, b"window_ms": 900_000, b"strategy": b"fixed-window", b"remaining": 0,
              b"reset_after_ms": 3_000_000, b"retry_after_ms": 3_000_000, b"penalty_ms": 3_000_000}]
    for reply in (resp2, resp3):
        (st,) = decode_stats(reply)
        assert st.penalty_ms == 3_000_000 and st.penalty == 3000.0 and st.penalized
    old = [[b"limit", 5, b"window_ms", 900_000, b"strategy", b"fixed-window", b"remaining", 5,
            b"reset_after_ms", 0, b"retry_after_ms", 0]]  # a module without penalties
    assert decode_stats(old)[0].penalty_ms == 0 and not decode_stats(old)[0].penalized
