"""The benchmark's report: medians, ratios to INCR, targets and tables."""

from settings import *  # noqa: F401,F403 (the bench's settings and imports)

# --------------------------------------------------------------------------
# reporting


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def verdict(ok):
    return "PASS" if ok else "MISS"


# The summary's settings: (keys, pipeline), persistence off.
SUMMARY_SETTINGS = [("random", 16), ("hot", 1)]


def summary_table(env, rows):
    """One small table per run: each peer's server time and its ratio to
    INCR, the same round's INCR, on the server this run measured."""
    out = []
    w = out.append
    w(f"## Summary: {env['server']}\n")
    w("Admitting hits, persistence off, medians of per-round figures: server time per "
      "call (us) and its ratio to INCR measured in the same round (`xINCR`). Random "
      f"keys: `-r {RANDKEYS}`, mostly new keys; hot key: one key, so after the first "
      "100 hits of a minute RL.HIT denies (FLOOR.DENY is that path's floor).\n")
    head = "| command |"
    sep = "|---|"
    for keys, P in SUMMARY_SETTINGS:
        head += f" {keys} -P {P} us | xINCR |"
        sep += "---|---|"
    w(head)
    w(sep)
    by = {(r["label"], r["keys"], r["P"]): r for r in rows
          if r["group"] == "hit" and r["persist"] == "off"}
    labels = []
    for r in rows:
        if r["group"] == "hit" and r["persist"] == "off" and r["label"] not in labels:
            labels.append(r["label"])
    for label in labels:
        line = f"| {label} |"
        for keys, P in SUMMARY_SETTINGS:
            r = by.get((label, keys, P))
            line += (" - | - |" if r is None else
                     f" {fmt(r['usec'], '.2f')} | {fmt(r['ratio_usec'], '.2f')} |")
        w(line)
    return "\n".join(out) + "\n\n"


def report(env, results, mem_rows, targets):
    out = [summary_table(env, results["main"])]
    w = out.append
    w("## Throughput and server time per call\n")
    w(f"Medians over {ROUNDS} interleaved rounds. {CLIENTS} clients; random keys: "
      f"`-r {RANDKEYS}` (`__rand_int__`); requests per run: {N_P1:,} at -P 1, "
      f"{N_P16:,} at -P 16. `xINCR` columns: median of the per-round ratios to INCR "
      "measured in the same round with the same keys, pipeline and persistence. "
      "`peer/RL`: the limits script's server time divided by RL.HIT's for the same "
      "strategy (target >= 3); on the gcra rows, redis-cell's CL.THROTTLE server time "
      "divided by RL.HIT gcra's (target >= 2, when REDIS_CELL_MODULE is set).\n")
    hdr = ("| command | keys | -P | persistence | ops/s | xINCR ops/s | us/call | "
           "xINCR us | peer/RL us | targets |")
    w(hdr)
    w("|" + "---|" * 10)
    for row in results["main"]:
        w("| {label} | {keys} | {P} | {persist} | {ops} | {rops} | {us} | {rus} | {vs} | {t} |"
          .format(label=row["label"], keys=row["keys"], P=row["P"], persist=row["persist"],
                  ops=fmt(row["ops"], ",.0f"), rops=fmt(row["ratio_ops"], ".2f"),
                  us=fmt(row["usec"], ".2f"), rus=fmt(row["ratio_usec"], ".2f"),
                  vs=fmt(row.get("vs_limits"), ".1f"), t=row.get("targets", "")))
    w("\n## Moving window across limits (one key filled to its limit)\n")
    w("`denied`/`RL.STATS`: key holding L live cost-1 hits (window 1 h), "
      f"{CLIENTS} clients, -P 16, {N_SWEEP:,} requests. `admitted after expiry`: "
      "cycles of L hits (1 client, -P 10) on a key whose previous L hits have all "
      "expired (window W: 10 ms, 20 ms, 50 ms, 2 s for L = 10, 100, 1,000, 100,000), "
      "so every hit is admitted and the first of each cycle meets a full log of "
      "expired entries; its ops/s is not meaningful (short runs) and not shown. "
      "`xL=100` is the median per-round ratio to L=100 in the same case; "
      "`xINCR us` is to INCR on one hot key at -P 16 on the same server in the same round.\n")
    w("| case | L | persistence | ops/s | us/call | xINCR us | xL=100 us | target |")
    w("|" + "---|" * 8)
    for row in results["sweep"]:
        w("| {case} | {L:,} | {persist} | {ops} | {us} | {ri} | {rl} | {t} |".format(
            case=row["case"], L=row["L"], persist=row["persist"], ops=fmt(row["ops"], ",.0f"),
            us=fmt(row["usec"], ".2f"), ri=fmt(row["ratio_incr"], ".2f"),
            rl=fmt(row["ratio_L100"], ".2f"), t=row.get("targets", "")))
    w("\n## Memory per limited id\n")
    w(f"`used_memory` delta / number of ids, N = {MEM_N:,} ids per layout (each filled "
      "into an emptied database, pipelined), key `rl:user:<i>` for every layout "
      "(limits' own layout, with the id in place of the library's key name; the "
      "last row uses the library's real key names). A limit of 100/minute. "
      "`per hit`: extra bytes per stored hit over the 1-hit layout.\n")
    w("| layout | ids | keys | bytes per id | x counter | bytes per stored hit | target |")
    w("|" + "---|" * 7)
    for row in mem_rows:
        w("| {layout} | {ids:,} | {keys:,} | {per:,.1f} | {x} | {ph} | {t} |".format(
            layout=row["layout"], ids=row["ids"], keys=row["keys"], per=row["per_id"],
            x=fmt(row.get("x_counter"), ".2f"), ph=fmt(row.get("per_hit"), ".2f"),
            t=row.get("targets", "")))
    w("\n## Targets\n")
    passed = sum(1 for t in targets if t[1])
    w(f"{passed} of {len(targets)} target checks met.\n")
    for name, ok, detail in targets:
        w(f"- {verdict(ok)}: {name}: {detail}")
    w("\n## Environment\n")
    for k_, v in env.items():
        w(f"- {k_}: {v}")
    return "\n".join(out) + "\n"


