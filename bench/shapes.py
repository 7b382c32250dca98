"""The workloads of issue 9, each run against one running server (berth or Distribution).

Every function takes the server (`_common.Server`), a `Registry` client that already holds
a token when the server asks for one, and the sizes; it returns a dict of figures and
raises `BenchError` (with the exact request and response) when a request fails. Blob
bodies come from `_common.blob_pieces`: made on the fly, distinct per seed, their digests
computed before the clock starts, so the client does not hash while it measures.

MB/s here is 10^6 bytes per second, as `openssl speed` and `dd` report it.
"""

import collections
import concurrent.futures as cf
import base64
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

from _common import (BenchError, HTTPFailure, add_query, blob_digest, blob_pieces, fast_get, header,
                     loc_path, run_hey, run_parallel, run_wrk, server_on_own_cores,
                     sha256_digest)

HERE = os.path.dirname(os.path.abspath(__file__))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCTET = "application/octet-stream"


def _mbs(size, seconds):
    return size / 1e6 / seconds if seconds else None


def _complete(reg, loc, digest, size, what):
    """PUT <loc>?digest= with an empty body; must answer 201 with the digest."""
    path = add_query(loc, digest=digest)
    status, rh, body = reg.request("PUT", path, body=b"", headers={"Content-Length": "0"})
    if status != 201:
        raise HTTPFailure(f"{what}: completing PUT", "PUT", path, {}, status, rh, body)
    got = header(rh, "Docker-Content-Digest")
    if got and got != digest:
        raise BenchError(f"{what}: PUT answered Docker-Content-Digest {got}, expected {digest}")


def push_monolithic(reg, name, seed, size, block):
    """POST, then one PUT ?digest= carrying the whole blob with Content-Length."""
    digest = blob_digest(seed, size, block)
    t0 = time.perf_counter()
    loc = reg.start_upload(name)
    path = add_query(loc, digest=digest)
    status, rh, body = reg.send_streaming("PUT", path, blob_pieces(seed, 0, size, block),
                                          headers={"Content-Type": OCTET, "Content-Length": str(size)},
                                          chunked=False)
    if status != 201:
        raise HTTPFailure("monolithic PUT", "PUT", path, {"Content-Length": size}, status, rh, body)
    dt = time.perf_counter() - t0
    return {"mbs": _mbs(size, dt), "seconds": dt, "digest": digest}


def push_chunked(reg, name, seed, size, chunk, block):
    """POST, PATCHes of `chunk` bytes with Content-Range and Content-Length, PUT ?digest=."""
    digest = blob_digest(seed, size, block)
    t0 = time.perf_counter()
    loc = reg.start_upload(name)
    for off in range(0, size, chunk):
        end = min(size, off + chunk)
        hdrs = {"Content-Type": OCTET, "Content-Length": str(end - off),
                "Content-Range": f"{off}-{end - 1}"}
        status, rh, body = reg.request("PATCH", loc, body=blob_pieces(seed, off, end, block), headers=hdrs)
        if status != 202:
            raise HTTPFailure("Content-Range PATCH", "PATCH", loc, hdrs, status, rh, body)
        loc = loc_path(header(rh, "Location") or loc)
    _complete(reg, loc, digest, size, "chunked push")
    dt = time.perf_counter() - t0
    return {"mbs": _mbs(size, dt), "seconds": dt, "digest": digest}


def push_streamed(reg, name, seed, size, block):
    """POST, one PATCH with Transfer-Encoding: chunked and no Content-Range (docker,
    podman), PUT ?digest= with an empty body."""
    digest = blob_digest(seed, size, block)
    t0 = time.perf_counter()
    loc = reg.start_upload(name)
    status, rh, body = reg.send_streaming("PATCH", loc, blob_pieces(seed, 0, size, block),
                                          headers={"Content-Type": OCTET}, chunked=True)
    if status != 202:
        raise HTTPFailure("streamed PATCH", "PATCH", loc, {"Transfer-Encoding": "chunked"},
                          status, rh, body)
    _complete(reg, loc_path(header(rh, "Location") or loc), digest, size, "streamed push")
    dt = time.perf_counter() - t0
    return {"mbs": _mbs(size, dt), "seconds": dt, "digest": digest}


