"""The limit grammar (section 1 of the module's contract), parsed exactly
as the module parses it, and the strategy names: early errors and the
windows the HTTP headers name. Nothing here does I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

MS_PER_UNIT: Dict[str, int] = {}


def _units(ms: int, *names: str, plural: Sequence[str] = ()) -> None:
    for n in names:
        MS_PER_UNIT[n] = ms
    for n in plural:
        MS_PER_UNIT[n] = ms
        MS_PER_UNIT[n + "s"] = ms


_SECOND = 1000
_DAY = 86400 * _SECOND
_units(1, "ms", plural=("msec", "millisecond"))
_units(_SECOND, "s", plural=("sec", "second"))
_units(60 * _SECOND, "m", plural=("min", "minute"))
_units(3600 * _SECOND, "h", plural=("hr", "hour"))
_units(_DAY, "d", plural=("day",))
_units(7 * _DAY, "w", plural=("week",))
_units(30 * _DAY, "mo", plural=("month",))
_units(365 * _DAY, "y", plural=("yr", "year"))

MAX_AMOUNT = 4294967295
MAX_WINDOW_MS = 10 * 365 * _DAY
MAX_LIMITS = 16

# Whitespace is Python's own \s (as in the limits library, and the module);
# digits and letters are ASCII only; `per` needs no spaces around it.
_LIMIT_RE = re.compile(r"^\s*([0-9]+)\s*(?:/|[pP][eE][rR])\s*([0-9]+)?\s*([a-zA-Z]+)\s*$")

STRATEGIES: Dict[str, str] = {
    "fixed-window": "fixed-window",
    "fixed": "fixed-window",
    "moving-window": "moving-window",
    "moving": "moving-window",
    "sliding-window-counter": "sliding-window-counter",
    "sliding": "sliding-window-counter",
    "gcra": "gcra",
    "token-bucket": "gcra",
}


@dataclass(frozen=True)
class Limit:
    """One limit of a limits string, e.g. ``10/s`` -> amount 10, window 1000 ms."""

    text: str
    amount: int
    window_ms: int

    @property
    def window(self) -> float:
        """The window in seconds."""
        return self.window_ms / 1000.0

    @property
    def name(self) -> str:
        """Name used in the ``RateLimit-Policy`` / ``RateLimit`` headers."""
        return " ".join(self.text.split())


def _bounded_int(digits: str) -> int:
    """A decimal number, or MAX_AMOUNT * 1000 for anything that large (every
    range check then fails the way the module's does)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 12 else MAX_AMOUNT * 1000


def parse_limits(text: str) -> Tuple[Limit, ...]:
    """Parse a limits string exactly as the module does (its section 1).

    Raises ``ValueError`` naming the bad part. The server stays the
    authority; this is for early errors and for the headers' windows.
    """
    if not isinstance(text, str):
        raise TypeError(f"limits must be a str, not {type(text).__name__}")
    parts = re.split(r"[;,|]", text)
    if len(parts) > MAX_LIMITS:
        raise ValueError(f"invalid limit {text!r}: more than {MAX_LIMITS} limits")
    out: List[Limit] = []
    seen: Dict[int, str] = {}
    for part in parts:
        if not part.strip():
            raise ValueError(f"invalid limit {part!r}: empty limit")
        m = _LIMIT_RE.match(part)
        if not m:
            raise ValueError(
                f"invalid limit {part!r}: expected '<amount>/<unit>', "
                "'<amount>/<multiple><unit>' or '<amount> per <multiple> <unit>'"
            )
        # Leading zeros are allowed (as in the module); past 10 significant
        # digits a number is out of range anyway (and Python's int() refuses
        # strings of over 4300 digits).
        amount = _bounded_int(m.group(1))
        multiple = _bounded_int(m.group(2)) if m.group(2) is not None else 1
        unit = m.group(3).lower()
        if unit not in MS_PER_UNIT:
            raise ValueError(f"invalid limit {part!r}: unknown unit {m.group(3)!r}")
        if not 1 <= amount <= MAX_AMOUNT:
            raise ValueError(f"invalid limit {part!r}: amount must be 1 to {MAX_AMOUNT}")
        if multiple < 1:
            raise ValueError(f"invalid limit {part!r}: multiple must be at least 1")
        window_ms = multiple * MS_PER_UNIT[unit]
        if window_ms > MAX_WINDOW_MS:
            raise ValueError(f"invalid limit {part!r}: window longer than 10 years")
        if window_ms in seen:
            raise ValueError(
                f"invalid limit {part!r}: same window as {seen[window_ms]!r}"
            )
        seen[window_ms] = part
        out.append(Limit(part.strip(), amount, window_ms))
    return tuple(out)


_DURATION_RE = re.compile(r"^\s*([0-9]+)?\s*([a-zA-Z]+)\s*$")


def parse_duration(text: str) -> int:
    """A duration written like a limit's window, ``[multiple] unit``
    (``500ms``, ``30s``, ``15m``, ``hour``, ``2 days``), in ms, as the
    module reads ``PENALTY`` (its section 11): 1 ms to 10 years, and a bare
    number (no unit) is an error. Raises ``ValueError``."""
    if not isinstance(text, str):
        raise TypeError(f"a duration must be a str, not {type(text).__name__}")
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r}: expected '[multiple] unit', e.g. '1h', '15m', '500ms'")
    multiple = _bounded_int(m.group(1)) if m.group(1) is not None else 1
    unit = m.group(2).lower()
    if unit not in MS_PER_UNIT:
        raise ValueError(f"invalid duration {text!r}: unknown unit {m.group(2)!r}")
    if multiple < 1:
        raise ValueError(f"invalid duration {text!r}: must be at least 1 ms")
    ms = multiple * MS_PER_UNIT[unit]
    if ms > MAX_WINDOW_MS:
        raise ValueError(f"invalid duration {text!r}: longer than 10 years")
    return ms


def normalize_strategy(strategy: str) -> str:
    try:
        return STRATEGIES[strategy.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown strategy {strategy!r}; expected one of "
            "fixed-window, moving-window, sliding-window-counter, gcra"
        ) from None
