"""Shared helpers for the berth benchmarks (Python 3 standard library only).

- start/stop a berth server or a reference Distribution (`docker-registry`) server
  on a free 127.0.0.1 port, each in its own temporary data directory;
- a tiny registry client on http.client: Docker token auth when the server
  challenges (berth), none when it does not (docker-registry), streamed chunked
  PATCH bodies, upload Location following, blob/manifest helpers;
- /proc readers for a server's VmHWM / VmRSS / CPU time, and a reset of its VmHWM so
  that one server process yields a peak per phase;
- deterministic blob bodies made on the fly (`blob_pieces`) and their digests;
- a `wrk` runner, a thread-pool runner with latencies, and the machine line.
"""

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import platform
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

MiB = 1 << 20
GiB = 1 << 30

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
DEFAULT_BERTH_BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO_ROOT, "target"),
                                 "release", "berth")
DEFAULT_DISTRIBUTION_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


class BenchError(Exception):
    pass


class HTTPFailure(BenchError):
    """An unexpected HTTP status; carries the exact request and response."""

    def __init__(self, what, method, path, req_headers, status, resp_headers, body):
        self.what = what
        self.method = method
        self.path = path
        self.req_headers = dict(req_headers or {})
        self.status = status
        self.resp_headers = resp_headers
        self.body = body
        super().__init__(self.describe())

    def describe(self):
        hdrs = {k: ("<redacted>" if k.lower() == "authorization" else v)
                for k, v in self.req_headers.items()}
        body = self.body
        if isinstance(body, bytes):
            body = body[:2000].decode("utf-8", "replace")
        resp = "\n".join(f"    {k}: {v}" for k, v in (self.resp_headers or []))
        return (f"{self.what}: unexpected status {self.status}\n"
                f"  request: {self.method} {self.path}\n"
                f"  request headers: {hdrs}\n"
                f"  response headers:\n{resp}\n"
                f"  response body: {body!r}")


# ---------------------------------------------------------------------------
# processes

def free_port():
    """Ask the kernel for a free port on 127.0.0.1 (bind port 0, read it back)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proc_status(pid):
    """VmHWM, VmRSS (RssAnon, RssFile), VmPeak, VmSize of a process in KiB, and its Threads (from /proc/<pid>/status)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "VmPeak", "VmSize", "Threads", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def reset_hwm(pid):
    """Reset the VmHWM of `pid` to its current RSS (`clear_refs` 5, Linux >= 4.0), so the
    next read of VmHWM is the peak of what happened since."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def proc_cpu_seconds(pid):
    """user+system CPU seconds consumed so far by a process (incl. all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def wait_port_closed(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = socket.socket()
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return True
        finally:
            s.close()
        time.sleep(0.05)
    return False


class Server:
    """A registry server process we started (berth or docker-registry)."""

    kind = "?"

    def __init__(self, workdir, port=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None
        self.log_path = None
        self.starts = 0

    # subclasses fill these in
    def argv(self):
        raise NotImplementedError

    def env(self):
        return dict(os.environ)

    def ready_statuses(self):
        return (200, 401)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def host(self):
        return "127.0.0.1"

    def start(self, timeout=90):
        self.starts += 1
        self.log_path = os.path.join(self.workdir, f"{self.kind}-{self.starts}.log")
        logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv(), env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT, cwd=self.workdir)
        logf.close()
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.kind} exited with {self.proc.returncode} during start\n"
                                 + self.log_tail())
            try:
                c = http.client.HTTPConnection(self.host, self.port, timeout=2)
                c.request("GET", "/v2/")
                r = c.getresponse()
                r.read()
                c.close()
                last = r.status
                if r.status in self.ready_statuses():
                    return self
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.kill()
        raise BenchError(f"{self.kind} not ready after {timeout}s (last: {last})\n" + self.log_tail())

    def kill(self, sig=signal.SIGKILL):
        """Signal only the process we started, by its PID, and reap it."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        wait_port_closed(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return f"--- last lines of {self.log_path} ---\n" + "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def mem(self):
        return proc_status(self.pid)

    def cpu(self):
        return proc_cpu_seconds(self.pid)

    def client(self):
        return Registry(self.host, self.port, self.credentials())

    def credentials(self):
        return None


class Berth(Server):
    kind = "berth"

    def __init__(self, workdir, binary=DEFAULT_BERTH_BIN, password=None, port=None,
                 data_dir=None, log_level=None, extra_env=None):
        super().__init__(workdir, port)
        self.binary = binary
        self.extra_env = dict(extra_env or {})
        self.password = password or base64.b32encode(os.urandom(10)).decode().lower()
        self.data_dir = data_dir or os.path.join(workdir, "berth-data")
        self.log_level = log_level

    def argv(self):
        return [self.binary, "serve"]

    def env(self):
        e = dict(os.environ)
        e.update({
            "BERTH_LISTEN": f"127.0.0.1:{self.port}",
            "BERTH_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "BERTH_DATA_DIR": self.data_dir,
            "BERTH_INITIAL_ADMIN_PASSWORD": self.password,
        })
        if self.log_level:
            e["RUST_LOG"] = self.log_level
        e.update(self.extra_env)
        return e

    def ready_statuses(self):
        return (401,)

    def credentials(self):
        return ("admin", self.password)


DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: {log_level}
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: berth-bench-fixed-secret
"""


