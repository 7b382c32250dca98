#!/usr/bin/env python3
"""GC pass speed (issue 10): how long one `berth gc` takes over many unreferenced links and
blobs, optionally while writers push into the same registry.

Setup: a berth data dir whose repository `gc/a` links --links blobs through links an hour
old that no manifest references, and `gc/b` links the same blobs through young links
(rows written straight into the SQLite database; the blobs have no files). Then:
  links  a pass (grace 60 s) removes the --links old links of `gc/a`, keeps every blob;
  blobs  `gc/b`'s links are aged too: a pass removes --links links and --links blob rows.
With --writers N, a berth server runs on the same data dir and N clients push small blobs
into `gc/w` for the whole pass (the collector then competes for SQLite's write lock).

    python3 bench/gc_pass.py --berth-bin BIN --links 20000 --writers 64
"""

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Berth, DEFAULT_BERTH_BIN, make_workdir  # noqa: E402

HOUR = 3600


def seed(db_path, n):
    """Links of gc/a (old) and gc/b (young) to n blob rows; returns gc/b's repository id."""
    now = int(time.time())
    db = sqlite3.connect(db_path)
    ids = dict(db.execute("SELECT name, id FROM repositories WHERE name IN ('gc/a', 'gc/b')"))
    digests = ["sha256:" + hashlib.sha256(f"gc-pass-{i}".encode()).hexdigest() for i in range(n)]
    db.executemany("INSERT INTO blobs (digest, size, created_at) VALUES (?, 1, ?)", [(d, now - HOUR) for d in digests])
    db.executemany("INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES (?, ?, ?)",
                   [(ids["gc/a"], d, now - HOUR) for d in digests])
    db.executemany("INSERT INTO repo_blobs (repo_id, digest, created_at) VALUES (?, ?, ?)",
                   [(ids["gc/b"], d, now + 365 * 24 * HOUR) for d in digests])
    db.commit()
    db.close()
    return ids["gc/b"]


def age_links(db_path, repo_id):
    db = sqlite3.connect(db_path)
    db.execute("UPDATE repo_blobs SET created_at = ? WHERE repo_id = ?", (int(time.time()) - HOUR, repo_id))
    db.commit()
    db.close()


def writer(srv, n, stop, pushed):
    reg = srv.client()
    reg.login(["repository:gc/w:pull,push"])
    i = 0
    while not stop.is_set():
        reg.push_blob_monolithic("gc/w", f"writer {n} blob {i} {time.time()}".encode())
        i += 1
    pushed.append(i)


def timed_pass(args, data_dir, label):
    env = dict(os.environ, BERTH_DATA_DIR=data_dir, BERTH_GC__BLOB_GRACE_SECS="60")
    t0 = time.time()
    out = subprocess.run([args.berth_bin, "gc"], env=env, capture_output=True, check=True).stdout
    took = time.time() - t0
    report = json.loads(out)
    print(f"{label}: {took:.2f} s; links removed {len(report['links_removed'])}, "
          f"blobs removed {report['blobs_removed']}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--links", type=int, default=20000)
    p.add_argument("--writers", type=int, default=0, help="clients pushing during each pass")
    p.add_argument("--berth-bin", default=DEFAULT_BERTH_BIN)
    p.add_argument("--workdir")
    args = p.parse_args()
    root = make_workdir(args, "berth-gc-pass-")
    srv = Berth(root, binary=args.berth_bin)
    try:
        srv.start()
        reg = srv.client()
        reg.login(["repository:gc/a:pull,push", "repository:gc/b:pull,push"])
        for repo in ("gc/a", "gc/b"):
            reg.push_blob_monolithic(repo, f"creates {repo}".encode())
        srv.stop()
        db_path = os.path.join(srv.data_dir, "berth.db")
        repo_b = seed(db_path, args.links)
        print(f"{args.links} unreferenced links seeded; {args.writers} writers; {args.berth_bin}", flush=True)
        for phase in ("links", "blobs"):
            if phase == "blobs":
                age_links(db_path, repo_b)
            stop, pushed, threads = threading.Event(), [], []
            if args.writers:
                srv.start()
                threads = [threading.Thread(target=writer, args=(srv, n, stop, pushed)) for n in range(args.writers)]
                for t in threads:
                    t.start()
                time.sleep(2)
            timed_pass(args, srv.data_dir, phase)
            stop.set()
            for t in threads:
                t.join()
            if args.writers:
                srv.stop()
                print(f"  writers pushed {sum(pushed)} blobs meanwhile", flush=True)
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
