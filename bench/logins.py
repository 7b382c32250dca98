#!/usr/bin/env python3
"""Logins under load: what Basic-auth token requests cost berth in memory and time.

On a fresh berth (release build), with the server's VmRSS sampled every 50 ms throughout:
  users       create --users ordinary users through POST /api/v1/users
  cold        --users concurrent GET /token, each as a different user (nothing cached:
              one argon2 verification each, bounded by the hashing pool)
  same        64 concurrent GET /token as one user whose password is not cached yet
              (single flight: one verification for all of them)
  flood       --flood-secs of wrong passwords for random user names from 127.0.0.2 (8
              threads), while 8 threads fetch tokens for valid users from 127.0.0.1; the
              valid ones must all get 200
  warm        wrk, 64 connections, --wrk-secs: GET /token with Basic credentials that are
              cached, one repository scope (tokens/s and p99)
  bearer      wrk, 64 connections: GET /v2/<repo>/manifests/<tag> with one bearer token
  idle        RSS after --idle-secs without load
Prints one table: phase, requests, statuses, rate, peak RSS during the phase. Exits
non-zero when a valid login is refused or any request gets a 5xx.

Distribution has no token service, so there is nothing to compare these with; the
memory target of the resources issue is Distribution's peak RSS in bench/run.py.
"""

import argparse
import base64
import collections
import concurrent.futures as cf
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (BenchError, Berth, DEFAULT_BERTH_BIN, make_workdir, proc_status,  # noqa: E402
                     fmt_table)


class Sampler(threading.Thread):
    """Samples VmRSS of a pid every `period` seconds; `mark()` starts a new phase."""

    def __init__(self, pid, period=0.05):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.peak = 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            time.sleep(self.period)

    def mark(self):
        """Returns the peak since the last mark (KiB) and starts over."""
        p, self.peak = self.peak, proc_status(self.pid)["VmRSS"]
        return max(p, self.peak)


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


class Conn:
    """One keep-alive connection, optionally from a given source address."""

    def __init__(self, port, source="127.0.0.1"):
        self.port, self.source = port, source
        self.c = None

    def get(self, path, headers):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120,
                                                    source_address=(self.source, 0))
            try:
                self.c.request("GET", path, headers=headers)
                r = self.c.getresponse()
                body = r.read()
                return r.status, body
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def token_path(scope):
    return f"/token?service=berth&scope={scope}"