class Distribution(Server):
    """Debian's docker-registry (Distribution 2.8.2), filesystem storage, no auth.

    `http.secret` is fixed so upload `_state` tokens stay valid across a restart."""

    kind = "distribution"

    def __init__(self, workdir, binary=DEFAULT_DISTRIBUTION_BIN, port=None, log_level="warn"):
        super().__init__(workdir, port)
        self.binary = binary
        self.root = os.path.join(workdir, "distribution-data")
        self.config_path = os.path.join(workdir, "distribution.yml")
        self.log_level = log_level

    def argv(self):
        # written at every start: the port may have changed for a restart
        with open(self.config_path, "w") as f:
            f.write(DISTRIBUTION_CONFIG.format(root=self.root, port=self.port,
                                               log_level=self.log_level))
        return [self.binary, "serve", self.config_path]

    def ready_statuses(self):
        return (200,)


def make_server(kind, workdir, args):
    os.makedirs(workdir, exist_ok=True)
    if kind == "berth":
        if not os.access(args.berth_bin, os.X_OK):
            raise BenchError(f"berth binary {args.berth_bin} not found; build it with "
                             f"`cd {REPO_ROOT} && cargo build --release --locked`")
        env = dict(kv.split("=", 1) for kv in getattr(args, "berth_env", None) or [])
        return Berth(workdir, binary=args.berth_bin, extra_env=env)
    if kind == "distribution":
        if not os.access(args.distribution_bin, os.X_OK):
            raise BenchError(f"{args.distribution_bin} not found; apt-get install -y docker-registry")
        return Distribution(workdir, binary=args.distribution_bin)
    raise BenchError(f"unknown server kind {kind!r}")


def add_server_args(p):
    p.add_argument("--berth-bin", default=DEFAULT_BERTH_BIN, help="berth binary (release build)")
    p.add_argument("--distribution-bin", default=DEFAULT_DISTRIBUTION_BIN,
                   help="reference server binary (Debian docker-registry)")
    p.add_argument("--workdir", default=None,
                   help="parent dir for data dirs and logs (default: a fresh dir in $TMPDIR)")
    p.add_argument("--keep", action="store_true", help="keep data dirs and logs afterwards")


def make_workdir(args, prefix):
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        return tempfile.mkdtemp(prefix=prefix, dir=args.workdir)
    return tempfile.mkdtemp(prefix=prefix)


# ---------------------------------------------------------------------------
# registry client

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(value):
    scheme, _, rest = value.partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


def loc_path(location):
    """Path+query of a Location header (berth: relative; Distribution: absolute with _state)."""
    u = urllib.parse.urlsplit(location)
    return u.path + (("?" + u.query) if u.query else "")


def add_query(path, **params):
    sep = "&" if "?" in path else "?"
    return path + sep + urllib.parse.urlencode(params)


def parse_range(value):
    """Upload `Range: 0-<offset-1>` -> offset (bytes stored). '0-0' means empty (the
    berth contract; Distribution also sends it for a 1-byte upload, which we never make)."""
    if value is None:
        return None
    a, _, b = value.partition("-")
    a, b = int(a), int(b)
    if a == 0 and b == 0:
        return 0
    return b + 1


