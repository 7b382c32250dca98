#!/usr/bin/env python3
"""Side-by-side throughput: berth vs the reference Distribution (docker-registry).

For each server, on a fresh server and data dir, with --workers threads (each its
own keep-alive connection; for berth, one token fetched up front and shared):
  push big     N x M MiB blobs, monolithic: POST /blobs/uploads/ (202) + PUT ?digest= (201)
  push small   N x K KiB blobs, same flow
  pull big     GET each big blob, hashing it (digest and size verified)
  pull small   GET each small blob, hashing it
  manifest PUT N small OCI image manifests by tag (each distinct, referencing one
               config blob and one layer blob pushed beforehand)
  manifest GET the same N manifests by tag (Docker-Content-Digest and bytes verified)
Reports absolute rates, per-request p50/p99 latency, the server's VmHWM and CPU time,
and berth/distribution ratios (> 1 means berth is faster, or uses more memory/CPU).
With --repeat R each server is measured R times (alternating) and medians are shown.
Exit status is non-zero when any request fails.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (MiB, BenchError, HTTPFailure, add_server_args, make_server,  # noqa: E402
                     make_workdir, header, sha256_digest, fmt_table, ratio)

KiB = 1024


def parse_count_size(spec):
    """'20x16M' -> (20, 16 MiB); '200x64K' -> (200, 64 KiB)."""
    n, _, sz = spec.lower().partition("x")
    mult = MiB if sz.endswith("m") else KiB if sz.endswith("k") else 1
    return int(n), int(float(sz.rstrip("mkb")) * mult)


def run_parallel(reg, items, fn, workers):
    """Run fn(client, item) for every item on `workers` threads; returns (wall, latencies, errors)."""
    lock = threading.Lock()
    idx = [0]
    lat, errors = [], []

    def worker():
        c = reg.clone()
        try:
            while True:
                with lock:
                    if idx[0] >= len(items) or len(errors) > 5:
                        return
                    item = items[idx[0]]
                    idx[0] += 1
                t = time.perf_counter()
                try:
                    fn(c, item)
                except Exception as e:
                    c.close()
                    with lock:
                        errors.append(e)
                    continue
                d = time.perf_counter() - t
                with lock:
                    lat.append(d)
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat, errors


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def manifest_bytes(cfg, layer, i):
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cfg[0], "size": cfg[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer[0], "size": layer[1]}],
        "annotations": {"org.example.bench.index": str(i)},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def run_server(kind, args, workdir, big, small, nman):
    res = {"server": kind, "errors": []}
    srv = make_server(kind, workdir, args)
    srv.start()
    name = args.repo
    try:
        reg = srv.client()
        reg.login([f"repository:{name}:pull,push"])  # one token, reused by every worker
        cpu0 = srv.cpu()

        def record(key, wall, lat, errors, nbytes, nops):
            res[key] = {"wall": wall, "ops": nops, "bytes": nbytes,
                        "ops_s": nops / wall if wall else None,
                        "mib_s": nbytes / MiB / wall if wall else None,
                        "p50_ms": (pct(lat, 0.5) or 0) * 1000, "p99_ms": (pct(lat, 0.99) or 0) * 1000}
            for e in errors:
                res["errors"].append(f"{key}: {e}")

        def push(c, item):
            data, digest = item
            c.push_blob_monolithic(name, data, digest)

        def pull(c, item):
            data, digest = item
            status, rh, n, got = c.get_blob_hash(name, digest)
            if n != len(data) or got != digest:
                raise BenchError(f"GET {digest}: {n} bytes hashing to {got}")

        for key, items in (("push_big", big), ("push_small", small)):
            wall, lat, errs = run_parallel(reg, items, push, args.workers)
            record(key, wall, lat, errs, sum(len(d) for d, _ in items), len(items))
        for key, items in (("pull_big", big), ("pull_small", small)):
            wall, lat, errs = run_parallel(reg, items, pull, args.workers)
            record(key, wall, lat, errs, sum(len(d) for d, _ in items), len(items))

        # manifests: one config and one layer blob, then N distinct manifests by tag
        cfg_data = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        layer_data = os.urandom(1024)
        cfg = (reg.push_blob_monolithic(name, cfg_data), len(cfg_data))
        layer = (reg.push_blob_monolithic(name, layer_data), len(layer_data))
        mans = [(f"m{i:05d}", manifest_bytes(cfg, layer, i)) for i in range(nman)]
        ctype = "application/vnd.oci.image.manifest.v1+json"

        def mput(c, item):
            tag, body = item
            path = f"/v2/{name}/manifests/{tag}"
            status, rh, data = c.request("PUT", path, body=body,
                                         headers={"Content-Type": ctype,
                                                  "Content-Length": str(len(body))})
            if status != 201:
                raise HTTPFailure("manifest PUT", "PUT", path, {"Content-Type": ctype},
                                  status, rh, data)
            d = header(rh, "Docker-Content-Digest")
            if d and d != sha256_digest(body):
                raise BenchError(f"manifest PUT {tag}: Docker-Content-Digest {d}")

        def mget(c, item):
            tag, body = item
            path = f"/v2/{name}/manifests/{tag}"
            status, rh, data = c.request("GET", path, headers={"Accept": ctype})
            if status != 200 or data != body:
                raise HTTPFailure("manifest GET", "GET", path, {"Accept": ctype}, status, rh, data)
            d = header(rh, "Docker-Content-Digest")
            if d != sha256_digest(body):
                raise BenchError(f"manifest GET {tag}: Docker-Content-Digest {d}")

        wall, lat, errs = run_parallel(reg, mans, mput, args.workers)
        record("manifest_put", wall, lat, errs, sum(len(b) for _, b in mans), len(mans))
        wall, lat, errs = run_parallel(reg, mans, mget, args.workers)
        record("manifest_get", wall, lat, errs, sum(len(b) for _, b in mans), len(mans))

        mem = srv.mem()
        res["hwm_mib"] = mem["VmHWM"] / 1024
        res["cpu_s"] = srv.cpu() - cpu0
        reg.close()
    except Exception as e:
        res["errors"].append(f"{type(e).__name__}: {e}")
        if srv.proc and srv.proc.poll() is not None:
            res["errors"].append(srv.log_tail())
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="berth,distribution")
    p.add_argument("--big", default="20x16M", help="big blobs, COUNTxSIZE (default 20x16M)")
    p.add_argument("--small", default="200x64K", help="small blobs, COUNTxSIZE (default 200x64K)")
    p.add_argument("--manifests", type=int, default=500, help="number of manifests (default 500)")
    p.add_argument("--workers", type=int, default=4, help="concurrent client threads (default 4)")
    p.add_argument("--repeat", type=int, default=3, help="rounds per server; medians are reported")
    p.add_argument("--repo", default="bench/compare")
    p.add_argument("--json", default=None, help="also write all raw results to this file")
    add_server_args(p)
    args = p.parse_args()
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]

    nb, sb = parse_count_size(args.big)
    ns, ss = parse_count_size(args.small)
    print(f"generating {nb} x {sb // KiB} KiB + {ns} x {ss // KiB} KiB random blobs ...", flush=True)
    big = [(d, sha256_digest(d)) for d in (os.urandom(sb) for _ in range(nb))]
    small = [(d, sha256_digest(d)) for d in (os.urandom(ss) for _ in range(ns))]
    root = make_workdir(args, "berth-bench-compare-")
    print(f"workdir: {root}; {args.workers} workers; {args.repeat} round(s)", flush=True)

    runs = {k: [] for k in kinds}
    for rnd in range(args.repeat):
        for kind in kinds:
            print(f"[{kind}] round {rnd + 1}/{args.repeat} ...", flush=True)
            r = run_server(kind, args, os.path.join(root, f"{kind}-{rnd}"), big, small, args.manifests)
            for e in r["errors"]:
                print(f"[{kind}]   ERROR {e}", flush=True)
            if "manifest_get" in r:
                print(f"[{kind}]   push {r['push_big']['mib_s']:.0f} MiB/s, pull {r['pull_big']['mib_s']:.0f} MiB/s, "
                      f"manifest PUT {r['manifest_put']['ops_s']:.0f}/s GET {r['manifest_get']['ops_s']:.0f}/s",
                      flush=True)
            runs[kind].append(r)

    def med(kind, key, field):
        vals = [r[key][field] for r in runs.get(kind, []) if key in r and r[key][field] is not None]
        return statistics.median(vals) if vals else None

    def medtop(kind, field):
        vals = [r[field] for r in runs.get(kind, []) if field in r]
        return statistics.median(vals) if vals else None

    workloads = [
        ("push_big", f"push {nb} x {sb // MiB} MiB (POST+PUT)", "mib_s", "MiB/s"),
        ("push_small", f"push {ns} x {ss // KiB} KiB (POST+PUT)", "ops_s", "blobs/s"),
        ("pull_big", f"pull {nb} x {sb // MiB} MiB (GET)", "mib_s", "MiB/s"),
        ("pull_small", f"pull {ns} x {ss // KiB} KiB (GET)", "ops_s", "blobs/s"),
        ("manifest_put", f"manifest PUT x {args.manifests}", "ops_s", "ops/s"),
        ("manifest_get", f"manifest GET x {args.manifests}", "ops_s", "ops/s"),
    ]

    def f(v, fmt="{:.0f}"):
        return fmt.format(v) if v is not None else "-"

    b, d = ("berth", "distribution")
    headers = ["workload", "unit"]
    for k in kinds:
        headers += [k, f"{k} p50 ms", f"{k} p99 ms"]
    both = b in kinds and d in kinds
    if both:
        headers.append("berth/distribution")
    rows = []
    for key, label, field, unit in workloads:
        row = [label, unit]
        for k in kinds:
            row += [f(med(k, key, field)), f(med(k, key, "p50_ms"), "{:.1f}"), f(med(k, key, "p99_ms"), "{:.1f}")]
        if both:
            row.append(ratio(med(b, key, field), med(d, key, field)))
        rows.append(row)
        if field == "ops_s" and key.endswith("small"):
            row2 = ["", "MiB/s"]
            for k in kinds:
                row2 += [f(med(k, key, "mib_s")), "", ""]
            if both:
                row2.append(ratio(med(b, key, "mib_s"), med(d, key, "mib_s")))
            rows.append(row2)
    for field, label, unit in (("hwm_mib", "server VmHWM (whole run)", "MiB"),
                               ("cpu_s", "server CPU time (whole run)", "s")):
        row = [label, unit]
        for k in kinds:
            row += [f(medtop(k, field), "{:.1f}"), "", ""]
        if both:
            row.append(ratio(medtop(b, field), medtop(d, field)))
        rows.append(row)
    print()
    print(f"{args.workers} workers, median of {args.repeat} round(s); ratio > 1: berth higher")
    print(fmt_table(rows, headers))

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "runs": runs}, fh, indent=1, default=str)
    nerr = sum(len(r["errors"]) for rs in runs.values() for r in rs)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    if nerr:
        print(f"\n{nerr} error(s); see above", file=sys.stderr)
    sys.exit(1 if nerr else 0)


if __name__ == "__main__":
    main()
