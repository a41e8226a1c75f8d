"""Limit grammar parity, differential: generated strings go to limits 5.8's
own parser and to the module (RL.STATS, which reports each limit's amount
and window). Every string limits parses, the module accepts with the same
meaning, except the documented differences, which the module must then
reject (or, for years, read as 365 days). The client's own parser agrees
with the module on every string."""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

import limits
import pytest
import redis
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from limits.util import SINGLE_EXPR, parse_many

from conftest import Server
from redis_ratelimit._grammar import parse_limits
from redis_ratelimit._results import decode_stats

MAX_AMOUNT = 4294967295
DAY_MS = 86_400_000
MAX_WINDOW_MS = 10 * 365 * DAY_MS
# Python's \s: what limits' grammar (and the module) take as whitespace.
SPACES = [chr(c) for c in range(0x110000) if re.match(r"\s", chr(c))]
LIMITS_UNITS = ["second", "minute", "hour", "day", "month", "year"]
OUR_UNITS = ["ms", "msec", "millisecond", "s", "sec", "m", "min", "h", "hr", "d", "w", "week", "mo", "y", "yr"]

Parsed = List[Tuple[int, int]]  # (amount, window ms) per limit


def module_parse(r: redis.Redis, text: str) -> Optional[Parsed]:
    try:
        reply = r.execute_command("RL.STATS", "parity:k", text)
    except redis.ResponseError as e:
        assert str(e).startswith("invalid limit"), (text, str(e))
        return None
    return [(s.limit, s.window_ms) for s in decode_stats(reply)]


def client_parse(text: str) -> Optional[Parsed]:
    try:
        return [(lim.amount, lim.window_ms) for lim in parse_limits(text)]
    except ValueError:
        return None


def documented_difference(text: str, items: List[limits.RateLimitItem]) -> Optional[str]:
    """Why the module rejects a string limits accepts, if it is one of the
    documented differences (None when it must accept it)."""
    parts = re.split(r"[,;|]", text)
    if ":" in text:
        return "a ':' before a separator (a typo in limits' regular expression)"
    if len(items) > 16:
        return "more than 16 limits"
    for part, item in zip(parts, items):
        m = SINGLE_EXPR.match(part)
        assert m is not None
        if item.amount == 0:
            return "a zero amount"
        if m.group(3) is not None and int(m.group(3)) == 0:
            return "a zero multiple"
        if item.amount > MAX_AMOUNT:
            return "an amount above 4294967295"
    windows = [ours_window(item) for item in items]
    if any(w > MAX_WINDOW_MS for w in windows):
        return "a window over 10 years"
    if len(set(windows)) != len(windows):
        return "two limits with the same window"
    return None


def ours_window(item: limits.RateLimitItem) -> int:
    """limits' window in ms, with the module's 365-day year."""
    seconds = item.GRANULARITY.seconds
    if item.GRANULARITY.name == "year":
        seconds = 365 * 86400
    return item.multiples * seconds * 1000


# Mostly plain spaces, sometimes any of Python's whitespace.
SPACING = st.lists(st.sampled_from(SPACES + [" "] * 8), max_size=2).map("".join)


def case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda ups: "".join(c.upper() if u else c for c, u in zip(word, ups))
    )


@st.composite
def one_limit(draw: st.DrawFn) -> str:
    sp = SPACING
    amount = draw(st.one_of(st.integers(1, 1000), st.integers(1, 1000), st.integers(0, 10**12),
                            st.sampled_from([0, MAX_AMOUNT, MAX_AMOUNT + 1])))
    amount_text = draw(st.sampled_from(["", "", "", "0", "00"])) + str(amount)
    sep = draw(st.one_of(st.just("/"), case("per")))
    multiple = draw(st.one_of(st.none(), st.integers(1, 60), st.integers(0, 5000)))
    limits_units = LIMITS_UNITS + [u + "s" for u in LIMITS_UNITS]
    unit = draw(st.sampled_from(limits_units * 4 + OUR_UNITS + ["fortnight", "x"]))
    unit = draw(case(unit))
    return "".join([
        draw(sp), amount_text, draw(sp), sep, draw(sp),
        "" if multiple is None else str(multiple), draw(sp), unit, draw(sp),
    ])


limit_strings = st.one_of(
    st.lists(one_limit(), min_size=1, max_size=4).flatmap(
        lambda ls: st.lists(st.sampled_from([",", ";", "|", ":,"]), min_size=len(ls) - 1, max_size=len(ls) - 1).map(
            lambda seps: "".join(a + b for a, b in zip(ls, seps + [""]))
        )
    ),
    st.text(alphabet=st.sampled_from(list("0123456789/ perPERsmhdyoaiutwk,;|:") + SPACES[:8]), max_size=24),
)


@pytest.fixture(scope="module")
def rc(server: Server) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit_strings)
@example("10persecond")
@example("10 per second")
@example("5/2 minutes;1000/day")
@example("\u00a010\u3000per\u2003second\u0085")
@example("1/year")
@example("10/0 seconds")
@example("0/second")
@example("1/second:,2/minute")
def test_every_string_limits_parses_means_the_same_here(rc: redis.Redis, text: str) -> None:
    ours = module_parse(rc, text)
    assert client_parse(text) == ours, f"client and module disagree on {text!r}"
    try:
        items = parse_many(text)
    except ValueError:
        event("limits rejects" + (", the module accepts" if ours is not None else ""))
        return  # the module may accept its own forms (10/s, 20/500ms, ...)
    why = documented_difference(text, items)
    if why is not None:
        event(f"documented difference: {why}")
        assert ours is None, f"{text!r}: {why}, yet the module accepted it as {ours}"
        return
    event("limits accepts: same meaning required")
    assert ours == [(item.amount, ours_window(item)) for item in items], text
