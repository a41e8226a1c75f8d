#!/usr/bin/env python3
"""Concurrency leases (`make bench`, after large_log.py): server time of an
RL.ACQUIRE + RL.RELEASE pair against an INCR + DECR pair (the counter an
app would keep by hand, which leaks a slot when a worker dies between the
two), measured in the same rounds on one server started here (127.0.0.1,
free port, stopped by pid); and the memory a held lease takes.

Pairs: a pipeline of PAIRS pairs per round, on KEYS keys (max 10, lease
30 s, a 36-byte token per pair, as a request id would be), interleaved
with the same number of INCR + DECR pairs on other keys; server us per
call from INFO commandstats, medians over ROUNDS rounds. Memory:
`used_memory` before and after holding N leases, on one key (36-byte
tokens) and one lease on each of N keys, against N INCR counter keys.

A benchmark, not a test: it prints figures and exits 0.

Environment: RL_MODULE, REDIS_SERVER as for bench.py.
"""

import os
import statistics
import time
import uuid

from large_log import start_server

QUICK = bool(os.environ.get("BENCH_QUICK"))
ROUNDS = 2 if QUICK else 5
PAIRS = 5_000 if QUICK else 20_000
KEYS = 1_000
MEM_N = 2_000 if QUICK else 10_000


def calls_usec(r, cmd):
    st = r.info("commandstats").get(f"cmdstat_{cmd.lower()}")
    return (st["calls"], st["usec"]) if st else (0, 0)


def run_pairs(r, first, second):
    """PAIRS pairs `first(i)`, `second(i)` pipelined; server us per pair."""
    r.config_resetstat()
    p = r.pipeline(transaction=False)
    for i in range(PAIRS):
        p.execute_command(*first(i))
        p.execute_command(*second(i))
        if i % 1000 == 999:
            p.execute()
    p.execute()
    c1, u1 = calls_usec(r, first(0)[0])
    c2, u2 = calls_usec(r, second(0)[0])
    return u1 / c1 + u2 / c2, u1 / c1, u2 / c2


def used(r):
    time.sleep(0.2)
    return r.info("memory")["used_memory"]


def main():
    proc, r = start_server("rl-bench-leases-")
    try:
        tokens = [str(uuid.UUID(int=i)).encode() for i in range(PAIRS)]
        lease = (lambda i: ["RL.ACQUIRE", f"lease:{i % KEYS}", "10", "30s", tokens[i]],
                 lambda i: ["RL.RELEASE", f"lease:{i % KEYS}", tokens[i]])
        counter = (lambda i: ["INCR", f"ctr:{i % KEYS}"], lambda i: ["DECR", f"ctr:{i % KEYS}"])
        rl, incr = [], []
        for _ in range(ROUNDS):
            rl.append(run_pairs(r, *lease))
            incr.append(run_pairs(r, *counter))
        ratio = statistics.median(a[0] / b[0] for a, b in zip(rl, incr))
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        print("## Concurrency leases\n")
        print(f"Server us per call, medians over {ROUNDS} rounds of {PAIRS:,} pairs pipelined "
              f"on {KEYS:,} keys (RL.ACQUIRE key 10 30s <36-byte token>, then RL.RELEASE; "
              "INCR then DECR on other keys, same rounds).\n")
        print("| pair | first us | second us | pair us | x INCR+DECR |")
        print("|---|---|---|---|---|")
        print(f"| RL.ACQUIRE + RL.RELEASE | {med(rl, 1):.2f} | {med(rl, 2):.2f} | "
              f"{med(rl, 0):.2f} | {ratio:.2f} |")
        print(f"| INCR + DECR | {med(incr, 1):.2f} | {med(incr, 2):.2f} | {med(incr, 0):.2f} | 1.00 |")

        r.flushall()
        base = used(r)
        p = r.pipeline(transaction=False)
        for i in range(MEM_N):
            p.execute_command("RL.ACQUIRE", "big", "10000", "1h", tokens[i % len(tokens)]
                              if i < len(tokens) else str(uuid.UUID(int=i)).encode())
        p.execute()
        one_key = (used(r) - base) / MEM_N
        strlen = r.strlen("big")
        r.flushall()
        base = used(r)
        p = r.pipeline(transaction=False)
        for i in range(MEM_N):
            p.execute_command("RL.ACQUIRE", f"k:{i}", "10", "1h", b"job-1")
        p.execute()
        per_key = (used(r) - base) / MEM_N
        r.flushall()
        base = used(r)
        p = r.pipeline(transaction=False)
        for i in range(MEM_N):
            p.incr(f"k:{i}")
            p.pexpire(f"k:{i}", 3_600_000)
        p.execute()
        ctr = (used(r) - base) / MEM_N
        print(f"\nMemory (`used_memory` delta), N = {MEM_N:,}:\n")
        print("| layout | bytes per lease |")
        print("|---|---|")
        print(f"| {MEM_N:,} leases on one key, 36-byte tokens (value {strlen:,} bytes) | {one_key:.1f} |")
        print(f"| one lease on each of {MEM_N:,} keys, 5-byte token | {per_key:.1f} |")
        print(f"| INCR + PEXPIRE counter key, for comparison | {ctr:.1f} |")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