class Registry:
    """A minimal registry client on one keep-alive http.client connection.

    Not thread-safe: give each thread its own (`clone()`), sharing the token."""

    def __init__(self, host, port, credentials=None, timeout=600):
        self.host, self.port = host, port
        self.credentials = credentials
        self.timeout = timeout
        self.token = None
        self.token_time = 0.0
        self.token_scopes = None
        self.conn = None

    def clone(self):
        c = Registry(self.host, self.port, self.credentials, self.timeout)
        c.token, c.token_time, c.token_scopes = self.token, self.token_time, self.token_scopes
        return c

    # -- connection
    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def auth_headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # -- auth
    def login(self, scopes):
        """Fetch one bearer token for `scopes` if the server challenges for one.

        Returns the token, or None when /v2/ answers 200 (no auth: docker-registry)."""
        status, headers, body = self.request("GET", "/v2/", auth=False)
        if status == 200:
            self.token = None
            return None
        if status != 401:
            raise HTTPFailure("GET /v2/", "GET", "/v2/", {}, status, headers, body)
        chal = header(headers, "WWW-Authenticate")
        if not chal:
            raise BenchError("401 from /v2/ without WWW-Authenticate")
        scheme, params = parse_challenge(chal)
        if scheme != "bearer":
            raise BenchError(f"unsupported challenge {chal!r}")
        realm = urllib.parse.urlsplit(params["realm"])
        q = [("service", params.get("service", ""))] + [("scope", s) for s in scopes]
        path = realm.path + "?" + urllib.parse.urlencode(q)
        hdrs = {}
        if self.credentials:
            u, p = self.credentials
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
        c = http.client.HTTPConnection(realm.hostname, realm.port or 80, timeout=60)
        try:
            c.request("GET", path, headers=hdrs)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise HTTPFailure("token fetch", "GET", path, hdrs, r.status, r.getheaders(), body)
        finally:
            c.close()
        doc = json.loads(body)
        self.token = doc.get("token") or doc.get("access_token")
        self.token_time = time.time()
        self.token_scopes = list(scopes)
        return self.token

    def refresh_if_old(self, max_age=600):
        if self.token and self.token_scopes and time.time() - self.token_time > max_age:
            self.login(self.token_scopes)

    # -- plain requests
    def request(self, method, path, body=None, headers=None, auth=True, read=True):
        hdrs = dict(headers or {})
        if auth:
            hdrs.update(self.auth_headers())
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read() if read else r
                if read and r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, r.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a keep-alive connection closed by the server between requests: retry once
                self.close()
                if attempt or (body is not None and not isinstance(body, (bytes, bytearray))):
                    raise
        raise AssertionError("unreachable")

    def expect(self, what, method, path, statuses, body=None, headers=None):
        status, rh, data = self.request(method, path, body=body, headers=headers)
        if status not in statuses:
            raise HTTPFailure(what, method, path, headers, status, rh, data)
        return status, rh, data

    # -- streaming bodies
    def send_streaming(self, method, path, chunks, headers=None, chunked=True):
        """Send a request whose body comes from an iterator of bytes-like objects.

        chunked=True: Transfer-Encoding: chunked, no Content-Length (what docker/podman do);
        otherwise `headers` must carry Content-Length. Returns (status, headers, body)."""
        hdrs = dict(headers or {})
        hdrs.update(self.auth_headers())
        self.close()  # a fresh connection for a long body
        conn = self._conn()
        conn.putrequest(method, path)
        if chunked:
            hdrs["Transfer-Encoding"] = "chunked"
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        sock = conn.sock
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                if chunked:
                    sock.sendall(b"%x\r\n" % len(chunk))
                    sock.sendall(chunk)
                    sock.sendall(b"\r\n")
                else:
                    sock.sendall(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError as send_error:
            # the server stopped reading: it may have answered early (e.g. an error status)
            try:
                r = conn.getresponse()
                data = r.read()
            except Exception:
                self.close()
                raise send_error
            self.close()
            return r.status, r.getheaders(), data
        r = conn.getresponse()
        data = r.read()
        return r.status, r.getheaders(), data

    # -- blobs
    def start_upload(self, name):
        status, rh, data = self.expect("start upload", "POST", f"/v2/{name}/blobs/uploads/", (202,),
                                       body=b"", headers={"Content-Length": "0"})
        return loc_path(header(rh, "Location"))

    def push_blob_monolithic(self, name, data, digest=None):
        """POST (202) then PUT ?digest= with the whole body (oras/containerd style)."""
        digest = digest or sha256_digest(data)
        loc = self.start_upload(name)
        path = add_query(loc, digest=digest)
        status, rh, body = self.expect("monolithic PUT", "PUT", path, (201,), body=data,
                                       headers={"Content-Type": "application/octet-stream",
                                                "Content-Length": str(len(data))})
        got = header(rh, "Docker-Content-Digest")
        if got and got != digest:
            raise BenchError(f"PUT answered Docker-Content-Digest {got}, expected {digest}")
        return digest

    def head_blob(self, name, digest):
        return self.request("HEAD", f"/v2/{name}/blobs/{digest}")

    def get_blob_hash(self, name, digest, bufsize=MiB):
        """GET a blob, streaming it through sha256; returns (status, headers, nbytes, digest)."""
        path = f"/v2/{name}/blobs/{digest}"
        hdrs = self.auth_headers()
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request("GET", path, headers=hdrs)
                r = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
        if r.status != 200:
            body = r.read()
            raise HTTPFailure("blob GET", "GET", path, hdrs, r.status, r.getheaders(), body)
        h = hashlib.sha256()
        n = 0
        while True:
            b = r.read(bufsize)
            if not b:
                break
            h.update(b)
            n += len(b)
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, r.getheaders(), n, "sha256:" + h.hexdigest()


def header(headers, name):
    name = name.lower()
    for k, v in headers or []:
        if k.lower() == name:
            return v
    return None


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fmt_table(rows, headers, align=None):
    """Plain-text table; rows are lists of already formatted strings."""
    cols = len(headers)
    widths = [max(len(str(headers[i])), *(len(str(r[i])) for r in rows)) if rows else len(headers[i])
              for i in range(cols)]
    align = align or (["<"] + [">"] * (cols - 1))
    def line(vals):
        return "  ".join(f"{str(v):{align[i]}{widths[i]}}" for i, v in enumerate(vals))
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


# ---------------------------------------------------------------------------
# blob bodies

STAMP = struct.Struct("<QQ")


def blob_pieces(seed, start, end, block):
    """The bytes [start, end) of blob `seed`, as pieces of at most len(block).

    Blob `seed` is `block` repeated, each copy's first 16 bytes replaced by (seed, index):
    distinct blobs for distinct seeds, not compressible, made without holding the blob.
    Each call stamps its own copy of `block`, so threads may share `block`; a yielded
    piece is only valid until the next one is asked for."""
    bs = len(block)
    buf = bytearray(block)
    mv = memoryview(buf)
    pos = start
    while pos < end:
        i, off = divmod(pos, bs)
        STAMP.pack_into(buf, 0, seed, i)
        n = min(bs - off, end - pos)
        yield mv[off:off + n]
        pos += n


_digests = {}
_digests_lock = threading.Lock()


def blob_digest(seed, size, block):
    """sha256 digest of blob `seed` of `size` bytes (computed once, then cached)."""
    key = (seed, size, len(block))
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    h = hashlib.sha256()
    for piece in blob_pieces(seed, 0, size, block):
        h.update(piece)
    d = "sha256:" + h.hexdigest()
    with _digests_lock:
        _digests[key] = d
    return d


def parse_size(text):
    """'1G' -> 1 GiB, '16M' -> 16 MiB, '64K' -> 64 KiB, '123' -> 123 bytes."""
    t = str(text).strip().upper().rstrip("IB")
    mult = {"K": 1 << 10, "M": MiB, "G": GiB}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def fmt_size(n):
    for unit, m in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= m and n % m == 0:
            return f"{n // m} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------------
# load generators

def fast_get(host, port, path, headers, size, bufsize=4 * MiB):
    """GET `path`, reading the body with recv_into a 4 MiB buffer and discarding it: curl
    reads 16 KiB at a time and tops out near 1 GB/s here, below what loopback sendfile
    does. Checks status 200 and exactly `size` bytes; returns the seconds from the request
    to the last byte."""
    sock = socket.create_connection((host, port))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
        buf = bytearray(bufsize)
        mv = memoryview(buf)
        t0 = time.perf_counter()
        sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            n = sock.recv_into(mv)
            if not n:
                raise BenchError(f"GET {path}: connection closed in the headers: {head[:300]!r}")
            head += bytes(mv[:n])
        head, _, rest = head.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise BenchError(f"GET {path}: {head.decode('latin-1')}\n{rest[:500]!r}")
        got = len(rest)
        while got < size:
            n = sock.recv_into(mv)
            if not n:
                break
            got += n
        dt = time.perf_counter() - t0
    finally:
        sock.close()
    if got != size:
        raise BenchError(f"GET {path}: {got} bytes, expected {size}")
    return dt

def run_parallel(reg, items, fn, workers):
    """Run fn(client, item) for every item on `workers` threads, each with its own clone of
    `reg` (one keep-alive connection). Returns (wall seconds, latencies, errors)."""
    lock = threading.Lock()
    idx = [0]
    lat, errors = [], []
    start = threading.Barrier(workers + 1)

    def worker():
        c = reg.clone()
        start.wait()
        try:
            while True:
                with lock:
                    if idx[0] >= len(items):
                        return
                    item = items[idx[0]]
                    idx[0] += 1
                t = time.perf_counter()
                try:
                    fn(c, item)
                except Exception as e:  # counted and reported; the others go on
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
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat, errors


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


_WRK_TIME = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def run_wrk(url, headers=None, secs=10, conns=64, threads=2, script=None, script_args=(),
            timeout_s=30, cpus=None):
    """Run wrk against `url`; returns requests/s, total, non-2xx/3xx, socket errors, p50 and
    p99 in ms, the run time and wrk's whole output."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("wrk not found (apt-get install -y wrk)")
    argv = on_cpus(cpus) + [wrk, f"-t{threads}", f"-c{conns}", f"-d{secs}s", f"--timeout={timeout_s}s", "--latency"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    if script:
        argv += ["-s", script]
    argv.append(url)
    if script_args:
        argv += ["--", *map(str, script_args)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {out}")

    def lat(q):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(m.group(1)) * _WRK_TIME[m.group(2)] if m else None

    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if not m:
        raise BenchError(f"cannot read wrk's output:\n{out}")
    total, run_s = int(m.group(1)), float(m.group(2)) * _WRK_TIME[m.group(3)] / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rate": total / run_s if run_s else None, "total": total, "seconds": run_s,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, sock.groups())) if sock else 0,
            "p50_ms": lat(50), "p99_ms": lat(99), "output": out}


def run_hey(url, headers=None, secs=10, conns=64, method="GET", cpus=None):
    """Run hey (Debian's wrk 4.1 never sees the end of a HEAD response, so HEAD goes
    through hey); returns requests/s, total, non-2xx, errors, p50 and p99 in ms."""
    hey = shutil.which("hey")
    if not hey:
        raise BenchError("hey not found (apt-get install -y hey)")
    argv = on_cpus(cpus) + [hey, "-z", f"{secs}s", "-c", str(conns), "-m", method, "-disable-redirects"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    proc = subprocess.run(argv + [url], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if proc.returncode != 0 or not rate:
        raise BenchError(f"hey failed ({proc.returncode}):\n{out}")

    def lat(q):
        m = re.search(rf"^\s+{q}% in ([\d.]+) secs", out, re.M)
        return float(m.group(1)) * 1000 if m else None

    statuses = {int(a): int(b) for a, b in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]\s+\D", out.split("Error distribution:")[1], re.M)) \
        if "Error distribution:" in out else 0
    total = sum(statuses.values())
    return {"rate": float(rate.group(1)), "total": total, "seconds": secs,
            "non2xx": sum(n for s, n in statuses.items() if not 200 <= s < 300), "socket_errors": errors,
            "p50_ms": lat(50), "p99_ms": lat(99), "output": out}


# ---------------------------------------------------------------------------
# the machine

def core_split():
    """(the server's CPUs, the load generator's CPUs) for the latency shapes: this process's
    CPUs halved, the server on the first half; None with fewer than two. On a 2-core machine
    a load generator sharing the server's cores sets the tail latency itself (nginx serving a
    static file to `hey -c 64` on shared cores shows p99 ~6 ms), so those shapes give each
    side its own cores, berth, Distribution and nginx alike."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def on_cpus(cpus):
    """The argv prefix that runs a command on `cpus` (util-linux taskset); [] for None."""
    return ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []


def pin_tree(pid, cpus):
    """Every thread of process `pid` and of its descendants onto `cpus`; threads they start
    later inherit it. A process that has gone meanwhile is skipped."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, FileNotFoundError):
            pass
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = f.read().split()
        except OSError:
            children = []
        for child in children:
            pin_tree(int(child), cpus)


@contextlib.contextmanager
def server_on_own_cores(pid):
    """Within the block, the process tree `pid` runs on the server half of `core_split()`;
    yields the load generator's CPUs (None on one core: nothing is pinned). Afterwards the
    tree may run on every CPU this process may use again."""
    split = core_split()
    if not split:
        yield None
        return
    server, client = split
    pin_tree(pid, server)
    try:
        yield client
    finally:
        pin_tree(pid, set(os.sched_getaffinity(0)))


def machine_line():
    """cores, RAM, kernel and CPU model, in one line."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except OSError:
        mem_kib = 0
    return (f"{os.cpu_count()} cores, {mem_kib / (1 << 20):.1f} GiB RAM, Linux {platform.release()}, "
            f"CPU {model}")
