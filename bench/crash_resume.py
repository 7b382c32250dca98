#!/usr/bin/env python3
"""Crash an upload mid-request with kill -9, restart, and see what the client can do next,
for the three upload shapes clients use.

Per scenario SHAPE:AFTER (MiB), on a fresh server and data dir:
  1. session shapes (CHUNK:AFTER, stream:AFTER): POST /v2/<repo>/blobs/uploads/ -> 202,
     then --chunks ordered PATCHes of --chunk-mib each, each -> 202 with Range: 0-<end-1>
     (the "acknowledged" offsets);
     monolithic (mono:AFTER): no session the client knows;
  2. one more request: a Content-Range PATCH of CHUNK MiB (CHUNK:AFTER), a chunked PATCH
     without Content-Range, docker style (stream:AFTER), or a whole-blob POST ?digest=
     (mono:AFTER, oras/containerd style); send AFTER MiB of its body, wait --settle s,
     then kill -9 the server while the request is still open;
  3. restart the server on the same data dir (new port) and look:
     - a session: GET the upload URL. 204 with Range: 0-<offset-1> -> "resumed": the offset
       must lie between the last acknowledged end and what was sent; PATCH the rest from
       there and PUT ?digest= -> 201. 404 BLOB_UPLOAD_UNKNOWN -> "404": the client starts
       over (a new session, the whole blob) -> 201;
     - monolithic: HEAD the blob. 404 -> "absent": push it again whole -> 201; 200 ->
       "landed" (the kill came after the blob was stored);
  4. HEAD the blob (size, Docker-Content-Digest) and GET it whole, hashing it.
Any 5xx, before or after the restart, fails the scenario. Prints per scenario the offsets
and the outcome, then a table and the counts of resumed / 404 / absent / landed / 5xx;
exits non-zero on any failure.

Default scenarios: 64:40 (a 64 MiB Content-Range chunk killed 40 MiB in), 192:160,
stream:160 (a streamed PATCH killed 160 MiB in: berth checkpoints long streamed PATCHes,
so the offset may be above the last acknowledged end) and mono:40 (a 72 MiB POST ?digest=
killed 40 MiB in). AFTER may be 0: the kill then comes after the headers, before any body
byte. --rounds repeats each with kill points drawn between 0 and AFTER.
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
    AFTER MiB in (it would have carried 32 MiB more); mono:AFTER -> a POST ?digest= of the
    whole blob killed AFTER MiB in (it would have carried 32 MiB more)."""

    def __init__(self, spec, kill_after=None):
        chunk, _, after = spec.partition(":")
        self.stream = chunk == "stream"
        self.mono = chunk == "mono"
        self.kill_after = int(float(after) * MiB) if kill_after is None else kill_after
        open_ended = self.stream or self.mono
        self.kill_chunk = self.kill_after + 32 * MiB if open_ended else int(float(chunk) * MiB)
        if not 0 <= self.kill_after < self.kill_chunk:
            raise SystemExit(f"bad scenario {spec!r}: need 0 <= AFTER < CHUNK")
        self.spec = spec

    def describe(self):
        if self.mono:
            return f"kill -9 {self.kill_after / MiB:g} MiB into a {self.kill_chunk / MiB:g} MiB POST ?digest="
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


class FiveXX(BenchError):
    pass


def checked(status, what):
    """A 5xx fails the scenario whatever else happens."""
    if status >= 500:
        raise FiveXX(f"{what}: HTTP {status}")
    return status


def send_killed_request(srv, reg, sc, loc, kstart, data, name, digest, args):
    """Opens the request that gets killed, sends AFTER MiB of its body, waits, kills -9."""
    if sc.mono:
        method, path = "POST", add_query(f"/v2/{name}/blobs/uploads/", digest=digest)
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(sc.kill_chunk)}
    elif sc.stream:
        method, path = "PATCH", loc
        hdrs = {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"}
    else:
        method, path = "PATCH", loc
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(sc.kill_chunk),
                "Content-Range": f"{kstart}-{kstart + sc.kill_chunk - 1}"}
    hdrs.update(reg.auth_headers())
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=120)
    conn.putrequest(method, path)
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders()
    sent = 0
    while sent < sc.kill_after:
        n = min(MiB, sc.kill_after - sent)
        piece = data[kstart + sent:kstart + sent + n]
        conn.sock.sendall(b"%x\r\n" % n + piece + b"\r\n" if sc.stream else piece)
        sent += n
    time.sleep(args.settle)
    srv.kill(signal.SIGKILL)
    try:
        r = conn.getresponse()
        r.read()
        saw = f"HTTP {checked(r.status, 'the killed request')}"
    except FiveXX:
        raise
    except Exception as e:
        saw = type(e).__name__
    conn.close()
    return sent, saw


