#!/usr/bin/env python3
"""Profile berth on one shape of bench/run.py: where its CPU time or its memory goes.

    python3 bench/profile.py manifests              # perf record -g during manifest GET, 64 conns
    python3 bench/profile.py parallel               # perf record -g during 64 parallel pushes
    python3 bench/profile.py parallel --tool massif # valgrind --tool=massif over the same pushes
    python3 bench/profile.py parallel --tool rss    # VmRSS every 10 ms during the pushes
    python3 bench/profile.py parallel --tool strace # count and wall time of the syncs and sleeps
                                      # (STRACE_MODE=-T: every such call with its time)
    python3 bench/profile.py pull|tags|logins|streamed  # 1 GiB pull (3 GETs), 10,000 tags,
                                      # cached Basic-auth GET /token (wrk), 1 GiB streamed PATCH

perf attaches to the running server (`perf record -g -p PID`) for the shape only and
writes OUT/perf-SHAPE.data plus OUT/perf-SHAPE.txt (`perf report --no-children`, symbols
over 0.5 %). massif runs the whole server under valgrind and writes OUT/massif-SHAPE.out
and its `ms_print` as OUT/massif-SHAPE.txt. OUT is --out (default: a fresh temp dir).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import MiB, Berth, DEFAULT_BERTH_BIN, parse_size, proc_status, run_wrk  # noqa: E402
import shapes  # noqa: E402


class ValgrindBerth(Berth):
    def __init__(self, workdir, binary, massif_out, extra_env):
        super().__init__(workdir, binary=binary, extra_env=extra_env)
        self.massif_out = massif_out

    def argv(self):
        return ["valgrind", "--tool=massif", f"--massif-out-file={self.massif_out}", self.binary, "serve"]


# What --tool strace counts: the syncs, the sleeps (SQLite's busy handler sleeps while
# another connection holds the write lock) and the directory changes around them.
STRACE_MODE = os.environ.get("STRACE_MODE", "-c -w").split()
STRACE_CALLS = "fsync,fdatasync,clock_nanosleep,nanosleep,rename,renameat2,mkdir,mkdirat,unlinkat"


def prepare(args, srv, reg, block):
    """What a shape needs before the profiler starts: the blob a pull reads."""
    if args.shape == "pull":
        return shapes.push_streamed(reg, "bench/blobs", 3, args.size, block)["digest"]
    return None


def run_shape(args, srv, reg, block, prepared):
    if args.shape == "manifests":
        return shapes.manifest_load(srv, reg, "bench/manifest", args.secs, 64)
    if args.shape == "pull":
        return [shapes.pull(srv, reg, "bench/blobs", prepared, args.size) for _ in range(3)]
    if args.shape == "streamed":
        return shapes.push_streamed(reg, "bench/blobs", 5, args.size, block)
    if args.shape == "tags":
        return shapes.tags(srv, reg, "bench/tags", args.tags, 16)
    if args.shape == "logins":
        # Basic-auth token requests whose credential is cached (the login above cached it)
        w = run_wrk(f"http://{srv.host}:{srv.port}/token?service=berth&scope=repository:bench/blobs:pull",
                    {"Authorization": shapes.basic(*srv.credentials())}, secs=args.secs, conns=64)
        return {k: w[k] for k in ("rate", "total", "non2xx", "p99_ms")}
    return shapes.parallel_pushes(reg, "bench/parallel", 1000, args.parallel, args.parallel_size,
                                  args.parallel_blobs, block)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shape", choices=["manifests", "parallel", "pull", "tags", "logins", "streamed"])
    p.add_argument("--tool", choices=["perf", "massif", "rss", "strace"], default="perf")
    p.add_argument("--berth-bin", default=DEFAULT_BERTH_BIN)
    p.add_argument("--out", default=None)
    p.add_argument("--secs", type=int, default=10, help="wrk seconds for manifests")
    p.add_argument("--call-graph", default=None,
                   help="perf --call-graph mode (e.g. dwarf,16384; default: -g, frame pointers)")
    p.add_argument("--parallel", type=int, default=64)
    p.add_argument("--parallel-size", default="4M")
    p.add_argument("--parallel-blobs", type=int, default=4)
    p.add_argument("--berth-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for berth serve (repeatable)")
    p.add_argument("--size", default="1G", help="blob size for pull and streamed")
    p.add_argument("--tags", type=int, default=10000)
    args = p.parse_args()
    args.parallel_size = parse_size(args.parallel_size)
    args.size = parse_size(args.size)
    out = args.out or tempfile.mkdtemp(prefix="berth-profile-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="berth-profile-work-")
    block = os.urandom(MiB)
    massif = os.path.join(out, f"massif-{args.shape}.out")
    env = dict(kv.split("=", 1) for kv in args.berth_env)
    srv = (ValgrindBerth(work, args.berth_bin, massif, env) if args.tool == "massif"
           else Berth(work, binary=args.berth_bin, extra_env=env))
    srv.start(timeout=300)
    perf = None
    try:
        reg = srv.client()
        reg.login([f"repository:bench/{r}:pull,push" for r in ("manifest", "parallel", "blobs", "tags")])
        prepared = prepare(args, srv, reg, block)
        samples = []
        stop = threading.Event()
        if args.tool == "perf":
            data = os.path.join(out, f"perf-{args.shape}.data")
            cg = ["--call-graph", args.call_graph, "-F", "499"] if args.call_graph else ["-g"]
            perf = subprocess.Popen(["perf", "record", *cg, "-o", data, "-p", str(srv.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        elif args.tool == "strace":
            # Only the syscalls that wait on the disk or sleep, so the others run untraced
            # (--seccomp-bpf); -w: wall time per call, the time a request waited.
            data = os.path.join(out, f"strace-{args.shape}.txt")
            perf = subprocess.Popen(["strace", "-f", *STRACE_MODE, "--seccomp-bpf", "-o", data,
                                     "-e", f"trace={STRACE_CALLS}", "-p", str(srv.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        elif args.tool == "rss":
            def sample():
                while not stop.is_set():
                    st = proc_status(srv.pid)
                    samples.append((time.perf_counter(), st["VmRSS"] / 1024, st.get("RssAnon", 0) / 1024,
                                    st.get("RssFile", 0) / 1024, st.get("Threads", 0)))
                    time.sleep(0.01)
            threading.Thread(target=sample, daemon=True).start()
        t0, cpu0 = time.perf_counter(), srv.cpu()
        result = run_shape(args, srv, reg, block, prepared)
        print(f"{args.shape}: {result} in {time.perf_counter() - t0:.1f} s, server CPU "
              f"{srv.cpu() - cpu0:.1f} s; VmHWM {srv.mem()['VmHWM'] / 1024:.1f} MiB", flush=True)
        stop.set()
        if samples:
            for t, rss, anon, file, threads in samples[::max(1, len(samples) // 40)]:
                print(f"  {t - samples[0][0]:6.2f} s  VmRSS {rss:7.1f} MiB (anon {anon:6.1f}, file {file:5.1f})"
                      f"  threads {threads:4.0f}")
        if perf and args.tool == "strace":
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            perf = None
            if "-c" in STRACE_MODE:
                print(open(data).read())
            print(f"wrote {data}")
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            perf = None
            txt = os.path.join(out, f"perf-{args.shape}.txt")
            with open(txt, "w") as f:
                subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "0.5",
                                "--sort", "dso,symbol", "-g", "none"], stdout=f, stderr=subprocess.DEVNULL)
            print(f"wrote {data} and {txt}")
    finally:
        if perf and perf.poll() is None:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.tool == "massif" and os.path.exists(massif):
        txt = os.path.join(out, f"massif-{args.shape}.txt")
        with open(txt, "w") as f:
            subprocess.run(["ms_print", massif], stdout=f)
        print(f"wrote {massif} and {txt}")


if __name__ == "__main__":
    main()