def api(port, method, path, auth, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    hdrs = {"Authorization": auth, "Content-Type": "application/json"}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def concurrent_tokens(port, creds, scope):
    """One GET /token per (user, password), all at once; returns a Counter of statuses."""
    barrier = threading.Barrier(len(creds))

    def one(cred):
        conn = Conn(port)
        barrier.wait()
        return conn.get(token_path(scope), {"Authorization": basic(*cred)})[0]

    with cf.ThreadPoolExecutor(len(creds)) as ex:
        return collections.Counter(ex.map(one, creds))


def run_wrk(port, path, headers, secs, conns=64):
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("wrk not found (apt-get install wrk)")
    argv = [wrk, "-t2", f"-c{conns}", f"-d{secs}s", "--latency"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run(argv + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    return {"rate": rate, "total": total, "non2xx": int(non2xx.group(1)) if non2xx else 0, "p99": p99_ms}


def push_manifest(port, token, repo, tag):
    """Pushes an empty config + one small layer + a manifest; returns the manifest path."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    auth = {"Authorization": f"Bearer {token}"}

    def blob(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", body=data,
                  headers={**auth, "Content-Length": str(len(data))})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            raise BenchError(f"blob push answered {r.status}")
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)}

    cfg = blob(b"{}")
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    layer = blob(os.urandom(1024))
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cfg, "layers": [layer]}).encode()
    c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=m,
              headers={**auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        raise BenchError(f"manifest push answered {r.status}")
    c.close()
    return f"/v2/{repo}/manifests/{tag}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--berth-bin", default=DEFAULT_BERTH_BIN)
    p.add_argument("--workdir")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--flood-secs", type=float, default=10)
    p.add_argument("--wrk-secs", type=int, default=10)
    p.add_argument("--idle-secs", type=float, default=5)
    args = p.parse_args()

    workdir = make_workdir(args, "berth-logins-")
    server = Berth(workdir, binary=args.berth_bin)
    server.start()
    port = server.port
    admin = basic("admin", server.password)
    sampler = Sampler(server.pid)
    sampler.start()
    rows = []
    failed = False
    start_rss = proc_status(server.pid)["VmRSS"]
    rows.append(["start", "", "", "", "", f"{start_rss / 1024:.1f}"])
    sampler.mark()
    try:
        creds = [(f"user{i}", base64.b32encode(os.urandom(10)).decode().lower()) for i in range(args.users)]
        t0 = time.time()
        for u, pw in creds:
            st, body = api(port, "POST", "/api/v1/users", admin, {"username": u, "password": pw, "role": "user"})
            if st != 201:
                raise BenchError(f"creating {u}: {st} {body!r}")
        dt = time.time() - t0
        rows.append(["users", len(creds), "201", f"{len(creds) / dt:.0f}/s", "", f"{sampler.mark() / 1024:.1f}"])

        scope = "repository:bench/app:pull"
        for name, cs in (("cold", creds), ("same", [("admin", server.password)] * 64)):
            t0 = time.time()
            statuses = concurrent_tokens(port, cs, scope)
            dt = time.time() - t0
            ok = statuses.get(200, 0)
            failed |= ok != len(cs) and name == "same"
            failed |= any(s >= 500 for s in statuses)
            rows.append([name, len(cs), dict(statuses), f"{len(cs) / dt:.0f}/s", f"{dt * 1000:.0f} ms",
                         f"{sampler.mark() / 1024:.1f}"])
        # Make sure every user's password is cached for the flood's valid logins.
        concurrent_tokens(port, creds[:8], scope)

        stop = threading.Event()
        flood_status, valid_status = collections.Counter(), collections.Counter()
        lock = threading.Lock()

        def flooder():
            conn = Conn(port, source="127.0.0.2")
            while not stop.is_set():
                u = "nobody" + os.urandom(6).hex()
                st, _ = conn.get(token_path(scope), {"Authorization": basic(u, "wrong")})
                with lock:
                    flood_status[st] += 1

        def valid(i):
            conn = Conn(port)
            u, pw = creds[i % len(creds)]
            while not stop.is_set():
                st, _ = conn.get(token_path(scope), {"Authorization": basic(u, pw)})
                with lock:
                    valid_status[st] += 1

        threads = [threading.Thread(target=flooder) for _ in range(8)]
        threads += [threading.Thread(target=valid, args=(i,)) for i in range(8)]
        t0 = time.time()
        for t in threads:
            t.start()
        time.sleep(args.flood_secs)
        stop.set()
        for t in threads:
            t.join()
        dt = time.time() - t0
        failed |= set(valid_status) != {200} or any(s >= 500 for s in flood_status)
        rows.append(["flood (wrong)", sum(flood_status.values()), dict(flood_status),
                     f"{sum(flood_status.values()) / dt:.0f}/s", "", ""])
        rows.append(["flood (valid)", sum(valid_status.values()), dict(valid_status),
                     f"{sum(valid_status.values()) / dt:.0f}/s", "", f"{sampler.mark() / 1024:.1f}"])

        u, pw = creds[-1]
        w = run_wrk(port, token_path(scope), {"Authorization": basic(u, pw)}, args.wrk_secs)
        failed |= w["non2xx"] > 0
        rows.append(["warm (wrk)", w["total"], f"non-2xx {w['non2xx']}", f"{w['rate']:.0f}/s",
                     f"p99 {w['p99']:.1f} ms", f"{sampler.mark() / 1024:.1f}"])

        c = Conn(port)
        st, body = c.get(token_path("repository:bench/app:pull,push"), {"Authorization": admin})
        token = json.loads(body)["token"]
        path = push_manifest(port, token, "bench/app", "latest")
        w = run_wrk(port, path, {"Authorization": f"Bearer {token}",
                                 "Accept": "application/vnd.oci.image.manifest.v1+json"}, args.wrk_secs)
        failed |= w["non2xx"] > 0
        rows.append(["bearer GET (wrk)", w["total"], f"non-2xx {w['non2xx']}", f"{w['rate']:.0f}/s",
                     f"p99 {w['p99']:.1f} ms", f"{sampler.mark() / 1024:.1f}"])

        time.sleep(args.idle_secs)
        idle = proc_status(server.pid)
        rows.append(["idle", "", "", "", f"after {args.idle_secs:.0f} s", f"{idle['VmRSS'] / 1024:.1f}"])
        rows.append(["VmHWM", "", "", "", "", f"{idle['VmHWM'] / 1024:.1f}"])
    finally:
        sampler.stop_flag.set()
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(fmt_table(rows, ["phase", "requests", "statuses", "rate", "time", "peak RSS MiB"]))
    # The binary's version line (with its git commit), not its path: results get pasted
    # into files read on other machines.
    version = subprocess.run([args.berth_bin, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"cores: {os.cpu_count()}; {version}")
    if failed:
        print("FAILED: a valid login was refused, or a request got a 5xx", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