def summarize(raw, cells_hit, cells_read):
    """Medians and per-round ratios for the main table; target checks."""
    main, targets = [], []
    configs = []
    for persist in ("off", "aof"):
        for keys in ("hot", "random"):
            for P in (1, 16):
                configs.append((persist, keys, P, "hit", cells_hit))
    for keys in ("hot", "random"):
        for P in (1, 16):
            configs.append(("off", keys, P, "read", cells_read))
    for persist, keys, P, group, cells in configs:
        def rounds_of(label):
            return raw["main"][(group, persist, keys, P, label)]
        incr = rounds_of("INCR")
        cells = [c for c in cells if c.runs_on(keys)]
        per = {}
        for cell in cells:
            rs = rounds_of(cell.label)
            per[cell.label] = {
                "ops": med([x["ops"] for x in rs]),
                "usec": med([x["usec_per_call"] for x in rs]),
                "ratio_ops": med([x["ops"] / i["ops"] for x, i in zip(rs, incr)]),
                "ratio_usec": med([x["usec_per_call"] / i["usec_per_call"]
                                   for x, i in zip(rs, incr)]),
                "rounds": rs,
            }
        for cell in cells:
            if group == "read" and cell.label == "INCR":
                continue  # shown in the hit group; this one only serves as the reference
            p = per[cell.label]
            row = {"label": cell.label, "keys": keys, "P": P,
                   "persist": "appendonly everysec" if persist == "aof" else "off",
                   "group": group, **{k: v for k, v in p.items() if k != "rounds"}}
            checks = []
            s = cell.strategy
            where = f"{keys} keys, -P {P}, persistence {row['persist']}"
            if group == "hit" and cell.kind == "rl":
                if P == 16 and keys == "random" and s in OPS_TARGET:
                    ok = p["ratio_ops"] >= OPS_TARGET[s]
                    checks.append(f"ops>={OPS_TARGET[s]} {verdict(ok)}")
                    targets.append((f"RL.HIT {s} throughput ({where})", ok,
                                    f"{p['ratio_ops']:.2f}x INCR (target >= {OPS_TARGET[s]}x)"))
                ok = p["ratio_usec"] <= USEC_TARGET[s]
                checks.append(f"us<={USEC_TARGET[s]} {verdict(ok)}")
                targets.append((f"RL.HIT {s} server time ({where})", ok,
                                f"{p['ratio_usec']:.2f}x INCR (target <= {USEC_TARGET[s]}x)"))
                # Peers measured in the same rounds: limits' script for the
                # same strategy; for gcra also redis-cell's CL.THROTTLE.
                peers = [(c, "limits/RL", LIMITS_FACTOR, f"RL.HIT {s} vs limits' script")
                         for c in cells if c.kind == "limits" and c.strategy == s]
                if s == "gcra":
                    peers += [(c, "cell/RL", CELL_FACTOR, "RL.HIT gcra vs redis-cell CL.THROTTLE")
                              for c in cells if c.kind == "cell"]
                for peer, short, factor, what in peers:
                    pr = rounds_of(peer.label)
                    vs = med([q["usec_per_call"] / x["usec_per_call"]
                              for q, x in zip(pr, p["rounds"])])
                    row["vs_limits"] = vs
                    ok = vs >= factor
                    checks.append(f"{short}>={factor:.0f} {verdict(ok)}")
                    detail = f"{vs:.1f}x cheaper (target >= {factor:.0f}x)"
                    # What the API calls alone allow here: the peer against the
                    # floor of this path (denied on the hot key, admitted on
                    # random keys), in the same rounds.
                    floor = next((c for c in cells if c.kind == "floor" and
                                  c.label.startswith("FLOOR.DENY" if keys == "hot"
                                                     else "FLOOR.HIT")), None)
                    if peer.kind == "cell" and floor is not None:
                        fr = rounds_of(floor.label)
                        fv = med([q["usec_per_call"] / f["usec_per_call"]
                                  for q, f in zip(pr, fr)])
                        detail += f"; {floor.label.split()[0]} alone: {fv:.1f}x"
                    targets.append((f"{what} ({where})", ok, detail))
            if getattr(cell, "versus", None) in per:
                vr = per[cell.versus]["rounds"]
                vs = med([x["usec_per_call"] / v["usec_per_call"]
                          for x, v in zip(p["rounds"], vr)])
                checks.append(f"{vs:.2f}x the server time of {cell.versus}")
            row["targets"] = "; ".join(checks)
            main.append(row)
    return main, targets


