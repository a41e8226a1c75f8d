"""Fixtures: one redis-server with the module, started and stopped by pid.

The module path is $RL_MODULE, else ../../target/release/libredis_ratelimit.so
relative to clients/python (build it first with `cargo build --release`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import pytest
import redis

HERE = Path(__file__).resolve().parent
PKG = HERE.parent
ROOT = PKG.parent.parent


def module_path() -> Path:
    p = Path(os.environ.get("RL_MODULE") or ROOT / "target/release/libredis_ratelimit.so")
    return p.resolve()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_pid(proc: subprocess.Popen, timeout: float = 10.0, group: bool = False) -> None:  # type: ignore[type-arg]
    """Stop a process we started, by its pid (and its process group if we
    made one for it)."""
    if proc.poll() is not None:
        return
    send = os.killpg if group else os.kill
    try:
        send(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            send(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


@dataclass
class Server:
    host: str
    port: int
    pid: int
    url: str
    dir: str


def start_redis(with_module: bool = True) -> "tuple[subprocess.Popen[bytes], Server]":
    # RL_REDIS_SERVER picks another server binary (make test-servers).
    exe = os.environ.get("RL_REDIS_SERVER") or shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
    args: List[str] = []
    if with_module:
        mod = module_path()
        if not mod.is_file():
            pytest.fail(f"module not found at {mod}: run `cargo build --release` in the project root or set RL_MODULE")
        args = ["--loadmodule", str(mod)]
    d = tempfile.mkdtemp(prefix="rl-pytest-")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", os.path.join(d, "redis.log"), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    c = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log = Path(d, "redis.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"redis-server exited with {proc.returncode}:\n{log}")
        try:
            if c.ping():
                break
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop_pid(proc)
            pytest.fail("redis-server did not answer within 10 s")
        time.sleep(0.02)
    c.close()
    return proc, Server("127.0.0.1", port, proc.pid, f"redis://127.0.0.1:{port}/0", d)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    proc, srv = start_redis()
    try:
        yield srv
    finally:
        stop_pid(proc)
        shutil.rmtree(srv.dir, ignore_errors=True)


@pytest.fixture
def r(server: Server) -> Iterator[redis.Redis]:
    c = redis.Redis(host=server.host, port=server.port)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def key() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def pytest_terminal_summary(terminalreporter: "pytest.TerminalReporter") -> None:
    tr = terminalreporter
    try:
        from test_multiworker import RESULTS
    except ImportError:
        RESULTS = []
    if RESULTS:
        tr.section("multi-worker run (uvicorn, 4 workers, limit 100/hour per key)")
        for r in RESULTS:
            pids = ", ".join(f"{p}:{n}" for p, n in sorted(r["admitted_by_pid"].items()))
            tr.write_line(
                f"{r['strategy']:<24} sent {r['sent']}  admitted {r['admitted']}  denied {r['denied']}  "
                f"other {r['other'] or 0}  in {r['seconds']} s ({r['requests_per_second']} req/s)  admitted by pid {pids}"
            )
    try:
        from test_concurrency_multiworker import CLIENTS, MAX, RESULTS as LEASES, SLEEP
    except ImportError:
        return
    if LEASES:
        tr.section(f"multi-worker concurrency run (4 workers, max {MAX} in flight per key, "
                   f"{SLEEP} s requests, {CLIENTS} clients)")
        for r in LEASES:
            pids = ", ".join(f"{p}:{n}" for p, n in sorted(r["by_pid"].items()))
            tr.write_line(
                f"{r['server']:<9} admitted {r['admitted']}  denied {r['denied']}  most at once {r['peak']} "
                f"(uncapped: {r.get('uncapped_peak', '?')})  in {r['seconds']} s  admitted by pid {pids}"
            )
