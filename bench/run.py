#!/usr/bin/env python3
"""Issue 9's benchmark: berth against Distribution (Debian's docker-registry), alternating,
in at least two rounds, plus the machine's limits from the same run and the login table of
bench/logins.py. Writes bench/RESULTS.md (keeping its "## Profiles" section).

    python3 bench/run.py              # the issue's sizes, 2 rounds (about 20 minutes)
    python3 bench/run.py --quick      # small sizes, same shapes (under 3 minutes)

Per round: the limits (openssl sha256, dd conv=fdatasync, a bare receiver, nginx sendfile GET), then each
server once (the order alternates between rounds), one server process for all its shapes:
  logins     berth only: N users created, N concurrent Basic-auth GET /token as N users,
             then N at once as one user
  mono       SIZE monolithic: POST, PUT ?digest= with the whole body
  chunked    SIZE in CHUNK PATCHes with Content-Range, then PUT
  streamed   SIZE as one PATCH, Transfer-Encoding: chunked, no Content-Range, then PUT
  pull       GET of that blob, 3 times (median)
  big        BIG as one streamed PATCH
  parallel   P clients at once, each pushing B blobs of PSIZE (POST, streamed PATCH, PUT)
  manifests  64 connections, one manifest by tag: GET with wrk, GET and HEAD with hey;
             the server on half the cores, wrk/hey on the other half
  tags       T tags created by wrk (16 connections), a page at T/10 and at T, the full list
  idle       the server's RSS after IDLE seconds without load
berth gets one bearer token (pull,push on every repository used) and sends it with every
request; Distribution runs without auth. Before each shape the server's VmHWM is reset
(/proc/PID/clear_refs), so each shape has its own peak, and the whole run's peak is the
largest of them. Exit status is non-zero when any request failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (MiB, BenchError, add_server_args, blob_digest, machine_line,  # noqa: E402
                     make_server, make_workdir, parse_size, reset_hwm)
import limits  # noqa: E402
import report  # noqa: E402
import shapes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPOS = {k: f"bench/{k}" for k in ("blobs", "parallel", "manifest", "tags")}

FULL = {"size": "1G", "big": "4G", "chunk": "16M", "parallel": 64, "parallel_size": "4M",
        "parallel_blobs": 4, "tags": 10000, "wrk_secs": 10, "logins": 64, "idle_secs": 5,
        "sha_secs": 3, "logins_args": ""}
QUICK = {"size": "64M", "big": "256M", "chunk": "16M", "parallel": 64, "parallel_size": "1M",
         "parallel_blobs": 1, "tags": 1000, "wrk_secs": 2, "logins": 64, "idle_secs": 2,
         "sha_secs": 1, "logins_args": "--flood-secs 3 --wrk-secs 3 --idle-secs 2"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_server(kind, args, workdir, block):
    """One server process through every shape; returns its figures."""
    srv = make_server(kind, workdir, args)
    srv.start()
    res = {"server": kind, "peaks": {}, "errors": [], "failed": 0}
    try:
        reg = srv.client()
        reg.login([f"repository:{r}:pull,push" for r in REPOS.values()])
        mem = srv.mem()
        res["rss_start"], res["peaks"]["start"] = mem["VmRSS"] / 1024, mem["VmHWM"] / 1024

        def phase(key, fn):
            if not wanted(args, key):
                return
            reg.refresh_if_old(300)
            reset_hwm(srv.pid)
            t0 = time.perf_counter()
            try:
                res[key] = fn()
            except Exception as e:  # counted as a failed request, reported, the round goes on
                res["failed"] += 1
                res["errors"].append(f"{key}: {type(e).__name__}: {e}")
                log(f"{kind} {key}: FAILED {e}")
                if srv.proc.poll() is not None:
                    raise BenchError(f"{kind} died\n{srv.log_tail()}") from e
            res["peaks"][key] = srv.mem()["VmHWM"] / 1024
            log(f"{kind} {key}: {short(res.get(key))} ({time.perf_counter() - t0:.1f} s, "
                f"peak RSS {res['peaks'][key]:.1f} MiB)")

        blobs = REPOS["blobs"]
        if kind == "berth":
            phase("logins", lambda: shapes.logins(srv, args.logins))
            # berth's password-hashing threads give their 12 MiB argon2 buffers back 2 s
            # after their last job (and jemalloc returns the pages within a second): wait
            # for that, or the next shapes' peaks (the "1 upload" one among them) start
            # from the logins' memory, depending on how fast those shapes happen to run.
            time.sleep(LOGINS_SETTLE_SECS)
        phase("mono", lambda: shapes.push_monolithic(reg, blobs, 1, args.size, block))
        phase("chunked", lambda: shapes.push_chunked(reg, blobs, 2, args.size, args.chunk, block))
        phase("streamed", lambda: shapes.push_streamed(reg, blobs, 3, args.size, block))
        if "streamed" in res:
            phase("pull", lambda: shapes.pull(srv, reg, blobs, res["streamed"]["digest"], args.size))
        phase("big", lambda: shapes.push_streamed(reg, blobs, 4, args.big, block))
        phase("parallel", lambda: shapes.parallel_pushes(reg, REPOS["parallel"], 1000, args.parallel,
                                                         args.parallel_size, args.parallel_blobs, block))
        res["failed"] += (res.get("parallel") or {}).get("failed", 0)
        phase("manifests", lambda: shapes.manifest_load(srv, reg, REPOS["manifest"], args.wrk_secs, 64))
        phase("tags", lambda: shapes.tags(srv, reg, REPOS["tags"], args.tags, args.tag_conns))
        reg.close()
        reset_hwm(srv.pid)
        time.sleep(args.idle_secs)
        mem = srv.mem()
        res["rss_after"], res["peaks"]["idle"] = mem["VmRSS"] / 1024, mem["VmHWM"] / 1024
        res["peak"] = max(res["peaks"].values())
        log(f"{kind}: RSS start {res['rss_start']:.1f} MiB, after {res['rss_after']:.1f} MiB, "
            f"peak {res['peak']:.1f} MiB")
    finally:
        srv.stop()
    return res


# After the logins shape (see run_server).
LOGINS_SETTLE_SECS = 4

SHAPES = ("logins", "mono", "chunked", "streamed", "pull", "big", "parallel", "manifests", "tags")


def wanted(args, key):
    """Whether --shapes selects `key` (pull needs the streamed push, which it then implies)."""
    if args.shapes == "all":
        return True
    chosen = set(args.shapes.split(","))
    return key in chosen or (key == "streamed" and "pull" in chosen)


def short(out):
    if not isinstance(out, dict):
        return "-"
    keys = ("mbs", "rate", "failed")
    parts = [f"{k} {out[k]:.0f}" for k in keys if isinstance(out.get(k), (int, float))]
    for sub in ("get", "get_hey", "head"):
        if sub in out:
            parts.append(f"{sub} {out[sub]['rps']:.0f}/s p99 {out[sub]['p99_ms']:.1f} ms")
    return ", ".join(parts) or "ok"


def run_limits(args, workdir, sha, block):
    out = {"sha256": sha}
    out["dd"], path = limits.dd_fdatasync_mbs(workdir, args.size)
    if wanted(args, "mono") or wanted(args, "streamed"):
        out["receiver"] = limits.bare_receiver_mbs(workdir, args.size, block)
    try:
        out["sendfile"], hey = limits.sendfile_ceiling_mbs(path, workdir, args.wrk_secs if wanted(args, "manifests") else 0)
    finally:
        os.unlink(path)
    out["hey_head_p99"] = hey and hey["p99_ms"]
    out["hey_head_rps"] = hey and hey["rate"]
    log(f"limits: sha256 {out['sha256']:.0f} MB/s, dd fdatasync {out['dd']:.0f} MB/s, "
        f"bare receiver {out.get('receiver') or 0:.0f} MB/s, "
        f"sendfile GET {out['sendfile'] or 0:.0f} MB/s, nginx HEAD p99 (hey) {out['hey_head_p99'] or 0:.2f} ms")
    return out


def run_logins_script(args):
    """bench/logins.py (the lead's), berth only; returns (its output, exit status)."""
    script = args.logins_script
    if not os.path.exists(script):
        return f"{script} not found: login table skipped", None
    argv = [sys.executable, script, "--berth-bin", args.berth_bin] + args.logins_args.split()
    if args.workdir:
        argv += ["--workdir", args.workdir]
    log(f"logins: {' '.join(argv[1:])}")
    out = subprocess.run(argv, capture_output=True, text=True)
    text = (out.stdout + out.stderr).rstrip()
    print(text, flush=True)
    return text, out.returncode


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: " + json.dumps(QUICK))
    p.add_argument("--servers", default="berth,distribution")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--size", help="blob of the mono/chunked/streamed/pull shapes (1G)")
    p.add_argument("--big", help="the second streamed push (4G)")
    p.add_argument("--chunk", help="Content-Range PATCH size (16M)")
    p.add_argument("--parallel", type=int, help="concurrent pushes (64)")
    p.add_argument("--parallel-size", help="blob size of the parallel pushes (4M)")
    p.add_argument("--parallel-blobs", type=int, help="blobs per parallel client (4)")
    p.add_argument("--tags", type=int, help="tags created (10000)")
    p.add_argument("--tag-conns", type=int, default=16, help="wrk connections creating tags (16)")
    p.add_argument("--wrk-secs", type=int, help="seconds of each wrk manifest run (10)")
    p.add_argument("--logins", type=int, help="concurrent Basic-auth logins per round (64)")
    p.add_argument("--idle-secs", type=float, help="wait before the RSS after the load (5)")
    p.add_argument("--sha-secs", type=int, help="seconds per block size of openssl speed (3)")
    p.add_argument("--logins-script", default=os.path.join(HERE, "logins.py"))
    p.add_argument("--logins-args", help="extra arguments for logins.py")
    p.add_argument("--berth-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for berth serve (repeatable), e.g. "
                        "BERTH_LIMITS__UPLOADS_PER_PRINCIPAL=64 or GLIBC_TUNABLES=...; default: none")
    p.add_argument("--shapes", default="all",
                   help="comma-separated subset of " + ",".join(SHAPES) + " (default all); the limits and "
                        "the idle RSS always run; logins.py only with logins")
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                   help="Markdown file to write ('' for none)")
    p.add_argument("--json", help="also write the raw figures to this file")
    add_server_args(p)
    args = p.parse_args()
    for k, v in (QUICK if args.quick else FULL).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for k in ("size", "big", "chunk", "parallel_size"):
        setattr(args, k, parse_size(getattr(args, k)))
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]

    root = make_workdir(args, "berth-bench-run-")
    block = os.urandom(MiB)
    log(f"{machine_line()}; workdir {root}")
    log("computing the blobs' digests ...")
    for seed, size in ((1, args.size), (2, args.size), (3, args.size), (4, args.big)):
        blob_digest(seed, size, block)

    rounds, lims = [], []
    try:
        for rnd in range(args.rounds):
            order = kinds if rnd % 2 == 0 else kinds[::-1]
            rdir = os.path.join(root, f"round{rnd + 1}")
            os.makedirs(rdir)
            log(f"round {rnd + 1}/{args.rounds}: {', '.join(order)}")
            lims.append(run_limits(args, rdir, limits.sha256_mbs(args.sha_secs), block))
            for kind in order:
                wdir = os.path.join(rdir, kind)
                try:
                    rounds.append(dict(run_server(kind, args, wdir, block), round=rnd + 1))
                finally:
                    if not args.keep:
                        shutil.rmtree(wdir, ignore_errors=True)
        run_script = "berth" in kinds and wanted(args, "logins")
        logins_text, logins_rc = run_logins_script(args) if run_script else ("", None)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    cmd = "python3 bench/run.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    doc = report.render(args, kinds, rounds, lims, logins_text, logins_rc, cmd)
    print("\n" + doc)
    if args.results:
        report.write(args.results, doc)
        log(f"wrote {args.results}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds, "limits": lims, "logins": logins_text}, f, indent=1, default=str)
    failed = sum(r["failed"] for r in rounds) + (1 if logins_rc else 0)
    for r in rounds:
        for e in r["errors"]:
            print(f"ERROR {r['server']} round {r['round']}: {e}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
