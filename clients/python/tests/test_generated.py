"""The asyncio drop-ins are the blocking ones with ``async``/``await``:
both files are generated from one table, and must be what it makes now."""

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent / "tools" / "gen_strategies.py"


def test_strategy_modules_are_generated_from_the_table() -> None:
    run = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_both_modules_offer_the_same_classes() -> None:
    from redis_ratelimit import strategies
    from redis_ratelimit.aio import strategies as aio

    assert list(strategies.STRATEGIES) == list(aio.STRATEGIES)
    for name, cls in strategies.STRATEGIES.items():
        acls = aio.STRATEGIES[name]
        assert cls.__name__ == acls.__name__ and cls.STRATEGY == acls.STRATEGY == name
        assert not cls._ASYNC and acls._ASYNC
