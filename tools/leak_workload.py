#!/usr/bin/env python3
"""Writes a mixed RL.* workload as raw RESP, for `redis-cli --pipe`.

    tools/leak_workload.py N SEED > cmds.resp     (prints the expected
                                                   error count on stderr)

All seven commands, all strategies, one to three limits, COST 0 and large,
BURST, PENALTY, refunds, leases, RL.CLEAR with and without limits, moving-window logs grown past the
in-place (DMA) threshold, and on purpose: bad limits, bad options, wrong
arity, non-UTF-8 bytes and WRONGTYPE on keys of other types (their error
paths allocate too); keyspace notifications on, INFO ratelimit and CONFIG
RESETSTAT (alone and in MULTI) now and then. Deterministic for a given seed.
"""
import random
import sys

STRATEGIES = ["fixed-window", "moving-window", "sliding-window-counter", "gcra"]
LIMITS = ["10/s", "100/10s", "5/100ms", "1000/m;10/s", "3/s|20/m|100/h",
          "50/2s", "4294967295/d", "1/ms", "7 per 3 seconds", "2/500ms;30/5s"]
BAD = [
    ["RL.HIT", "k", "10/fortnight"],
    ["RL.TEST", "k", "0/s"],
    ["RL.STATS", "k", "10/s;20/1000ms"],
    ["RL.HIT", "k", "10/s", "COST", "-1"],
    ["RL.HIT", "k", "10/s", "STRATEGY", "leaky"],
    ["RL.TEST", "k", "10/s", "BURST", "3"],
    ["RL.HIT", "k", "10/s", "STRATEGY", "gcra", "BURST", "0"],
    ["RL.STATS", "k", "10/s", "COST", "1"],
    ["RL.CLEAR", "k", "10/s", "BURST", "1"],
    ["RL.HIT"],
    ["RL.CLEAR"],
    ["RL.HIT", b"k\xff", b"\xff\xfe/s"],
    ["RL.HIT", "k", "1/s;" * 17],
    ["RL.HIT", "k", "x" * 5000],
    ["RL.HIT", "k", "10/s", "PENALTY", "5"],
    ["RL.HIT", "k", "10/s", "PENALTY", "x" * 5000],
    ["RL.REFUND", "k", "10/s", "COST", "0"],
    ["RL.REFUND", "k", "10/s", "PENALTY", "1s"],
    ["RL.REFUND", "k"],
    ["RL.ACQUIRE", "k", "0", "1s", "t"],
    ["RL.ACQUIRE", "k", "1", "5", "t"],
    ["RL.ACQUIRE", "k", "1", "1s", "t" * 129],
    ["RL.RELEASE", "k"],
]


def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def main():
    n = int(sys.argv[1])
    rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 6)
    out = sys.stdout.buffer
    errors = 0
    # Keys of other types: every RL.* command on them is WRONGTYPE.
    # (and keyspace notifications on, so that every write fires them)
    setup = [["SET", "other:str", "hello"], ["RPUSH", "other:list", "a"],
             ["HSET", "other:hash", "f", "v"], ["SET", "other:bin", b"\xf9\x00\x01"],
             ["CONFIG", "SET", "notify-keyspace-events", "KEA"]]
    for s in setup:
        out.write(enc(s))
    sent = len(setup)
    while sent < n:
        r = rnd.random()
        if r < 0.004:
            # The INFO section, and RESETSTAT (its pending reset is settled
            # through Redis' command statistics), also inside MULTI.
            out.write(enc(rnd.choice([["INFO", "ratelimit"], ["CONFIG", "RESETSTAT"]])))
        elif r < 0.005:
            for cmd in (["MULTI"], ["CONFIG", "RESETSTAT"], ["EXEC"]):
                out.write(enc(cmd))
            sent += 2
        elif r < 0.05:
            out.write(enc(rnd.choice(BAD)))
            errors += 1
        elif r < 0.08:
            k = rnd.choice(["other:str", "other:list", "other:hash", "other:bin"])
            cmd = rnd.choice(["RL.HIT", "RL.TEST", "RL.STATS"])
            out.write(enc([cmd, k, "10/s"]))
            errors += 1
        elif r < 0.12:
            # Grow a moving-window log past 512 bytes (the in-place path).
            k = "big:%d" % rnd.randrange(5)
            out.write(enc(["RL.HIT", k, "100000/10s", "STRATEGY", "moving-window",
                           "COST", str(rnd.choice([1, 1, 2, 300]))]))
        else:
            key = "rl:%d" % rnd.randrange(20000)
            lim = rnd.choice(LIMITS)
            st = rnd.choice(STRATEGIES)
            c = rnd.random()
            if c < 0.45:
                args = ["RL.HIT", key, lim, "STRATEGY", st]
                if rnd.random() < 0.3:
                    args += ["COST", str(rnd.choice([0, 1, 2, 5, 4294967295]))]
                if st == "gcra" and rnd.random() < 0.3:
                    args += ["BURST", str(rnd.choice([1, 2, 10]))]
                if rnd.random() < 0.2:
                    args += ["PENALTY", rnd.choice(["50ms", "1s", "2 minutes"])]
            elif c < 0.49:
                tok = "job-%d" % rnd.randrange(50)
                if rnd.random() < 0.7:
                    args = ["RL.ACQUIRE", "lease:%d" % rnd.randrange(50), str(rnd.choice([1, 3, 10])),
                            rnd.choice(["5ms", "1s", "1h"]), tok]
                else:
                    args = ["RL.RELEASE", "lease:%d" % rnd.randrange(50), tok]
            elif c < 0.52:
                args = ["RL.REFUND", key, lim, "STRATEGY", st]
                if rnd.random() < 0.5:
                    args += ["COST", str(rnd.choice([1, 2, 7, 4294967295]))]
            elif c < 0.7:
                args = ["RL.TEST", key, lim, "STRATEGY", st]
                if rnd.random() < 0.3:
                    args += ["COST", str(rnd.choice([0, 1, 3]))]
            elif c < 0.9:
                args = ["RL.STATS", key, lim, "STRATEGY", st]
            elif c < 0.95:
                args = ["RL.CLEAR", key, lim, "STRATEGY", st]
            else:
                args = ["RL.CLEAR", key]
            out.write(enc(args))
        sent += 1
    sys.stderr.write("%d\n" % errors)


if __name__ == "__main__":
    main()