def summarize_sweep(raw, targets):
    rows = []
    for persist in ("off", "aof"):
        incr = raw["sweep_incr"][persist]
        for case in ("RL.HIT denied", "RL.HIT admitted after expiry", "RL.STATS"):
            ref = raw["sweep"][(persist, case, 100)]
            for L in SWEEP_L:
                rs = raw["sweep"][(persist, case, L)]
                row = {
                    "case": case, "L": L,
                    "persist": "appendonly everysec" if persist == "aof" else "off",
                    "ops": med([x["ops"] for x in rs]),
                    "usec": med([x["usec_per_call"] for x in rs]),
                    "ratio_incr": med([x["usec_per_call"] / i["usec_per_call"]
                                       for x, i in zip(rs, incr)]),
                    "ratio_L100": med([x["usec_per_call"] / y["usec_per_call"]
                                       for x, y in zip(rs, ref)]),
                }
                if case.startswith("RL.HIT admitted"):
                    row["full"] = sum(x["full_at_cycle_end"] for x in rs)
                    row["cycles"] = sum(x["cycles"] for x in rs)
                if L == 100_000:
                    ok = row["ratio_L100"] <= SWEEP_FACTOR
                    row["targets"] = f"<={SWEEP_FACTOR}x L=100 {verdict(ok)}"
                    targets.append((f"moving window {case}, L=100,000 vs L=100 "
                                    f"(persistence {row['persist']})", ok,
                                    f"{row['ratio_L100']:.2f}x (target <= {SWEEP_FACTOR}x)"))
                rows.append(row)
    return rows


def summarize_memory(rows, targets):
    counter = next(r for r in rows if r["strategy"] == "counter")["per_id"]
    one = {}
    for row in rows:
        row["x_counter"] = row["per_id"] / counter
        if row["hits"] == 1 and row["strategy"] in ("moving-window", "limits-moving"):
            one[row["strategy"]] = row["per_id"]
    for row in rows:
        s = row["strategy"]
        if row["hits"] > 1:
            if row["hits"] == 100_000:
                row["per_hit"] = row["per_id"] / row["hits"]
            else:
                row["per_hit"] = (row["per_id"] - one[s]) / (row["hits"] - 1)
        if s in MEM_TARGET:
            allowed = MEM_TARGET[s] * counter
            if s == "moving-window":
                allowed += MEM_PER_HIT * row["hits"]
                tname = f"<= {MEM_TARGET[s]}x counter + {MEM_PER_HIT:.0f} B/hit"
            else:
                tname = f"<= {MEM_TARGET[s]}x counter"
            ok = row["per_id"] <= allowed
            row["targets"] = f"{tname} ({allowed:,.0f} B) {verdict(ok)}"
            targets.append((f"memory {row['layout']}", ok,
                            f"{row['per_id']:,.1f} B per id = {row['x_counter']:.2f}x counter "
                            f"({counter:,.1f} B); allowed {allowed:,.0f} B"))