def timed_gets(host, port, path, headers, size, repeat=3):
    """`repeat` GETs of `path` (`_common.fast_get`: status and size checked); the median."""
    times = sorted(fast_get(host, port, path, headers, size) for _ in range(repeat))
    seconds = times[len(times) // 2]
    return {"mbs": _mbs(size, seconds), "seconds": seconds}


def pull(srv, reg, name, digest, size):
    """GET the blob three times (bearer token when the server wants one); the median."""
    return timed_gets(srv.host, srv.port, f"/v2/{name}/blobs/{digest}", reg.auth_headers(), size)


def parallel_pushes(reg, name, first_seed, workers, size, per_worker, block):
    """`workers` clients at once, each pushing `per_worker` distinct blobs of `size` the way
    docker does (POST, streamed PATCH, PUT). Failed pushes are counted, not raised."""
    items = [first_seed + i for i in range(workers * per_worker)]
    for seed in items:
        blob_digest(seed, size, block)

    def one(c, seed):
        push_streamed(c, name, seed, size, block)

    wall, lat, errors = run_parallel(reg, items, one, workers)
    ok = len(items) - len(errors)
    return {"mbs": _mbs(ok * size, wall), "seconds": wall, "failed": len(errors),
            "errors": [str(e) for e in errors[:3]]}


def image_manifest(reg, name):
    """Pushes a config blob and a layer blob; returns the bytes of an OCI manifest for them."""
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = os.urandom(1024)
    descs = []
    for data, mt in ((cfg, "application/vnd.oci.image.config.v1+json"),
                     (layer, "application/vnd.oci.image.layer.v1.tar+gzip")):
        descs.append({"mediaType": mt, "digest": reg.push_blob_monolithic(name, data), "size": len(data)})
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descs[0],
                       "layers": [descs[1]]}, separators=(",", ":")).encode()


def put_manifest(reg, name, tag, body):
    path = f"/v2/{name}/manifests/{tag}"
    status, rh, data = reg.request("PUT", path, body=body,
                                   headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(body))})
    if status != 201:
        raise HTTPFailure("manifest PUT", "PUT", path, {"Content-Type": OCI_MANIFEST}, status, rh, data)


def manifest_load(srv, reg, name, secs, conns):
    """At `conns` connections, one manifest by tag: GET with wrk, then GET and HEAD with hey
    (Debian's wrk cannot do HEAD; hey's GET shows how much of the gap is the tool). The
    server and the load generator each run on their own half of the cores
    (`_common.server_on_own_cores`)."""
    body = image_manifest(reg, name)
    put_manifest(reg, name, "latest", body)
    status, rh, data = reg.request("GET", f"/v2/{name}/manifests/latest", headers={"Accept": OCI_MANIFEST})
    if status != 200 or data != body or header(rh, "Docker-Content-Digest") != sha256_digest(body):
        raise HTTPFailure("manifest GET", "GET", f"/v2/{name}/manifests/latest", {}, status, rh, data)
    url = f"http://{srv.host}:{srv.port}/v2/{name}/manifests/latest"
    hdrs = {"Accept": OCI_MANIFEST, **reg.auth_headers()}
    out = {}
    runs = (("get", lambda cpus: run_wrk(url, hdrs, secs=secs, conns=conns, cpus=cpus)),
            ("get_hey", lambda cpus: run_hey(url, hdrs, secs=secs, conns=conns, cpus=cpus)),
            ("head", lambda cpus: run_hey(url, hdrs, secs=secs, conns=conns, method="HEAD", cpus=cpus)))
    for method, run in runs:
        with server_on_own_cores(srv.pid) as cpus:
            w = run(cpus)
        if w["non2xx"] or w["socket_errors"] or not w["total"]:
            raise BenchError(f"manifest {method}: {w['total']} requests, {w['non2xx']} non-2xx, "
                             f"{w['socket_errors']} socket errors\n{w['output']}")
        out[method] = {"rps": w["rate"], "p99_ms": w["p99_ms"], "p50_ms": w["p50_ms"], "total": w["total"]}
    return out


