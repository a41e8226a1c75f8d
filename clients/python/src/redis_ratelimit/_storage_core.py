"""What the ``limits`` storage (sync and asyncio) sends and how it reads the
replies. Pure: no I/O, so both storages share it and it is tested alone.

``limits`` strategies call a storage with a key built by
``RateLimitItem.key_for`` (``LIMITER/<identifiers...>/<amount>/<multiple>/<granularity>``)
and, depending on the call, the window in seconds and the amount. The
storage turns each call into one RL.* command on the key, with the limit
rebuilt from those values, so the module decides on its own clock.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, List, Optional, Tuple, Union

from ._results import decode_stats

__all__ = [
    "key_limit",
    "limit_text",
    "hit_args",
    "stats_args",
    "incr_count",
    "probe_cost",
    "next_free_in",
]

Args = List[Union[str, int]]

FIXED = "fixed-window"
MOVING = "moving-window"
SLIDING = "sliding-window-counter"


MAX_COST = 4294967295
"""The module's largest cost; a larger one can never pass."""


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (SCAN MATCH)."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def limit_text(amount: int, expiry: int) -> Optional[str]:
    """The module's limit for ``amount`` per ``expiry`` seconds; None for an
    amount of 0 (limits accepts it; it never admits anything). A window of
    0 seconds is 1 second, as in limits."""
    if amount <= 0:
        return None
    return f"{amount}/{max(1, int(expiry))}s"


def key_limit(key: str, expiry: Optional[int] = None) -> Optional[str]:
    """The limit a limits key stands for: its amount is the key's third
    part from the end; the window is ``expiry`` when the caller gave it,
    else the key's multiple times its granularity (limits' own seconds: a
    year is 360 days there). Raises ValueError for a key limits did not
    build."""
    parts = key.rsplit("/", 3)
    if len(parts) != 4:
        raise ValueError(f"not a limits key: {key!r}")
    _, amount, multiple, granularity = parts
    try:
        n = int(amount)
        if expiry is None:
            from limits.limits import TIME_TYPES

            expiry = int(multiple) * TIME_TYPES[granularity].seconds
    except (KeyError, ValueError):
        raise ValueError(f"not a limits key: {key!r}") from None
    return limit_text(n, expiry)


def hit_args(cmd: str, key: str, text: str, strategy: str, amount: int) -> Args:
    """RL.HIT / RL.TEST of ``amount`` on one limit."""
    args: Args = [cmd, key, text, "STRATEGY", strategy]
    if amount != 1:
        args += ["COST", amount]
    return args


def stats_args(key: str, text: str, strategy: str) -> Args:
    return ["RL.STATS", key, text, "STRATEGY", strategy]


def admitted(reply: Any) -> bool:
    return int(reply[0]) == 1


def incr_count(reply: Any, amount: int) -> int:
    """What limits' ``incr`` returns, from RL.HIT's reply: the usage after
    an admitted hit; for a denied one (which the module does not count) the
    usage it would have reached, which is above the amount, so limits'
    ``incr(...) <= amount`` reads it as denied."""
    limit, remaining = int(reply[1]), int(reply[2])
    used = limit - remaining
    return used if admitted(reply) else max(used + amount, limit + 1)


def used_and_reset(reply: Any) -> Tuple[int, float, float]:
    """(usage, seconds until the limit is whole again, seconds until a hit
    of 1 passes) of the one limit of an RL.STATS reply."""
    st = decode_stats(reply)[0]
    return st.limit - st.remaining, st.reset_after_ms / 1000.0, st.retry_after_ms / 1000.0


def probe_cost(stats: Any, strategy: str) -> Optional[int]:
    """The cost of an RL.TEST whose wait is the time until the next unit of
    a moving or sliding window frees up (one more than remains), or None
    when the RL.STATS reply already says it (full: the wait of a hit of 1),
    nothing is held, or the strategy does not need it."""
    if strategy not in (MOVING, SLIDING):
        return None
    st = decode_stats(stats)[0]
    if st.limit - st.remaining <= 0 or st.remaining == 0:
        return None
    return st.remaining + 1


def next_free_in(stats: Any, strategy: str, window_s: float, probe: Any = None) -> float:
    """limits' ``reset_time`` of one limit, in seconds from now, from the
    RL.STATS reply and, when :func:`probe_cost` asked for it, the RL.TEST
    reply. Fixed window (and GCRA): when the limit is whole again. A full
    moving or sliding window: when a hit of 1 passes again (so a 429's
    Retry-After is a time the retry is admitted; through limits' storage
    interface too, see :func:`limits_sliding_window`). Otherwise the moving
    window: when the oldest counted hit leaves (a whole window from now when
    nothing is held, as limits says); the sliding window counter: when the
    next unit frees up or the current window ends, whichever comes first."""
    st = decode_stats(stats)[0]
    used, reset_in, retry_in = used_and_reset(stats)
    if used <= 0:
        return window_s if strategy == MOVING else 0.0
    if strategy not in (MOVING, SLIDING):
        return reset_in
    if st.remaining == 0 or probe is None:
        return retry_in
    free_in = int(probe[4]) / 1000.0
    if strategy == MOVING:
        return free_in
    return min(free_in, current_end_in(stats, window_s))


def current_end_in(stats: Any, window_s: float) -> float:
    """Seconds until the current window of a sliding window counter ends:
    usage leaves the estimate one window after the window it is in, so the
    time until the limit is whole again is one window more than this while
    the current window holds usage."""
    _, reset_in, _ = used_and_reset(stats)
    return reset_in - window_s if reset_in > window_s else reset_in


#: The previous-window count handed to limits with the real wait as its
#: TTL (see :func:`limits_sliding_window`): small enough that limits'
#: floor of the weighted count never moves, large enough to be non-zero.
WAIT_CARRIER = 1e-9


def limits_sliding_window(stats: Any, window_s: float, probe: Any = None) -> Tuple[float, float, int, float]:
    """What ``get_sliding_window`` hands limits' SlidingWindowCounterRateLimiter
    so that its arithmetic gives back the module's figures:

    - the module's usage (its exact estimate, weighing the previous window
      itself) as the current window's count, so limits' ``test`` and
      ``remaining`` (``L - floor(weighted)``) are the module's;
    - the time the next unit frees up (when full: when a hit of 1 passes),
      which may lie past the current window's end, carried by a previous
      window of count ``WAIT_CARRIER`` whose TTL is that time: limits
      computes ``ttl % (window / count)``, which is the time itself; the
      current window's TTL is that time too when it is less than a window,
      else infinite, which limits turns into NaN and ``min()`` passes over. The carrier adds ``1e-9 * ttl / window`` (under
      ``2e-9``) to the weighted count, which ``floor`` never sees.
    """
    used = used_and_reset(stats)[0]
    if used <= 0:
        return 0, 0.0, 0, 0.0
    wait = next_free_in(stats, SLIDING, window_s, probe)
    # A wait within the window fits limits' current TTL as it is.
    return WAIT_CARRIER, wait, used, (wait if wait < window_s else math.inf)
