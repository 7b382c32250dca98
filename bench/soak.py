#!/usr/bin/env python3
"""Soak: many clients mixing pushes, pulls, tag lists, tag and manifest deletes against one
berth while its garbage collector runs every --gc-interval seconds (issue 10, Deliver 5).

Each client owns the images it pushes (tags `c<client>-<n>` in one of --repos
repositories); layers come from a shared pool, so blobs are shared between images and
come back after a pass collected them. Operations, by weight:
  push      an image (config + 1-2 layers) by one of three shapes: monolithic POST,
            Content-Range PATCHes, one streamed PATCH; then the manifest under its tag
  pull      one of the client's own tagged images: manifest and blobs must read back
            byte-exact (an image of another client: 200 with the right bytes, or 404)
  tags      GET /v2/<repo>/tags/list
  untag     DELETE one of its tags (the image goes at a later pass)
  delete    DELETE one of its manifests by digest
The collector runs inside berth (gc.interval_secs) with a short grace period and
untagged manifests expiring, so it races the clients for real.

Reported: requests served and per operation, 5xx (must be 0), other unexpected answers,
acknowledged data lost (an own tagged image that does not read back, must be 0), the
server's RSS at 1 minute and at the end, and the collector's passes. Exits non-zero on
any 5xx, unexpected answer or loss.

    cargo build --release && python3 bench/soak.py                 # 10 min, 64 clients
    python3 bench/soak.py --duration 120 --clients 16              # a short one
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (Berth, BenchError, header, loc_path, make_workdir, add_query,  # noqa: E402
                     DEFAULT_BERTH_BIN, proc_status)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WEIGHTS = [("push", 35), ("pull", 35), ("tags", 12), ("untag", 12), ("delete", 6)]


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.ops = {name: 0 for name, _ in WEIGHTS}
        self.five_xx = []
        self.unexpected = []
        self.lost = []
        self.transient_404 = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if isinstance(getattr(self, k), list):
                    getattr(self, k).append(v)
                else:
                    setattr(self, k, getattr(self, k) + v)

    def op(self, name):
        with self.lock:
            self.ops[name] += 1


class Client(threading.Thread):
    def __init__(self, n, reg, args, pool, stats, stop, seed):
        super().__init__(daemon=True)
        self.n, self.reg, self.args, self.pool, self.stats, self.stop = n, reg, args, pool, stats, stop
        self.rng = random.Random(seed)
        self.images = []  # (repo, tag, manifest digest, manifest bytes, [blob bytes])
        self.count = 0

    # one request, counted; 5xx and unexpected statuses recorded
    def call(self, what, method, path, ok, body=None, headers=None):
        status, rh, data = self.reg.request(method, path, body=body, headers=headers)
        self.stats.add(requests=1)
        if status >= 500:
            self.stats.add(five_xx=f"{what}: {method} {path} -> {status} {data[:200]!r}")
        elif status not in ok:
            self.stats.add(unexpected=f"{what}: {method} {path} -> {status} {data[:200]!r}")
        return status, rh, data

    def run(self):
        names = [n for n, _ in WEIGHTS]
        weights = [w for _, w in WEIGHTS]
        while not self.stop.is_set():
            op = self.rng.choices(names, weights)[0]
            if op != "push" and not self.images:
                op = "push"
            try:
                self.reg.refresh_if_old()
                getattr(self, op)()
                self.stats.op(op)
            except Exception as e:  # a dropped connection, a bug in here: count, go on
                self.reg.close()
                self.stats.add(unexpected=f"{op}: {type(e).__name__}: {e}")

    def push_blob(self, repo, data):
        d = digest_of(data)
        st, _, _ = self.call("HEAD blob", "HEAD", f"/v2/{repo}/blobs/{d}", (200, 404))
        if st == 200:
            return True
        shape = self.rng.choice(("monolithic", "chunked", "streamed"))
        if shape == "monolithic":
            st, _, _ = self.call("POST ?digest=", "POST", f"/v2/{repo}/blobs/uploads/?digest={d}", (201,),
                                 body=data, headers={"Content-Type": "application/octet-stream"})
            return st == 201
        st, rh, _ = self.call("POST upload", "POST", f"/v2/{repo}/blobs/uploads/", (202,), body=b"")
        if st != 202:
            return False
        loc = loc_path(header(rh, "Location"))
        if shape == "chunked":
            step = max(1, len(data) // 3)
            for off in range(0, len(data), step):
                piece = data[off:off + step]
                st, rh, _ = self.call("PATCH chunk", "PATCH", loc, (202,), body=piece, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{off}-{off + len(piece) - 1}"})
                if st != 202:
                    return False
        else:
            status, rh, body = self.reg.send_streaming(
                "PATCH", loc, (data[i:i + 65536] for i in range(0, len(data), 65536)))
            self.stats.add(requests=1)
            if status >= 500:
                self.stats.add(five_xx=f"streamed PATCH -> {status} {body[:200]!r}")
            if status != 202:
                if status < 500:
                    self.stats.add(unexpected=f"streamed PATCH -> {status} {body[:200]!r}")
                return False
        st, _, _ = self.call("PUT upload", "PUT", add_query(loc, digest=d), (201,), body=b"")
        return st == 201

    def push(self):
        repo = f"soak/r{self.rng.randrange(self.args.repos)}"
        self.count += 1
        tag = f"c{self.n}-{self.count}"
        config = json.dumps({"client": self.n, "n": self.count, "os": "linux"}).encode()
        layers = self.rng.sample(self.pool, self.rng.choice((1, 2)))
        for blob in [config] + layers:
            if not self.push_blob(repo, blob):
                return
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(b), "size": len(b)} for b in layers],
        }).encode()
        # 400 MANIFEST_BLOB_UNKNOWN: a pass took a link between HEAD and PUT (documented)
        st, _, _ = self.call("PUT manifest", "PUT", f"/v2/{repo}/manifests/{tag}", (201, 400), body=manifest,
                             headers={"Content-Type": OCI_MANIFEST})
        if st == 201:
            self.images.append((repo, tag, digest_of(manifest), manifest, [config] + layers))

    def read_blob(self, repo, blob):
        path = f"/v2/{repo}/blobs/{digest_of(blob)}"
        st, _, data = self.call("GET blob", "GET", path, (200, 404))
        if st == 404:  # the instant in which a pass restores a blob it had trashed
            self.stats.add(transient_404=1)
            time.sleep(0.1)
            st, _, data = self.call("GET blob again", "GET", path, (200, 404))
        return st, data

    def pull(self):
        repo, tag, _, manifest, blobs = self.rng.choice(self.images)
        st, _, data = self.call("GET manifest", "GET", f"/v2/{repo}/manifests/{tag}", (200,),
                                headers={"Accept": OCI_MANIFEST})
        if st != 200 or data != manifest:
            self.stats.add(lost=f"{repo}:{tag}: manifest {st}")
            return
        for blob in blobs:
            st, data = self.read_blob(repo, blob)
            if st != 200 or data != blob:
                self.stats.add(lost=f"{repo}:{tag}: blob {digest_of(blob)} -> {st}")

    def verify_all(self):
        for repo, tag, _, manifest, blobs in self.images:
            try:
                self.reg.refresh_if_old()
                st, _, data = self.call("final GET manifest", "GET", f"/v2/{repo}/manifests/{tag}", (200,),
                                        headers={"Accept": OCI_MANIFEST})
                if st != 200 or data != manifest:
                    self.stats.add(lost=f"final {repo}:{tag}: manifest {st}")
                for blob in blobs:
                    st, data = self.read_blob(repo, blob)
                    if st != 200 or data != blob:
                        self.stats.add(lost=f"final {repo}:{tag}: blob -> {st}")
            except Exception as e:
                self.reg.close()
                self.stats.add(unexpected=f"final read-back: {type(e).__name__}: {e}")

    def tags(self):
        repo = f"soak/r{self.rng.randrange(self.args.repos)}"
        self.call("tags/list", "GET", f"/v2/{repo}/tags/list", (200, 404))

    def untag(self):
        repo, tag, _, _, _ = self.images.pop(self.rng.randrange(len(self.images)))
        self.call("DELETE tag", "DELETE", f"/v2/{repo}/manifests/{tag}", (202,))

    def delete(self):
        repo, _, digest, _, _ = self.images.pop(self.rng.randrange(len(self.images)))
        self.call("DELETE manifest", "DELETE", f"/v2/{repo}/manifests/{digest}", (202,))


def rss_kib(pid):
    return proc_status(pid).get("VmRSS")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=600, help="seconds (default 600)")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--repos", type=int, default=8)
    p.add_argument("--gc-interval", type=int, default=30, help="seconds between collection passes")
    p.add_argument("--grace", type=int, default=5, help="gc.blob_grace_secs")
    p.add_argument("--untagged", default="20s", help="gc.untagged")
    p.add_argument("--layers", type=int, default=48, help="layers in the shared pool")
    p.add_argument("--max-layer-kib", type=int, default=512)
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument("--berth-bin", default=DEFAULT_BERTH_BIN)
    p.add_argument("--workdir")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    root = make_workdir(args, "berth-soak-")
    rng = random.Random(args.seed)
    pool = [rng.randbytes(rng.randint(1, args.max_layer_kib << 10)) for _ in range(args.layers)]

    srv = Berth(root, binary=args.berth_bin)
    os.environ.update({
        "BERTH_GC__INTERVAL_SECS": str(args.gc_interval),
        "BERTH_GC__BLOB_GRACE_SECS": str(args.grace),
        "BERTH_GC__UNTAGGED": args.untagged,
    })
    srv.start()
    print(f"workdir {root}; berth pid {srv.pid} on port {srv.port}; {args.clients} clients for "
          f"{args.duration:g} s; gc every {args.gc_interval} s (grace {args.grace} s, untagged {args.untagged})",
          flush=True)
    stats, stop = Stats(), threading.Event()
    ok = False
    try:
        base = srv.client()
        base.login([f"repository:soak/r{i}:pull,push,delete" for i in range(args.repos)])
        clients = [Client(i, base.clone(), args, pool, stats, stop, rng.random()) for i in range(args.clients)]
        t0 = time.time()
        for c in clients:
            c.start()
        rss = {}
        next_report = 10
        while (elapsed := time.time() - t0) < args.duration:
            time.sleep(min(1.0, args.duration - elapsed))
            elapsed = time.time() - t0
            if elapsed >= 60 and 60 not in rss:
                rss[60] = rss_kib(srv.pid)
            if elapsed >= next_report:
                next_report += 30
                print(f"  {elapsed:5.0f} s: {stats.requests} requests, {len(stats.five_xx)} 5xx, "
                      f"{len(stats.unexpected)} unexpected, {len(stats.lost)} lost, RSS {rss_kib(srv.pid)} KiB",
                      flush=True)
        rss["end"] = rss_kib(srv.pid)
        ran = time.time() - t0
        stop.set()
        for c in clients:
            c.join(timeout=120)
        # Every client reads back every image it still has tagged, all clients at once.
        checkers = [threading.Thread(target=c.verify_all, daemon=True) for c in clients]
        for t in checkers:
            t.start()
        for t in checkers:
            t.join()
        with open(srv.log_path, "rb") as f:
            passes = f.read().decode("utf-8", "replace").count("garbage collection")
        kept = sum(len(c.images) for c in clients)
        print(f"\n{stats.requests} requests ({ran:.0f} s of load, then the final read-back); operations {stats.ops}")
        print(f"5xx: {len(stats.five_xx)}; unexpected: {len(stats.unexpected)}; "
              f"acknowledged data lost: {len(stats.lost)}; transient blob 404s (retried): {stats.transient_404}")
        print(f"RSS: {rss.get(60)} KiB at 1 min, {rss['end']} KiB at the end; collection passes logged: {passes}; "
              f"images still tagged and verified at the end: {kept}")
        for what in (stats.five_xx, stats.unexpected, stats.lost):
            for line in what[:10]:
                print("  " + line)
        ok = not (stats.five_xx or stats.unexpected or stats.lost)
    except BenchError as e:
        print(f"error: {e}")
    finally:
        stop.set()
        srv.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
