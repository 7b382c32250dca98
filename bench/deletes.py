#!/usr/bin/env python3
"""Manifest deletes in a repository with many tags: each build given runs once per round,
alternating, and prints the median DELETE time.

Setup per run: a fresh berth; repository `del/r` gets --tags tags on one manifest (wrk,
as run.py's tags shape makes them), then --deletes distinct manifests pushed by digest
(untagged: CI's usual leftovers). Then each of those is deleted,
`DELETE /v2/del/r/manifests/<digest>` (202 expected), one at a time. A delete looks up the
manifest's tags and cascades to them, so without an index on the tags' digest its time
grows with the repository's tag count.

    python3 bench/deletes.py --berth-bin OLD --berth-bin NEW --tags 10000 --rounds 2
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DEFAULT_BERTH_BIN, Berth, HTTPFailure, make_workdir  # noqa: E402
from shapes import OCI_MANIFEST, _tag_batch, image_manifest, put_manifest  # noqa: E402

REPO = "del/r"


def one_run(binary, root, tags, deletes):
    """Median and total seconds of `deletes` manifest DELETEs next to `tags` tags."""
    srv = Berth(tempfile.mkdtemp(prefix="run-", dir=root), binary=binary)
    srv.start()
    try:
        reg = srv.client()
        reg.login([f"repository:{REPO}:pull,push,delete"])
        body = image_manifest(reg, REPO)
        with tempfile.NamedTemporaryFile("wb", suffix=".json", dir=root, delete=False) as f:
            f.write(body)
        try:
            _tag_batch(srv, reg, REPO, f.name, 0, tags, 16)
        finally:
            os.unlink(f.name)
        manifest = json.loads(body)
        digests = []
        for i in range(deletes):
            manifest["annotations"] = {"bench.deletes": str(i)}
            b = json.dumps(manifest, separators=(",", ":")).encode()
            put_manifest(reg, REPO, "untagged", b)  # pushes it, then the tag moves on
            status, rh, _ = reg.request("HEAD", f"/v2/{REPO}/manifests/untagged",
                                        headers={"Accept": OCI_MANIFEST})
            digests.append(dict((k.lower(), v) for k, v in rh)["docker-content-digest"])
        put_manifest(reg, REPO, "untagged", body)  # the last one untagged too
        times = []
        for d in digests:
            path = f"/v2/{REPO}/manifests/{d}"
            t0 = time.perf_counter()
            status, rh, data = reg.request("DELETE", path)
            times.append(time.perf_counter() - t0)
            if status != 202:
                raise HTTPFailure("manifest DELETE", "DELETE", path, {}, status, rh, data)
        return statistics.median(times), sum(times)
    finally:
        srv.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--berth-bin", action="append", help="a build to measure (repeat to compare)")
    p.add_argument("--tags", type=int, default=10000)
    p.add_argument("--deletes", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workdir")
    args = p.parse_args()
    bins = args.berth_bin or [DEFAULT_BERTH_BIN]
    root = make_workdir(args, "berth-deletes-")
    results = {b: [] for b in bins}
    for rnd in range(args.rounds):
        for b in bins if rnd % 2 == 0 else reversed(bins):
            med, total = one_run(b, root, args.tags, args.deletes)
            results[b].append(med)
            print(f"round {rnd + 1} {b}: median DELETE {med * 1000:.2f} ms, {args.deletes} in {total:.2f} s",
                  flush=True)
    for b, meds in results.items():
        print(f"{b}: median of rounds {statistics.median(meds) * 1000:.2f} ms per DELETE at {args.tags} tags")


if __name__ == "__main__":
    main()