def push_whole(reg, name, data, digest, args):
    """A new session, the blob in --resume-chunk-mib PATCHes, PUT ?digest= -> 201."""
    loc, off = reg.start_upload(name), 0
    while off < len(data):
        n = min(args.resume_chunk_mib * MiB, len(data) - off)
        loc, off = patch_chunk(reg, loc, data[off:off + n], off, f"chunk at {off}")
    status, _, _ = reg.expect("complete upload", "PUT", add_query(loc, digest=digest), (201,), body=b"",
                              headers={"Content-Length": "0"})
    return status


def resume_session(reg, res, loc, last_ack, sent, total, data, log, args):
    """GET the session after the restart: resume from its offset, or None on 404."""
    status, rh, body = reg.request("GET", loc)
    if checked(status, "upload status after restart") == 404:
        return None
    if status != 204:
        raise HTTPFailure("upload status after restart", "GET", loc, reg.auth_headers(), status, rh, body)
    rng = header(rh, "Range")
    offset = parse_range(rng)
    res["status_range"], res["resume_offset"] = rng, offset
    if offset is None:
        raise BenchError("upload status 204 without a Range header")
    log(f"  GET upload status: 204, Range: {rng} -> offset {mib(offset)} "
        f"(last acknowledged {mib(last_ack)}, sent {mib(last_ack + sent)})")
    if offset < last_ack:
        raise BenchError(f"offset {offset} is below the last acknowledged end {last_ack}: acknowledged data lost")
    if offset > last_ack + sent:
        raise BenchError(f"offset {offset} is beyond what was ever sent ({last_ack + sent})")
    counted = offset - last_ack
    res["partial"] = f"counted {mib(counted)} of {mib(sent)} sent" if counted else "not counted"
    new_loc = header(rh, "Location")
    loc = loc_path(new_loc) if new_loc else loc
    off = offset
    while off < total:
        n = min(args.resume_chunk_mib * MiB, total - off)
        loc, off = patch_chunk(reg, loc, data[off:off + n], off, f"resume chunk at {off}")
    return loc


