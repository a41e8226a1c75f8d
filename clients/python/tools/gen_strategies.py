"""Writes ``strategies.py`` and ``aio/strategies.py`` from one template and
one table of strategies, so that the blocking and the asyncio drop-ins
cannot drift apart (the asyncio file is the same code with ``async def``
and ``await``). Real modules, not classes made at import time: type
checkers and readers see ordinary classes.

    python tools/gen_strategies.py          # rewrite both files
    python tools/gen_strategies.py --check  # exit 1 if either is stale

tests/test_generated.py runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, NamedTuple

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "redis_ratelimit"


class Strategy(NamedTuple):
    """One drop-in class: its name, the module's strategy name, its
    docstring and its constructor (empty: none, or the base class's)."""

    cls: str
    name: str
    doc: str
    init: str


GCRA_INIT = '''
    def __init__(self, storage: Any, *, burst: Optional[int] = None, key_prefix: Optional[str] = None) -> None:
        super().__init__(storage, key_prefix=key_prefix)
        self.burst = check_burst(burst)
'''

# The table: every strategy class, in the order limits lists them (GCRA is ours).
STRATEGIES: List[Strategy] = [
    Strategy("FixedWindowRateLimiter", "fixed-window", "", ""),
    Strategy("MovingWindowRateLimiter", "moving-window", "", ""),
    Strategy("SlidingWindowCounterRateLimiter", "sliding-window-counter", "", ""),
    Strategy(
        "GCRARateLimiter",
        "gcra",
        "Not in limits: GCRA (token bucket); ``burst`` defaults to the item's amount.",
        GCRA_INIT,
    ),
]

SYNC_DOC = '''"""Drop-in replacements for ``limits.strategies`` backed by the module.

Code written against ``limits``::

    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(RedisStorage("redis://localhost:6379"))
    limiter.hit(parse("10/second"), "user", "42")

switches by changing the import to
``from redis_ratelimit.strategies import MovingWindowRateLimiter``. The
storage may stay a limits ``RedisStorage`` (its redis-py client and key
prefix are reused), or be a ``redis.Redis`` or a ``redis://`` URI. Keys are
limits' own (``LIMITS:LIMITER/<identifiers>/<amount>/<multiple>/<unit>``),
and each call is one RL.* command: atomic, on the Redis server's clock.

Differences: a limits year is 360 days and is sent as such (the window is
the item's ``get_expiry()`` in seconds); ``hit`` with a cost larger than the
amount is simply denied.

Generated (with aio/strategies.py) by tools/gen_strategies.py: change the
script, not this file.
"""
'''

ASYNC_DOC = '''"""Drop-in replacements for ``limits.aio.strategies`` backed by the module.

``from limits.aio.strategies import MovingWindowRateLimiter`` becomes
``from redis_ratelimit.aio.strategies import MovingWindowRateLimiter``; the
storage may be a ``redis.asyncio.Redis``, a ``redis://`` or
``async+redis://`` URI, or a limits ``RedisStorage(...,
implementation="redispy")``. See :mod:`redis_ratelimit.strategies`.

Generated (with strategies.py) by tools/gen_strategies.py: change the
script, not this file.
"""
'''

# {A}: "async " or "", {W}: "await " or "", {P}: the package's relative
# prefix, {L}: "limits." or "limits.aio.".
BODY = '''
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Type

from redis.exceptions import RedisError

from {P}_compat import WindowStats, _StrategyBase, check_burst, item_key, window_stats

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = [
    "RateLimiter",
{ALL}    "STRATEGIES",
    "WindowStats",
]


class RateLimiter(_StrategyBase):
    """Base class with the method names and arguments of ``{L}strategies.RateLimiter``."""

    _ASYNC = {ASYNC}

    {A}def _run(self, cmd: str, item: "RateLimitItem", identifiers: Any, cost: Optional[int]) -> Any:
        args = self._args(cmd, item, identifiers, cost)
        if args is None:
            return None
        try:
            return {W}self.client.execute_command(*args)
        except RedisError as e:
            failed = self._failed(e)
            if failed is e:
                raise
            raise failed from e

    {A}def hit(self, item: "RateLimitItem", *identifiers: str, cost: int = 1) -> bool:
        """Consume ``cost`` from the limit; True if it was admitted."""
        reply = {W}self._run("RL.HIT", item, identifiers, cost)
        return reply is not None and int(reply[0]) == 1

    {A}def test(self, item: "RateLimitItem", *identifiers: str, cost: int = 1) -> bool:
        """True if a hit of ``cost`` would be admitted now (nothing changes)."""
        reply = {W}self._run("RL.TEST", item, identifiers, cost)
        return reply is not None and int(reply[0]) == 1

    {A}def get_window_stats(self, item: "RateLimitItem", *identifiers: str) -> WindowStats:
        """(reset_time as epoch seconds, remaining), with limits' meaning of
        reset_time per strategy (one RL.STATS, and an RL.TEST where needed)."""
        stats = {W}self._run("RL.STATS", item, identifiers, None)
        cost = self._probe_cost(stats)
        probe = None if cost is None else {W}self._run("RL.TEST", item, identifiers, cost)
        return window_stats(item, self.STRATEGY, stats, probe)

    {A}def clear(self, item: "RateLimitItem", *identifiers: str) -> None:
        """Forget the usage of this limit for these identifiers."""
        try:
            {W}self.client.execute_command("RL.CLEAR", item_key(self.key_prefix, item, identifiers))
        except RedisError as e:
            failed = self._failed(e)
            if failed is e:
                raise
            raise failed from e
{CLASSES}

STRATEGIES: Dict[str, Type[RateLimiter]] = {{
{TABLE}}}
'''


def render(asynchronous: bool) -> str:
    """The text of one of the two files."""
    classes = []
    for s in STRATEGIES:
        doc = f'    """{s.doc}"""\n\n' if s.doc else ""
        classes.append(f'\n\nclass {s.cls}(RateLimiter):\n{doc}    STRATEGY = "{s.name}"\n{s.init}')
    return (ASYNC_DOC if asynchronous else SYNC_DOC) + BODY.format(
        A="async " if asynchronous else "",
        W="await " if asynchronous else "",
        P=".." if asynchronous else ".",
        L="limits.aio." if asynchronous else "limits.",
        ASYNC=asynchronous,
        ALL="".join(f'    "{s.cls}",\n' for s in STRATEGIES),
        CLASSES="".join(classes),
        TABLE="".join(f'    "{s.name}": {s.cls},\n' for s in STRATEGIES),
    )


def outputs() -> Dict[Path, str]:
    """Each generated file and what it must hold."""
    return {
        PACKAGE / "strategies.py": render(False),
        PACKAGE / "aio" / "strategies.py": render(True),
    }


def main(argv: List[str]) -> int:
    stale = [p for p, text in outputs().items() if not p.exists() or p.read_text() != text]
    if "--check" in argv:
        for p in stale:
            print(f"{p} is stale: run python tools/gen_strategies.py", file=sys.stderr)
        return 1 if stale else 0
    for p, text in outputs().items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