def _tag_batch(srv, reg, name, manifest_file, first, count, conns):
    """wrk with tags.lua creates tags t<first> ... t<first+count-1>; returns the seconds
    from wrk's start until both its threads had all their PUTs answered."""
    marks = manifest_file + ".marks"
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{max(60, count // 50)}s", "--timeout=30s",
            "-s", os.path.join(HERE, "wrk", "tags.lua")]
    for k, v in reg.auth_headers().items():
        argv += ["-H", f"{k}: {v}"]
    argv += [f"http://{srv.host}:{srv.port}/v2/", "--", first, count, 2, name, manifest_file,
             OCI_MANIFEST, marks]
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while proc.poll() is None:
            if os.path.exists(marks):
                with open(marks) as f:
                    if len(f.read().split()) >= 2:
                        break
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # wrk then stops, prints its summary and done()
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(marks):
            os.unlink(marks)
    line = [ln for ln in out.splitlines() if ln.startswith("TAGS ")]
    if not line:
        raise BenchError(f"tags.lua printed no summary:\n{out}")
    fields = dict(kv.split("=") for kv in line[0].split()[1:])
    sock = re.search(r"Socket errors: (.*)", out)
    if int(fields["done"]) != count or int(fields["errors"]) or sock:
        raise BenchError(f"tags {first}..{first + count - 1}: {line[0]}\n{out}")
    return seconds


def list_all_tags(reg, name):
    """GET tags/list, following `Link` (berth pages by 1000); returns (tags, seconds)."""
    path = f"/v2/{name}/tags/list"
    tags = []
    t0 = time.perf_counter()
    while path:
        status, rh, data = reg.request("GET", path)
        if status != 200:
            raise HTTPFailure("tag list", "GET", path, {}, status, rh, data)
        tags += json.loads(data).get("tags") or []
        link = header(rh, "Link")
        path = loc_path(link.split(";")[0].strip().strip("<>")) if link else None
    return tags, time.perf_counter() - t0


def page_seconds(reg, name, last, n=100, repeat=20):
    """Median time of GET tags/list?n=&last= (`repeat` times)."""
    path = f"/v2/{name}/tags/list?n={n}&last={last}"
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        status, rh, data = reg.request("GET", path)
        times.append(time.perf_counter() - t0)
        if status != 200:
            raise HTTPFailure("tag page", "GET", path, {}, status, rh, data)
    return sorted(times)[len(times) // 2]


def tags(srv, reg, name, count, conns):
    """`count` tags on one manifest, by wrk at `conns` connections, in two batches (a tenth,
    then the rest) so a page can be timed at count/10 and at count tags; then the full list."""
    body = image_manifest(reg, name)
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(body)
        manifest_file = f.name
    try:
        first = max(2, (count // 10) // 2 * 2)  # both batches split evenly over 2 threads
        rest = count - first
        rest -= rest % 2
        s1 = _tag_batch(srv, reg, name, manifest_file, 0, first, conns)
        page_small = page_seconds(reg, name, f"t{first // 2:06d}")
        s2 = _tag_batch(srv, reg, name, manifest_file, first, rest, conns)
        page_big = page_seconds(reg, name, f"t{(first + rest) // 2:06d}")
    finally:
        os.unlink(manifest_file)
    created = first + rest
    lists = [list_all_tags(reg, name) for _ in range(3)]
    got = lists[0][0]
    if len(got) != created or len(set(got)) != created:
        raise BenchError(f"tag list has {len(got)} tags ({len(set(got))} distinct), expected {created}")
    full = sorted(s for _, s in lists)[1]
    return {"created": created, "rate": created / (s1 + s2), "full_ms": full * 1000,
            "page_small_ms": page_small * 1000, "page_big_ms": page_big * 1000,
            "page_small_at": first}


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def logins(srv, n):
    """berth only: create `n` users, then `n` concurrent Basic-auth GET /token as `n`
    different users, then `n` concurrent as one user (admin). Every one must get 200."""
    import http.client

    admin = basic(*srv.credentials())

    def call(method, path, auth, body=None):
        c = http.client.HTTPConnection(srv.host, srv.port, timeout=300)
        try:
            c.request(method, path, body=body, headers={"Authorization": auth, "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    creds = [(f"bench{os.getpid()}x{i}", base64.b32encode(os.urandom(10)).decode().lower()) for i in range(n)]
    for user, pw in creds:
        status, body = call("POST", "/api/v1/users", admin,
                            json.dumps({"username": user, "password": pw, "role": "user"}))
        if status != 201:
            raise BenchError(f"creating user {user}: {status} {body[:300]!r}")
    path = "/token?service=berth&scope=repository:bench/logins:pull"
    out = {}
    for phase, cs in (("distinct", creds), ("same", [srv.credentials()] * n)):
        barrier = threading.Barrier(len(cs))

        def one(cred):
            barrier.wait()
            return call("GET", path, basic(*cred))[0]

        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(len(cs)) as ex:
            statuses = collections.Counter(ex.map(one, cs))
        out[phase] = {"seconds": time.perf_counter() - t0, "statuses": dict(statuses)}
        if set(statuses) != {200}:
            raise BenchError(f"{n} concurrent logins ({phase} users): statuses {dict(statuses)}")
    return out
