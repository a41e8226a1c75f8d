#!/usr/bin/env python3
"""Writes the small seed corpus of the three fuzz targets (fuzz/corpus/*/seed-*).

The state seeds are valid stored values of every strategy, encoded as
docs/design.md describes (tag, varint window, body), wrapped in the
state_decoder input header (see fuzz/fuzz_targets/state_decoder.rs).
Run from the repository root: python3 tools/fuzz_seeds.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def t6(v):
    return struct.pack("<Q", v)[:6]


def penalty(end):
    """A penalty record (tag 0xF8, src/penalty.rs): the instant it ends."""
    return b"\xf8" + t6(end)


def leases(slots, width=None):
    """A lease record (tag 0xF7, src/lease.rs): [(end, token)] and one
    slot of room."""
    width = width or max(len(t) for _, t in slots)
    out = b"\xf7" + bytes([width]) + struct.pack("<HH", len(slots), len(slots) + 1)
    for end, tok in slots:
        out += t6(end) + bytes([len(tok)]) + tok + b"\0" * (width - len(tok))
    return out + b"\0" * (6 + 1 + width)  # one slot of room


def fixed(w, start, used):
    return b"\xf9" + varint(w) + t6(start) + varint(used)


def sliding(w, start, cur, prev):
    return b"\xfb" + varint(w) + t6(start) + varint(cur) + varint(prev)


def gcra(w, ms, num, den):
    return b"\xfc" + varint(w) + t6(ms) + varint(num) + varint(den)


def moving(w, hits, spare=0):
    """hits: [(time, cost)], oldest first."""
    log = bytearray()
    last = hits[0][0]
    for i, (t, c) in enumerate(hits):
        delta = 0 if i == 0 else t - last
        last = t
        log += varint((delta << 1) | (1 if c != 1 else 0))
        if c != 1:
            log += varint(c)
    used = sum(c for _, c in hits)
    head = struct.pack("<I", used) + t6(hits[-1][0]) + t6(hits[0][0])
    head += struct.pack("<III", 0, len(log), len(log) + spare)
    return b"\xfa" + varint(w) + head + bytes(log) + b"\0" * spare


def ring(w, hits, block=40, free=0, rotate=0):
    """A ring log (tag 0xFD, src/strategy/moving/ring.rs) of `hits` [(time, cost)]
    in `block`-byte slots, `free` free slots after them, the whole turned
    by `rotate` slots (head > 0, wrapped when rotate > free)."""
    blocks, cum, fill, last = [], 0, None, None
    for t, c in hits:
        raw = varint(((0 if last is None else t - last) << 1) | (1 if c != 1 else 0))
        if c != 1:
            raw += varint(c)
        if fill is None or fill + len(raw) > block - 16:
            blocks.append(bytearray(t6(t) + struct.pack("<Q", cum) + bytes(block - 14)))
            fill = 0
        b = blocks[-1]
        b[16 + fill:16 + fill + len(raw)] = raw
        fill += len(raw)
        b[14:16] = struct.pack("<H", fill)
        cum += c
        last = t
    count = len(blocks)
    slots = blocks + [bytearray(block) for _ in range(free)]
    n = len(slots)
    rotate %= n
    physical = slots[n - rotate:] + slots[:n - rotate]
    head = struct.pack("<Q", cum) + t6(last) + struct.pack("<Q", 0) + t6(hits[0][0])
    head += struct.pack("<HHHIII", 0, fill, block, n, rotate, count)
    return b"\xfd" + varint(w) + head + b"".join(bytes(b) for b in physical)


NOW = 1_760_000_000_000  # a 2025 server clock, ms


def state_input(now, dt, strategy, cost, burst, limits, value, raw_now=False):
    sel = strategy | (0x80 if raw_now else 0)
    h = struct.pack("<Q", now) + struct.pack("<i", dt) + bytes([sel])
    h += struct.pack("<I", cost) + struct.pack("<I", burst) + bytes([len(limits) - 1])
    for amount, window in limits:
        h += struct.pack("<I", amount) + struct.pack("<Q", window)[:5]
    return h + value


def main():
    grammar = [
        b"10/s", b"10 per second", b"5/2 minutes", b"1000/day;10/second",
        b"20/500ms", b"100/15m", b" 7 PER 3 Secs ", b"1/2hrs", b"3/day|60/m,1/w",
        b"4294967295/1ms", b"1/10y", b"1/3650d", b"10/fortnight", b"0/s",
        b"10/0s", b"10/s;20/1000ms", b"1/mo;1/yr;1/msec;1/millisecond",
        b";".join(b"1/%dms" % i for i in range(1, 18)), b"\xff\xfe/s",
    ]
    for i, g in enumerate(grammar):
        write("limit_grammar", "%02d" % i, g)

    args = [
        (0, [b"10/s"]),
        (0, [b"10/s", b"COST", b"5", b"STRATEGY", b"moving"]),
        (1, [b"10/s", b"strategy", b"GCRA", b"burst", b"3"]),
        (2, [b"1000/day;10/second", b"STRATEGY", b"sliding-window-counter"]),
        (3, [b"10/s", b"STRATEGY", b"token-bucket"]),
        (0, [b"10/s", b"COST", b"4294967296"]),
        (0, [b"1/y;1/s", b"STRATEGY", b"gcra", b"BURST", b"11"]),
        (2, [b"10/s", b"COST", b"1"]),
        (0, [b"10/s", b"COST", b"1", b"cost", b"2"]),
        (1, [b"10/s", b"STRATEGY"]),
        (0, [b"5/15m", b"PENALTY", b"1h"]),
        (1, [b"5/15m", b"penalty", b" 2 days "]),
        (0, [b"5/15m", b"PENALTY", b"5"]),
        (4, [b"10/s", b"COST", b"3", b"STRATEGY", b"moving"]),
        (4, [b"10/s", b"COST", b"0"]),
        (2, [b"10/s", b"PENALTY", b"1h"]),
    ]
    for i, (cmd, words) in enumerate(args):
        write("arg_parser", "%02d" % i, bytes([cmd]) + b"\0".join(words))

    W = 1000
    states = [
        (0, [(10, W)], fixed(W, NOW - 200, 3)),
        (0, [(10, W)], fixed(W, NOW + 5000, 10)),  # stored start ahead of now
        (1, [(10, W)], moving(W, [(NOW - 900, 1), (NOW - 500, 3), (NOW - 1, 1)])),
        (1, [(5, W), (50, 60 * W)], moving(W, [(NOW - 10, 2), (NOW, 1)], spare=8)
         + moving(60 * W, [(NOW - 30_000, 7), (NOW, 1)])),
        (2, [(10, W)], sliding(W, NOW - 1500, 4, 9)),
        (3, [(3, W)], gcra(W, NOW + 400, 1, 3)),
        (3, [(7, 10)], gcra(10, NOW + 12, 5, 7)),
        (0, [(10, W), (100, 60 * W)], fixed(W, NOW - 10, 1) + fixed(60 * W, NOW - 10, 1)
         + sliding(W, NOW - 10, 1, 0) + gcra(W, NOW, 0, 10)),
    ]
    spread = [(NOW - 990 + 9 * i, 1 + (i % 11 == 0) * 3) for i in range(110)]
    states += [
        (1, [(200, W)], ring(W, spread)),
        (1, [(120, W)], ring(W, spread, free=2, rotate=5)),  # wrapped
        (1, [(300, W)], ring(W, spread, block=64, free=3, rotate=1)),
        (1, [(150, W), (20, 60 * W)], ring(W, spread, rotate=2)
         + moving(60 * W, [(NOW - 30_000, 7), (NOW, 1)]) + fixed(W, NOW - 10, 1)),
    ]
    # Penalties: in force, ended, beside states, alone, two (not state).
    states += [
        (0, [(10, W)], fixed(W, NOW - 200, 10) + penalty(NOW + 60_000)),
        (1, [(10, W)], penalty(NOW - 5) + moving(W, [(NOW - 900, 1), (NOW - 1, 1)])),
        (3, [(3, W)], penalty(NOW + 1)),
        (2, [(10, W)], sliding(W, NOW - 1500, 4, 9) + penalty(NOW + 10) + penalty(NOW + 20)),
        (1, [(200, W)], ring(W, spread) + penalty(NOW + 3_600_000)),
    ]
    # Leases: live and ended, beside states, widened, two records (not state).
    states += [
        (0, [(3, W)], leases([(NOW + 500, b"a"), (NOW - 1, b"bb"), (NOW + 9, b"\x01\x01\x01")])),
        (1, [(10, W)], moving(W, [(NOW - 900, 1)]) + leases([(NOW + 5, b"job")], width=36)),
        (2, [(10, W)], leases([(NOW + 5, b"x")]) + leases([(NOW + 6, b"y")])),
    ]
    for i, (strategy, limits, value) in enumerate(states):
        write("state_decoder", "%02d" % i,
              state_input(NOW, -3000 if i % 2 else 2500, strategy, 1, 0, limits, value))
    # Far forward and far backward clocks against the same value.
    v = moving(W, [(NOW - 900, 1), (NOW - 1, 1)])
    write("state_decoder", "back", state_input(NOW - 86_400_000, 0, 1, 1, 0, [(10, W)], v))
    write("state_decoder", "fwd", state_input((1 << 48) - 1, -1, 1, 1, 0, [(10, W)], v))
    write("state_decoder", "raw-max",
          state_input(2**64 - 1, -5, 3, 2, 4, [(10, W)], gcra(W, NOW, 0, 10), raw_now=True))


if __name__ == "__main__":
    main()
