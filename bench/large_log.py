#!/usr/bin/env python3
"""Large moving-window logs (`make bench`, after bench.py): server time of
RL.TEST, RL.STATS and RL.HIT on a 16 MB log that is 0%, 50% and 99%
expired, next to the same calls on a one-hit log, on one server started
here (127.0.0.1, free port, stopped by pid).

The logs are written whole with SET in the module's own layout (a valid
value, as a long run of hits would leave it: a ring of 512-byte blocks):
entries that stopped counting an hour ago and not yet dropped (no hit
since), then live ones. RL.TEST and
RL.STATS change nothing, so each runs N times on the same value; RL.HIT
drops the expired entries it passes, so each of its samples starts from a
fresh copy of the value. Server time per call comes from INFO commandstats.

Target: each within 2x of the one-hit log. A benchmark, not a
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
CMDS = ("RL.TEST", "RL.STATS", "RL.HIT")
SAMPLES = 11  # fresh copies of the log per command
NEXT_CALLS = 50  # calls timed after the first, per copy


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


BLOCK = 512  # the ring's block slot (src/strategy/moving/ring.rs)
BLOCK_HEADER = 16


class Ring:
    """Packs entries into a ring body as the module writes it (see
    src/strategy/moving/ring.rs for the layout): blocks of BLOCK bytes, each headed
    by the time and cumulative cost before its first entry."""

    def __init__(self):
        self.blocks = bytearray()
        self.count = 0
        self.fill = 0
        self.cum = 0
        self.first = None

    def _room(self, n, time):
        if self.count == 0 or self.fill + n > BLOCK - BLOCK_HEADER:
            self.blocks += time.to_bytes(6, "little") + self.cum.to_bytes(8, "little") + bytes(BLOCK - 14)
            self.count += 1
            self.fill = 0
        if self.first is None:
            self.first = time

    def _wrote(self, n):
        at = (self.count - 1) * BLOCK
        start = at + BLOCK_HEADER + self.fill
        self.fill += n
        self.blocks[at + 14:at + 16] = self.fill.to_bytes(2, "little")
        return start

    def entry(self, raw, time, cost=1):
        self._room(len(raw), time)
        start = self._wrote(len(raw))
        self.blocks[start:start + len(raw)] = raw
        self.cum += cost

    def run(self, n, time):
        """`n` hits of cost 1 at `time`, one byte each (delta 0)."""
        while n:
            self._room(1, time)
            k = min(n, BLOCK - BLOCK_HEADER - self.fill)
            self._wrote(k)  # the entry bytes are zeros already
            self.cum += k
            n -= k

    def body(self, last):
        head = b"".join([
            self.cum.to_bytes(8, "little"),  # cum_end
            last.to_bytes(6, "little"),
            (0).to_bytes(8, "little"),  # head_cum
            self.first.to_bytes(6, "little"),  # head_time
            (0).to_bytes(2, "little"),  # head_off
            self.fill.to_bytes(2, "little"),  # tail_fill
            BLOCK.to_bytes(2, "little"),
            self.count.to_bytes(4, "little"),  # slots
            (0).to_bytes(4, "little"),  # head
            self.count.to_bytes(4, "little"),  # count
        ])
        return head + bytes(self.blocks)


def crafted_log(long_ago, recent, dead, live):
    """A moving-window record of `dead` + `live` one-byte entries: `dead`
    at `long_ago`, then `live` at `recent`. One entry is a flat log (tag
    0xFA, as this build writes one), more a ring (tag 0xFD)."""
    if dead + live == 1:
        head = b"".join([
            (1).to_bytes(4, "little"),  # used
            recent.to_bytes(6, "little"),  # last
            recent.to_bytes(6, "little"),  # first
            (0).to_bytes(4, "little"),  # head
            (1).to_bytes(4, "little"),  # len
            (1).to_bytes(4, "little"),  # cap
        ])
        return b"\xfa" + varint(WINDOW_MS) + head + b"\x00"
    ring = Ring()
    if dead:
        ring.run(dead, long_ago)
        ring.entry(varint((recent - long_ago) << 1), recent)
        live -= 1
    ring.run(live, recent)
    return b"\xfd" + varint(WINDOW_MS) + ring.body(recent)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def usec_per_call(r, cmd):
    st = r.info("commandstats").get(f"cmdstat_{cmd.lower()}")
    return st["usec_per_call"] if st else None


def start_server(prefix):
    """A private redis-server with the module (persistence off) on a free
    127.0.0.1 port: its process (stop it by pid) and a client."""
    d = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                             "--save", "", "--appendonly", "no", "--loadmodule", MODULE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    r = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(200):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, r


def main():
    proc, r = start_server("rl-bench-largelog-")
    try:
        sec, usec = r.time()
        now = sec * 1000 + usec // 1000
        long_ago, recent = now - WINDOW_MS - 60_000, now - 60_000
        states = [("one hit", crafted_log(long_ago, recent, 0, 1))]
        for share in (0.0, 0.5, 0.99):
            dead = int(LOG_BYTES * share)
            states.append((f"16 MB, {share:.0%} expired", crafted_log(long_ago, recent, dead, LOG_BYTES - dead)))
        rows = []
        warm = ("RL.HIT", "warm", LIMIT, "STRATEGY", "moving")
        filler = bytes(LOG_BYTES)
        for name, value in states:
            row = {"state": name, "bytes": len(value)}
            for cmd in CMDS:
                cold, steady = [], []
                for _ in range(SAMPLES):
                    r.set("log", value, px=WINDOW_MS)
                    # The same for every log: writing 16 MB elsewhere evicts
                    # the CPU caches (the log's bytes go cold, as for a key
                    # not called for a while), then one hit on a small key
                    # brings the module's code back, as on a server that
                    # serves hits all the time.
                    r.set("filler", filler)
                    r.execute_command(*warm)
                    r.config_resetstat()
                    reply = r.execute_command(cmd, "log", LIMIT, "STRATEGY", "moving")
                    if cmd == "RL.HIT":
                        assert reply[0] == 1, reply
                    cold.append(usec_per_call(r, cmd))
                    r.config_resetstat()
                    for _ in range(NEXT_CALLS):
                        r.execute_command(cmd, "log", LIMIT, "STRATEGY", "moving")
                    steady.append(usec_per_call(r, cmd))
                row[(cmd, "cold")] = statistics.median(cold)
                row[(cmd, "warm")] = statistics.median(steady)
            rows.append(row)
        base = rows[0]
        cols = [(cmd, kind) for cmd in CMDS for kind in ("cold", "warm")]
        print("## Large moving-window logs\n")
        print(f"{REDIS_SERVER} ({subprocess.run([REDIS_SERVER, '--version'], capture_output=True, text=True).stdout.strip()[:60]}); "
              f"server us per call (commandstats), medians over {SAMPLES} fresh copies of the log. cold: the first "
              f"call after 16 MB were written elsewhere and one hit on another key; warm: the mean of the "
              f"{NEXT_CALLS} calls after it. `x1` is the ratio to the one-hit log (target <= 2).\n")
        print("| log | bytes | " + " | ".join(f"{c} {k} us | x1" for c, k in cols) + " |")
        print("|---|---|" + "---|---|" * len(cols))
        for row in rows:
            cells = []
            for col in cols:
                cells += [f"{row[col]:.1f}", f"{row[col] / base[col]:.1f}"]
            print(f"| {row['state']} | {row['bytes']:,} | " + " | ".join(cells) + " |")
    finally:
        proc.terminate()
        proc.wait(15)
        subprocess.run(["rm", "-rf", d])
    return 0


if __name__ == "__main__":
    sys.exit(main())
