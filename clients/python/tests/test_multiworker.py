"""Several worker processes share limits exactly: the example Starlette app
(examples/multiworker_app.py) served by uvicorn with 4 workers, hit at full
speed by examples/hammer.py, admits exactly the limit in total."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Set

import httpx
import pytest

from conftest import PKG, Server, free_port, stop_pid

EXAMPLES = PKG / "examples"
WORKERS = 4
LIMIT = 100
REQUESTS = 400
STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter", "gcra")

RESULTS: list = []  # printed in the terminal summary (conftest)


@contextlib.contextmanager
def serving(argv: List[str], env: Dict[str, str], log_path: str, label: str) -> Iterator[str]:
    """Runs a multi-worker HTTP server (``argv``, with ``{port}`` for a free
    port) in its own process group, waits until all WORKERS answered
    /health, yields its base URL, and stops the group by pid."""
    port = free_port()
    log = open(log_path, "wb")
    proc = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        pids = wait_for_workers(proc, base, deadline=time.monotonic() + 25)
        if len(pids) < WORKERS:
            pytest.fail(f"{label}: only {len(pids)} of {WORKERS} workers answered within 25 s: {pids}\n"
                        + open(log.name, errors="replace").read()[-3000:])
        yield base
    finally:
        stop_pid(proc, timeout=10, group=True)
        log.close()


@pytest.fixture(scope="module")
def uvicorn_server(server: Server) -> Iterator[str]:
    env = dict(os.environ, REDIS_URL=server.url, RL_LIMIT=f"{LIMIT}/hour")
    argv = [sys.executable, "-m", "uvicorn", "multiworker_app:app", "--app-dir", str(EXAMPLES),
            "--host", "127.0.0.1", "--port", "{port}", "--workers", str(WORKERS), "--no-access-log"]
    with serving(argv, env, os.path.join(server.dir, "uvicorn.log"), "uvicorn") as base:
        yield base


def wait_for_workers(proc: subprocess.Popen, base: str, deadline: float) -> Set[str]:  # type: ignore[type-arg]
    """Poll /health on fresh connections until every worker has answered."""
    pids: Set[str] = set()

    def probe(_: int) -> str:
        try:
            with httpx.Client(timeout=2) as c:
                return c.get(base + "/health").headers.get("x-worker-pid", "")
        except httpx.HTTPError:
            return ""

    with ThreadPoolExecutor(16) as ex:
        while time.monotonic() < deadline and len(pids) < WORKERS:
            if proc.poll() is not None:
                pytest.fail(f"uvicorn exited with {proc.returncode}")
            found = {p for p in ex.map(probe, range(32)) if p}
            pids |= found
            if not found:
                time.sleep(0.1)
    return pids


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_four_workers_admit_exactly_the_limit(uvicorn_server: str, strategy: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "hammer.py"), "--url", f"{uvicorn_server}/{strategy}/hello",
         "-n", str(REQUESTS), "-c", "64"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    res: Dict = json.loads(out.stdout.strip().splitlines()[-1])
    RESULTS.append(dict(strategy=strategy, **{k: res[k] for k in ("sent", "admitted", "denied", "other", "admitted_by_pid", "seconds", "requests_per_second")}))
    assert res["other"] == {}
    assert (res["sent"], res["admitted"], res["denied"]) == (REQUESTS, LIMIT, REQUESTS - LIMIT)


def test_admissions_came_from_several_workers() -> None:
    pids: Set[str] = set()
    for r in RESULTS:
        pids |= set(r["admitted_by_pid"])
    if len(RESULTS) < len(STRATEGIES):
        pytest.skip("the load runs did not all run")
    assert len(pids) >= 2, RESULTS