def run_scenario(kind, sc, args, workdir, log):
    res = {"server": kind, "scenario": sc.spec, "ok": False, "error": None, "acked": [], "outcome": "-"}
    n_chunks, chunk = (0 if sc.mono else args.chunks), args.chunk_mib * MiB
    total = n_chunks * chunk + sc.kill_chunk + (0 if sc.mono else args.tail_mib * MiB)
    rnd = random.Random(args.seed)
    data = b"".join(rnd.randbytes(MiB) for _ in range(total // MiB)) + rnd.randbytes(total % MiB)
    if sc.mono:
        data = data[:sc.kill_chunk]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    res["total"] = total = len(data)

    srv = make_server(kind, workdir, args)
    srv.start()
    try:
        reg = srv.client()
        name = args.repo
        scope = [f"repository:{name}:pull,push"]
        reg.login(scope)
        loc, off = (None, 0) if sc.mono else (reg.start_upload(name), 0)
        for i in range(n_chunks):
            loc, off = patch_chunk(reg, loc, data[off:off + chunk], off, f"chunk {i + 1}/{n_chunks}")
            res["acked"].append(off)
        if res["acked"]:
            log(f"  acknowledged offsets: {', '.join(mib(o) for o in res['acked'])}")
        last_ack = off
        pid = srv.pid
        sent, res["client_saw"] = send_killed_request(srv, reg, sc, loc, last_ack, data, name, digest, args)
        res["sent_in_killed"] = sent
        log(f"  killed pid {pid} (kill -9) with {mib(sent)} of the killed request's body sent, "
            f"starting at {mib(last_ack)}; the client saw {res['client_saw']}")
        reg.close()

        srv.port = free_port()
        srv.start()
        log(f"  restarted as pid {srv.pid} on port {srv.port}")
        reg = srv.client()
        reg.login(scope)
        if sc.mono:
            status, _, _ = reg.head_blob(name, digest)
            res["outcome"] = "landed" if checked(status, "HEAD blob after restart") == 200 else "absent"
            if res["outcome"] == "absent":
                push_whole(reg, name, data, digest, args)
        else:
            loc = resume_session(reg, res, loc, last_ack, sent, total, data, log, args)
            if loc is None:
                res["outcome"] = "404"
                log("  GET upload status: 404 (BLOB_UPLOAD_UNKNOWN): pushing the whole blob again")
                push_whole(reg, name, data, digest, args)
            else:
                res["outcome"] = "resumed"
                reg.expect("complete upload", "PUT", add_query(loc, digest=digest), (201,), body=b"",
                           headers={"Content-Length": "0"})
        log(f"  outcome: {res['outcome']}")

        status, rh, _ = reg.head_blob(name, digest)
        cl, dcd = header(rh, "Content-Length"), header(rh, "Docker-Content-Digest")
        if checked(status, "HEAD blob") != 200 or cl is None or int(cl) != total or (dcd and dcd != digest):
            raise BenchError(f"HEAD blob: {status}, Content-Length {cl}, Docker-Content-Digest {dcd}; "
                             f"expected 200, {total}, {digest}")
        status, rh, nbytes, got = reg.get_blob_hash(name, digest)
        if nbytes != total or got != digest:
            raise BenchError(f"GET blob returned {nbytes} bytes hashing to {got}; expected {total} bytes, {digest}")
        log(f"  HEAD 200 Content-Length {cl}; GET {nbytes} bytes, sha256 matches")
        res["ok"] = True
        reg.close()
    except FiveXX as e:
        res["outcome"], res["error"] = "5xx", str(e)
    except HTTPFailure as e:
        res["error"] = f"{type(e).__name__}: {e}"
        if e.status >= 500:
            res["outcome"] = "5xx"
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
                        "Content-Range, 'mono' for a POST ?digest=) and MiB sent before the kill "
                        "(repeatable; default 64:40, 192:160, stream:160, mono:40)")
    p.add_argument("--chunks", type=int, default=8, help="acknowledged chunks before the kill")
    p.add_argument("--chunk-mib", type=int, default=8, help="size of each acknowledged chunk")
    p.add_argument("--tail-mib", type=int, default=32,
                   help="extra data after the killed chunk's range")
    p.add_argument("--resume-chunk-mib", type=int, default=16, help="chunk size when resuming")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds between the last byte sent and kill -9")
    p.add_argument("--repo", default="bench/crash")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--rounds", type=int, default=1,
                   help="runs per scenario; after the first, the kill point is drawn in [0, AFTER]")
    add_server_args(p)
    args = p.parse_args()
    rnd = random.Random(args.seed)
    scenarios = []
    for spec in args.scenario or ["64:40", "192:160", "stream:160", "mono:40"]:
        scenarios.append(Scenario(spec))
        for _ in range(args.rounds - 1):
            scenarios.append(Scenario(spec, kill_after=rnd.randrange(scenarios[-1].kill_after + 1)))
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    root = make_workdir(args, "berth-bench-crash-")
    print(f"workdir: {root}", flush=True)

    def log(msg):
        print(msg, flush=True)

    results = []
    for kind in kinds:
        for i, sc in enumerate(scenarios):
            before = "" if sc.mono else f"{args.chunks} x {args.chunk_mib} MiB acknowledged, then "
            log(f"[{kind}] scenario {sc.spec}: {before}{sc.describe()}")
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
                     r["outcome"],
                     "PASS" if r["ok"] else "FAIL"])
    print()
    print(fmt_table(rows, ["server", "SHAPE:AFTER", "last ack", "sent", "Range after restart",
                           "resume offset", "partial chunk", "blob", "outcome", "result"]))
    counts = {k: sum(r["outcome"] == k for r in results) for k in ("resumed", "404", "absent", "landed", "5xx")}
    print("\n" + ", ".join(f"{k}: {v}" for k, v in counts.items())
          + f"; {sum(r['ok'] for r in results)}/{len(results)} blobs verified after the restart")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
