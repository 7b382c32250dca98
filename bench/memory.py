#!/usr/bin/env python3
"""Peak server memory while receiving one huge blob as a single streamed PATCH.

For each server (berth, and docker-registry for comparison) and each size (GiB),
on a fresh server and data dir:
  POST /v2/<repo>/blobs/uploads/                       -> 202 Location
  PATCH <Location>   Transfer-Encoding: chunked, no Content-Length, no Content-Range,
                     body generated on the fly (a random 1 MiB block with a per-block
                     counter stamped in), sha256 computed client-side as it is sent
                                                        -> 202
  PUT <Location>?digest=sha256:...  (empty body)       -> 201
  HEAD /v2/<repo>/blobs/<digest>                       -> 200, Content-Length == size
then reads VmHWM (peak resident set) from /proc/<server pid>/status.

Prints: size, seconds, MiB/s, server VmHWM, plus berth/distribution ratios.
Exit status is non-zero when any upload fails.
"""

import argparse
import hashlib
import os
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (MiB, GiB, BenchError, HTTPFailure, add_server_args, make_server,  # noqa: E402
                     make_workdir, header, add_query, loc_path, parse_range, fmt_table, ratio)


def blob_stream(size, block, hasher):
    """Yield `size` bytes: the random block with its first 8 bytes replaced by the block index."""
    buf = bytearray(block)
    mv = memoryview(buf)
    sent, i = 0, 0
    while sent < size:
        struct.pack_into("<Q", buf, 0, i)
        n = min(len(buf), size - sent)
        piece = mv[:n]
        hasher.update(piece)
        yield piece
        sent += n
        i += 1


def run_one(kind, size, args, workdir, block):
    res = {"server": kind, "size": size, "ok": False, "error": None}
    srv = make_server(kind, workdir, args)
    srv.start()
    try:
        reg = srv.client()
        name = args.repo
        reg.login([f"repository:{name}:pull,push"])
        res["hwm_idle_kib"] = srv.mem()["VmHWM"]
        cpu0 = srv.cpu()

        loc = reg.start_upload(name)
        hasher = hashlib.sha256()
        t0 = time.perf_counter()
        status, rh, body = reg.send_streaming(
            "PATCH", loc, blob_stream(size, block, hasher),
            headers={"Content-Type": "application/octet-stream"}, chunked=True)
        t1 = time.perf_counter()
        if status != 202:
            raise HTTPFailure("streamed PATCH", "PATCH", loc,
                              {"Transfer-Encoding": "chunked"}, status, rh, body)
        rng = header(rh, "Range")
        if rng is not None and parse_range(rng) != size:
            raise BenchError(f"PATCH 202 Range {rng!r}, expected 0-{size - 1}")
        res["patch_range"] = rng
        digest = "sha256:" + hasher.hexdigest()
        put_path = add_query(loc_path(header(rh, "Location") or loc), digest=digest)
        t2 = time.perf_counter()
        reg.expect("complete upload", "PUT", put_path, (201,), body=b"",
                   headers={"Content-Length": "0"})
        t3 = time.perf_counter()
        res["seconds"] = t3 - t0
        res["patch_s"] = t1 - t0
        res["put_s"] = t3 - t2
        res["mib_s"] = size / MiB / (t3 - t0)
        mem = srv.mem()
        res["hwm_kib"] = mem["VmHWM"]
        res["rss_kib"] = mem["VmRSS"]
        res["cpu_s"] = srv.cpu() - cpu0
        res["digest"] = digest

        status, rh, _ = reg.head_blob(name, digest)
        cl = header(rh, "Content-Length")
        if status != 200 or cl is None or int(cl) != size:
            raise BenchError(f"HEAD /v2/{name}/blobs/{digest}: status {status}, "
                             f"Content-Length {cl!r}, expected 200 and {size}")
        dcd = header(rh, "Docker-Content-Digest")
        if dcd is not None and dcd != digest:
            raise BenchError(f"HEAD Docker-Content-Digest {dcd}, expected {digest}")
        res["ok"] = True
        reg.close()
    except Exception as e:  # report and carry on with the other runs
        res["error"] = f"{type(e).__name__}: {e}"
        if srv.proc and srv.proc.poll() is None:
            try:
                res["hwm_kib"] = srv.mem()["VmHWM"]
            except OSError:
                pass
        else:
            res["error"] += "\n(server died)\n" + srv.log_tail()
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1,4", help="comma-separated blob sizes in GiB (default 1,4)")
    p.add_argument("--servers", default="berth,distribution",
                   help="comma-separated: berth, distribution (default both)")
    p.add_argument("--repo", default="bench/memory", help="repository name")
    p.add_argument("--block-mib", type=int, default=1, help="size of each generated piece (MiB)")
    add_server_args(p)
    args = p.parse_args()

    sizes = [int(float(s) * GiB) for s in args.sizes.split(",") if s]
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    block = os.urandom(args.block_mib * MiB)
    root = make_workdir(args, "berth-bench-memory-")
    print(f"workdir: {root}", flush=True)

    results = []
    for kind in kinds:
        for size in sizes:
            print(f"[{kind}] pushing {size / GiB:g} GiB as one chunked PATCH ...", flush=True)
            r = run_one(kind, size, args, os.path.join(root, f"{kind}-{size // MiB}M"), block)
            if r["ok"]:
                print(f"[{kind}]   {r['seconds']:.1f}s ({r['mib_s']:.0f} MiB/s), PUT {r['put_s']:.2f}s, "
                      f"VmHWM {r['hwm_kib'] / 1024:.1f} MiB", flush=True)
            else:
                print(f"[{kind}]   FAILED: {r['error']}", flush=True)
            results.append(r)

    def f(v, fmt):
        return fmt.format(v) if v is not None else "-"

    rows = []
    for r in results:
        rows.append([r["server"], f"{r['size'] / GiB:g} GiB",
                     f(r.get("seconds"), "{:.1f}"), f(r.get("mib_s"), "{:.0f}"),
                     f(r.get("put_s"), "{:.2f}"),
                     f(r.get("hwm_idle_kib") and r["hwm_idle_kib"] / 1024, "{:.1f}"),
                     f(r.get("hwm_kib") and r["hwm_kib"] / 1024, "{:.1f}"),
                     f(r.get("cpu_s"), "{:.1f}"),
                     "ok" if r["ok"] else "FAIL"])
    print()
    print(fmt_table(rows, ["server", "size", "seconds", "MiB/s", "PUT s", "VmHWM idle MiB",
                           "VmHWM MiB", "server CPU s", "result"]))

    by = {(r["server"], r["size"]): r for r in results if r["ok"]}
    if "berth" in kinds and "distribution" in kinds:
        rrows = []
        for size in sizes:
            b, d = by.get(("berth", size)), by.get(("distribution", size))
            rrows.append([f"{size / GiB:g} GiB",
                          ratio(b and b["mib_s"], d and d["mib_s"]),
                          ratio(b and b["hwm_kib"], d and d["hwm_kib"]),
                          ratio(b and b["cpu_s"], d and d["cpu_s"])])
        print()
        print("berth / distribution")
        print(fmt_table(rrows, ["size", "throughput ratio", "VmHWM ratio", "CPU ratio"]))

    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(f"\nFAILED {r['server']} {r['size'] / GiB:g} GiB:\n{r['error']}", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
