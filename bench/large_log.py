#!/usr/bin/env python3
"""Large moving-window logs (`make bench`, after bench.py): server time of
RL.TEST, RL.STATS and RL.HIT on a 16 MB log that is 0%, 50% and 99%
expired, next to the same calls on a one-hit log, on one server started
here (127.0.0.1, free port, stopped by pid).

The logs are written whole with SET in the module's own layout (a valid
value, as a long run of hits would leave it): entries that stopped counting
an hour ago and not yet dropped (no hit since), then live ones. RL.TEST and
RL.STATS change nothing, so each runs N times on the same value; RL.HIT
drops the expired entries it passes, so each of its samples starts from a
fresh copy of the value. Server time per call comes from INFO commandstats.

Target (issue 16): each within 2x of the one-hit log. A benchmark, not a
test: it prints figures and exits 0 whether the target is met or not.

Environment: RL_MODULE, REDIS_SERVER as for bench.py.
"""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.path.abspath(os.environ.get("RL_MODULE", os.path.join(ROOT, "target/release/libredis_ratelimit.so")))
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
LOG_BYTES = 16_000_000  # under the default moving-window-max-bytes (16 MiB)
WINDOW_MS = 3_600_000
LIMIT = f"100000000/{WINDOW_MS}ms"
READS = 20  # calls per read sample
HITS = 5  # fresh copies per RL.HIT sample


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def crafted_log(long_ago, recent, dead, live):
    """A moving-window record: `dead` one-byte entries at `long_ago`, then
    `live` at `recent` (see tests/large_state.rs for the layout)."""
    jump = varint((recent - long_ago) << 1)
    log = b"\x00" * dead + jump + b"\x00" * (live - 1) if dead else b"\x00" * live
    first = long_ago if dead else recent
    head = b"".join([
        (dead + live).to_bytes(4, "little"),  # used
        recent.to_bytes(6, "little"),  # last
        first.to_bytes(6, "little"),  # first
        (0).to_bytes(4, "little"),  # head
        len(log).to_bytes(4, "little"),  # len
        len(log).to_bytes(4, "little"),  # cap
    ])
    return b"\xfa" + varint(WINDOW_MS) + head + log


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def usec_per_call(r, cmd):
    st = r.info("commandstats").get(f"cmdstat_{cmd.lower()}")
    return st["usec_per_call"] if st else None


def main():
    d = tempfile.mkdtemp(prefix="rl-bench-largelog-")
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                             "--save", "", "--appendonly", "no", "--loadmodule", MODULE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        r = redis.Redis(port=port)
        for _ in range(200):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        sec, usec = r.time()
        now = sec * 1000 + usec // 1000
        long_ago, recent = now - WINDOW_MS - 60_000, now - 60_000
        states = [("one hit", crafted_log(long_ago, recent, 0, 1))]
        for share in (0.0, 0.5, 0.99):
            dead = int(LOG_BYTES * share)
            states.append((f"16 MB, {share:.0%} expired", crafted_log(long_ago, recent, dead, LOG_BYTES - dead)))
        rows = []
        for name, value in states:
            row = {"state": name, "bytes": len(value)}
            r.set("log", value, px=WINDOW_MS)
            for cmd in ("RL.TEST", "RL.STATS"):
                r.config_resetstat()
                for _ in range(READS):
                    r.execute_command(cmd, "log", LIMIT, "STRATEGY", "moving")
                row[cmd] = usec_per_call(r, cmd)
            samples = []
            for _ in range(HITS):
                r.set("log", value, px=WINDOW_MS)
                r.config_resetstat()
                reply = r.execute_command("RL.HIT", "log", LIMIT, "STRATEGY", "moving")
                assert reply[0] == 1, reply
                samples.append(usec_per_call(r, "RL.HIT"))
            row["RL.HIT"] = statistics.median(samples)
            rows.append(row)
        base = rows[0]
        print("## Large moving-window logs\n")
        print(f"{REDIS_SERVER} ({subprocess.run([REDIS_SERVER, '--version'], capture_output=True, text=True).stdout.strip()[:60]}); "
              f"server us per call (commandstats): reads averaged over {READS} calls, RL.HIT the median of "
              f"{HITS} first hits on fresh copies; `x1` is the ratio to the one-hit log (target <= 2).\n")
        print("| log | bytes | RL.TEST us | x1 | RL.STATS us | x1 | RL.HIT us | x1 |")
        print("|---|---|---|---|---|---|---|---|")
        for row in rows:
            cells = []
            for cmd in ("RL.TEST", "RL.STATS", "RL.HIT"):
                cells += [f"{row[cmd]:.1f}", f"{row[cmd] / base[cmd]:.1f}"]
            print(f"| {row['state']} | {row['bytes']:,} | " + " | ".join(cells) + " |")
    finally:
        proc.terminate()
        proc.wait(15)
        subprocess.run(["rm", "-rf", d])
    return 0


if __name__ == "__main__":
    sys.exit(main())
