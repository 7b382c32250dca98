#!/usr/bin/env python3
"""Issue 9's memory figures alone: the shapes of bench/run.py that decide them, for
several servers (berth builds side by side, and Distribution), alternating, in rounds.

    python3 bench/memory.py                                   # berth and Distribution, 2 rounds
    python3 bench/memory.py --berth before=OLD_BIN --berth after=NEW_BIN --servers distribution

Each server process goes through, with its VmHWM reset before each shape (as run.py does):
logins (berth only, 64 concurrent Basic-auth GET /token), streamed (one SIZE push, one
streamed PATCH), big (one BIG push), parallel (P clients at once, B blobs of PSIZE each),
then IDLE seconds without load. Printed per server, median (min-max) over the rounds, MiB:
RSS at start, each shape's peak, the whole run's peak, "64 vs 1" (parallel peak - streamed
peak), "4G vs 1G" (big peak - streamed peak) and the RSS after the idle wait minus at start.
"""

import argparse
import copy
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MiB, add_server_args, blob_digest, fmt_table, machine_line, make_workdir, parse_size  # noqa: E402
import run  # noqa: E402

SHAPES = ("logins", "streamed", "big", "parallel")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_args(p)
    p.add_argument("--servers", default="berth,distribution",
                   help="berth (the --berth-bin build) and/or distribution")
    p.add_argument("--berth", action="append", default=[], metavar="LABEL=BIN",
                   help="a berth build to measure (repeatable), in addition to --servers")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--size", default="1G")
    p.add_argument("--big", default="4G")
    p.add_argument("--parallel", type=int, default=64)
    p.add_argument("--parallel-size", default="4M")
    p.add_argument("--parallel-blobs", type=int, default=4)
    p.add_argument("--logins", type=int, default=64)
    p.add_argument("--idle-secs", type=float, default=5)
    p.add_argument("--berth-env", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    for k in ("size", "big", "parallel_size"):
        setattr(args, k, parse_size(getattr(args, k)))
    args.shapes = ",".join(SHAPES)  # run.py's --shapes: only the memory shapes
    servers = []  # (label, kind, args)
    for kind in (k.strip() for k in args.servers.split(",") if k.strip()):
        servers.append((kind, kind, args))
    for spec in args.berth:
        label, _, binary = spec.partition("=")
        a = copy.copy(args)
        a.berth_bin = binary
        servers.append((label, "berth", a))

    root = make_workdir(args, "berth-bench-memory-")
    block = os.urandom(MiB)
    run.log(f"{machine_line()}; workdir {root}")
    for seed, size in ((3, args.size), (4, args.big)):
        blob_digest(seed, size, block)
    results = {label: [] for label, _, _ in servers}
    failed = 0
    try:
        for rnd in range(args.rounds):
            order = servers if rnd % 2 == 0 else servers[::-1]
            run.log(f"round {rnd + 1}/{args.rounds}: {', '.join(s[0] for s in order)}")
            for label, kind, a in order:
                wdir = os.path.join(root, f"round{rnd + 1}", label)
                try:
                    res = run.run_server(kind, a, wdir, block)
                finally:
                    if not args.keep:
                        shutil.rmtree(wdir, ignore_errors=True)
                failed += res["failed"]
                for e in res["errors"]:
                    print(f"ERROR {label} round {rnd + 1}: {e}", file=sys.stderr)
                results[label].append(res)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    def figures(r):
        pk = r["peaks"]
        f = {"start": r["rss_start"], **{s: pk.get(s) for s in SHAPES}, "peak": r["peak"],
             "64 vs 1": pk["parallel"] - pk["streamed"] if "parallel" in pk and "streamed" in pk else None,
             "4G vs 1G": pk["big"] - pk["streamed"] if "big" in pk and "streamed" in pk else None,
             "after - start": r["rss_after"] - r["rss_start"]}
        return f

    cols = ["start", *SHAPES, "peak", "64 vs 1", "4G vs 1G", "after - start"]
    rows = []
    for label, runs in results.items():
        per = [figures(r) for r in runs]
        row = [label]
        for c in cols:
            vals = [f[c] for f in per if f[c] is not None]
            row.append("-" if not vals else
                       f"{statistics.median(vals):.1f} ({min(vals):.1f}–{max(vals):.1f})" if len(vals) > 1
                       else f"{vals[0]:.1f}")
        rows.append(row)
    print(f"\n{machine_line()}")
    print(f"python3 bench/memory.py {' '.join(sys.argv[1:])}")
    print(f"MiB, median (min–max) of {args.rounds} rounds; shapes: streamed {args.size // MiB} MiB, "
          f"big {args.big // MiB} MiB, parallel {args.parallel} × {args.parallel_blobs} × "
          f"{args.parallel_size // MiB} MiB, logins {args.logins}\n")
    print(fmt_table(rows, ["server", *cols]))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
