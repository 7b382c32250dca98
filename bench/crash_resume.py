#!/usr/bin/env python3
"""Crash an upload mid-chunk with kill -9, restart, and resume from the reported offset.

Per scenario CHUNK:AFTER (MiB), on a fresh server and data dir:
  1. POST /v2/<repo>/blobs/uploads/                         -> 202
  2. --chunks ordered PATCHes of --chunk-mib each, with Content-Range/Content-Length,
     each -> 202 with Range: 0-<end-1> (the "acknowledged" offsets)
  3. one more PATCH of CHUNK MiB: send AFTER MiB of its body, wait --settle seconds,
     then kill -9 the server while the request is still open
  4. restart the server on the same data dir (new port), GET the upload URL
     -> expect 204 with Range: 0-<offset-1>; offset must lie between the last
     acknowledged end and what was sent; reports whether the partial chunk counted
  5. PATCH the rest from that offset, PUT ?digest=       -> 201
  6. HEAD the blob (size, Docker-Content-Digest) and GET it whole, hashing it.
Prints the offsets seen and PASS/FAIL per scenario; exits non-zero on any failure.

The default scenarios are 64:40 (a 64 MiB chunk killed 40 MiB in) and 192:160
(killed 160 MiB into a 192 MiB Content-Range chunk) and stream:160 (killed 160 MiB
into a docker-style chunked PATCH without Content-Range). DESIGN.md section 6 has the
server record its offset every 64 MiB within a long PATCH, so for those two the stored
offset may be above the last acknowledged end (berth treats Content-Range chunks as
all-or-nothing and checkpoints only streamed PATCHes). AFTER may be 0: the kill then
comes after the PATCH headers, before any body byte.
"""

import argparse
import hashlib
import http.client
import os
import random
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (MiB, BenchError, HTTPFailure, add_server_args, make_server,  # noqa: E402
                     make_workdir, header, add_query, loc_path, parse_range, fmt_table,
                     free_port)


def mib(n):
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n / MiB:.2f} MiB ({n} B)"


class Scenario:
    """CHUNK:AFTER -> a Content-Range PATCH of CHUNK MiB killed AFTER MiB in;
    stream:AFTER -> a chunked-transfer PATCH without Content-Range (docker style) killed
    AFTER MiB in (it would have carried 32 MiB more)."""

    def __init__(self, spec):
        chunk, _, after = spec.partition(":")
        self.stream = chunk == "stream"
        self.kill_after = int(float(after) * MiB)
        self.kill_chunk = self.kill_after + 32 * MiB if self.stream else int(float(chunk) * MiB)
        if not 0 <= self.kill_after < self.kill_chunk:
            raise SystemExit(f"bad scenario {spec!r}: need 0 <= AFTER < CHUNK")
        self.spec = spec

    def describe(self):
        if self.stream:
            return (f"kill -9 {self.kill_after / MiB:g} MiB into a streamed PATCH "
                    f"(Transfer-Encoding: chunked, no Content-Range)")
        return (f"kill -9 {self.kill_after / MiB:g} MiB into a {self.kill_chunk / MiB:g} MiB "
                f"Content-Range chunk")


def patch_chunk(reg, loc, data, start, what):
    end = start + len(data)
    hdrs = {"Content-Type": "application/octet-stream",
            "Content-Length": str(len(data)),
            "Content-Range": f"{start}-{end - 1}"}
    status, rh, body = reg.request("PATCH", loc, body=data, headers=hdrs)
    if status != 202:
        raise HTTPFailure(what, "PATCH", loc, hdrs, status, rh, body)
    rng = header(rh, "Range")
    off = parse_range(rng)
    if off != end:
        raise BenchError(f"{what}: 202 with Range {rng!r}, expected 0-{end - 1}")
    new_loc = header(rh, "Location")
    return (loc_path(new_loc) if new_loc else loc), off


def run_scenario(kind, sc, args, workdir, log):
    res = {"server": kind, "scenario": sc.spec, "ok": False, "error": None, "acked": []}
    n_chunks, chunk = args.chunks, args.chunk_mib * MiB
    prefix = n_chunks * chunk
    total = prefix + sc.kill_chunk + args.tail_mib * MiB
    rnd = random.Random(args.seed)
    data = b"".join(rnd.randbytes(MiB) for _ in range(total // MiB)) + rnd.randbytes(total % MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    res["total"] = total

    srv = make_server(kind, workdir, args)
    srv.start()
    try:
        reg = srv.client()
        name = args.repo
        scope = [f"repository:{name}:pull,push"]
        reg.login(scope)
        old_token = reg.token
        loc = reg.start_upload(name)
        log(f"  upload started: {loc}")

        # 2. ordered, acknowledged chunks
        off = 0
        for i in range(n_chunks):
            loc, off = patch_chunk(reg, loc, data[off:off + chunk], off, f"chunk {i + 1}/{n_chunks}")
            res["acked"].append(off)
        log(f"  acknowledged offsets: {', '.join(mib(o) for o in res['acked'])}")
        last_ack = off

        # 3. the chunk that gets killed
        kstart, kend = last_ack, last_ack + sc.kill_chunk
        if sc.stream:
            hdrs = {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"}
        else:
            hdrs = {"Content-Type": "application/octet-stream",
                    "Content-Length": str(sc.kill_chunk),
                    "Content-Range": f"{kstart}-{kend - 1}"}
        hdrs.update(reg.auth_headers())
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=120)
        conn.putrequest("PATCH", loc)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        sent = 0
        while sent < sc.kill_after:
            n = min(MiB, sc.kill_after - sent)
            piece = data[kstart + sent:kstart + sent + n]
            if sc.stream:
                conn.sock.sendall(b"%x\r\n" % n + piece + b"\r\n")
            else:
                conn.sock.sendall(piece)
            sent += n
        time.sleep(args.settle)
        pid = srv.pid
        cpu_before_kill = srv.cpu()
        srv.kill(signal.SIGKILL)
        res["sent_in_killed"] = sent
        what = ("streamed PATCH" if sc.stream
                else f"{mib(sc.kill_chunk)} chunk [{mib(kstart)}, {mib(kend)})")
        log(f"  killed pid {pid} (kill -9) with {mib(sent)} of the {what} sent, "
            f"starting at {mib(kstart)}; server had used {cpu_before_kill:.1f}s CPU")
        # what happened to the client side of the request
        try:
            r = conn.getresponse()
            r.read()
            res["client_saw"] = f"HTTP {r.status}"
        except Exception as e:
            res["client_saw"] = type(e).__name__
        conn.close()
        reg.close()

        # 4. restart on the same data dir
        srv.port = free_port()
        srv.start()
        log(f"  restarted as pid {srv.pid} on port {srv.port}")
        reg = srv.client()
        reg.token = old_token
        status, rh, body = reg.request("GET", loc)
        res["old_token_after_restart"] = status
        if status == 401 and old_token:
            log(f"  note: the pre-restart token was refused after restart (401); fetching a new one")
            reg.login(scope)
            status, rh, body = reg.request("GET", loc)
        elif old_token:
            log(f"  the token fetched before the crash is still accepted after the restart")
        if status != 204:
            res["status_range"] = f"HTTP {status}"
            raise HTTPFailure("upload status after restart", "GET", loc, reg.auth_headers(),
                              status, rh, body)
        rng = header(rh, "Range")
        offset = parse_range(rng)
        res["status_range"] = rng
        res["resume_offset"] = offset
        if offset is None:
            raise BenchError("upload status 204 without a Range header")
        counted = offset - last_ack
        log(f"  GET upload status: 204, Range: {rng} -> offset {mib(offset)} "
            f"(last acknowledged {mib(last_ack)}, sent {mib(last_ack + sent)})")
        if offset < last_ack:
            raise BenchError(f"offset {offset} is below the last acknowledged end {last_ack}: "
                             f"acknowledged data was lost")
        if offset > last_ack + sent:
            raise BenchError(f"offset {offset} is beyond what was ever sent ({last_ack + sent})")
        if counted == 0:
            res["partial"] = "not counted"
        else:
            res["partial"] = f"counted {mib(counted)} of {mib(sent)} sent"
        log(f"  partially-sent chunk: {res['partial']}")
        new_loc = header(rh, "Location")
        if new_loc:
            loc = loc_path(new_loc)

        # 5. send the rest from the reported offset
        rchunk = args.resume_chunk_mib * MiB
        off = offset
        npatch = 0
        while off < total:
            n = min(rchunk, total - off)
            loc, off = patch_chunk(reg, loc, data[off:off + n], off, f"resume chunk at {off}")
            npatch += 1
        log(f"  resumed {mib(offset)} -> {mib(total)} in {npatch} PATCHes")
        put_path = add_query(loc, digest=digest)
        t0 = time.perf_counter()
        status, rh, body = reg.expect("complete upload", "PUT", put_path, (201,), body=b"",
                                      headers={"Content-Length": "0"})
        res["put_s"] = time.perf_counter() - t0
        log(f"  PUT ?digest=: {status} in {res['put_s']:.2f}s")

        # 6. verify
        status, rh, _ = reg.head_blob(name, digest)
        cl, dcd = header(rh, "Content-Length"), header(rh, "Docker-Content-Digest")
        if status != 200 or cl is None or int(cl) != total or (dcd and dcd != digest):
            raise BenchError(f"HEAD blob: {status}, Content-Length {cl}, Docker-Content-Digest {dcd}; "
                             f"expected 200, {total}, {digest}")
        status, rh, nbytes, got = reg.get_blob_hash(name, digest)
        if nbytes != total or got != digest:
            raise BenchError(f"GET blob returned {nbytes} bytes hashing to {got}; "
                             f"expected {total} bytes, {digest}")
        log(f"  HEAD 200 Content-Length {cl}; GET {nbytes} bytes, sha256 matches")
        res["ok"] = True
        reg.close()
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"
        if srv.proc and srv.proc.poll() is not None and srv.proc.returncode not in (-9, 0):
            res["error"] += "\n" + srv.log_tail()
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="berth", help="comma-separated: berth, distribution")
    p.add_argument("--scenario", action="append", default=None, metavar="CHUNK:AFTER",
                   help="size of the killed chunk (or 'stream' for a chunked PATCH without "
                        "Content-Range) and MiB sent before the kill "
                        "(repeatable; default 64:40, 192:160, stream:160)")
    p.add_argument("--chunks", type=int, default=8, help="acknowledged chunks before the kill")
    p.add_argument("--chunk-mib", type=int, default=8, help="size of each acknowledged chunk")
    p.add_argument("--tail-mib", type=int, default=32,
                   help="extra data after the killed chunk's range")
    p.add_argument("--resume-chunk-mib", type=int, default=16, help="chunk size when resuming")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds between the last byte sent and kill -9")
    p.add_argument("--repo", default="bench/crash")
    p.add_argument("--seed", type=int, default=20240601)
    add_server_args(p)
    args = p.parse_args()
    scenarios = [Scenario(s) for s in (args.scenario or ["64:40", "192:160", "stream:160"])]
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    root = make_workdir(args, "berth-bench-crash-")
    print(f"workdir: {root}", flush=True)

    def log(msg):
        print(msg, flush=True)

    results = []
    for kind in kinds:
        for i, sc in enumerate(scenarios):
            log(f"[{kind}] scenario {sc.spec}: {args.chunks} x {args.chunk_mib} MiB acknowledged, "
                f"then {sc.describe()}")
            r = run_scenario(kind, sc, args, os.path.join(root, f"{kind}-{i}"), log)
            log(f"[{kind}] scenario {sc.spec}: {'PASS' if r['ok'] else 'FAIL'}")
            if r["error"]:
                log("  " + r["error"].replace("\n", "\n  "))
            results.append(r)

    rows = []
    for r in results:
        acked = r["acked"][-1] if r["acked"] else None
        rows.append([r["server"], r["scenario"],
                     mib(acked) if acked is not None else "-",
                     mib(acked + r["sent_in_killed"]) if "sent_in_killed" in r and acked is not None else "-",
                     r.get("status_range") or "-",
                     mib(r["resume_offset"]) if r.get("resume_offset") is not None else "-",
                     r.get("partial", "-"),
                     mib(r["total"]),
                     "PASS" if r["ok"] else "FAIL"])
    print()
    print(fmt_table(rows, ["server", "CHUNK:AFTER", "last ack", "sent", "Range after restart",
                           "resume offset", "partial chunk", "blob", "result"]))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
