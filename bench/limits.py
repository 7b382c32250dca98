"""The machine's own limits, measured in the same run as the servers (issue 9's targets
are fractions of them): sha256 speed, durable write speed in the data directory's
filesystem, and a loopback sendfile GET.

All three return MB/s (10^6 bytes per second).
"""

import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from _common import BenchError, blob_pieces, free_port, run_hey, server_on_own_cores, wait_port_closed
from shapes import timed_gets


def sha256_mbs(seconds=3):
    """`openssl speed -evp sha256`, the 16384-byte column (one core)."""
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "-evp", "sha256"],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.lower().startswith("sha256"):
            cols = line.split()
            # type, then 16, 64, 256, 1024, 8192 and 16384 bytes, each as e.g. "1234567.89k"
            return float(cols[-1].rstrip("k")) * 1000 / 1e6
    raise BenchError(f"cannot read openssl speed's output:\n{out.stdout}\n{out.stderr}")


def dd_fdatasync_mbs(directory, size):
    """`dd if=/dev/zero of=FILE bs=1M count=N conv=fdatasync` in `directory`; the file is
    left for the sendfile ceiling and returned. Returns (MB/s, path)."""
    path = os.path.join(directory, "dd.bin")
    count = max(1, size >> 20)
    t0 = time.perf_counter()
    out = subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}", "conv=fdatasync"],
                         capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"dd failed: {out.stderr}")
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", out.stderr)
    if m:
        return int(m.group(1)) / 1e6 / float(m.group(2)), path
    return (count << 20) / 1e6 / dt, path



def bare_receiver_mbs(directory, size, block, repeat=3):
    """What a push can reach here without any registry: the bench's client sending blob
    pieces as `Registry.send_streaming` does (one `sendall` each) to a receiver in this
    process that does only what every push must, pipelined over the cores: receive (256 KiB
    `recv_into`), SHA-256 on one thread (hashlib, that is OpenSSL), write on another, then
    `fdatasync`. recv, hashing and write release the GIL, so the threads run in parallel.
    Median MB/s of `repeat` runs, from connect to the end of the fdatasync."""
    runs = []
    for _ in range(repeat):
        runs.append(_bare_receive(directory, size, block))
    return sorted(runs)[len(runs) // 2]


def _bare_receive(directory, size, block):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    path = os.path.join(directory, "bare-receiver.bin")
    failed = []

    def receive():
        try:
            conn, _ = lsock.accept()
            hashq, writeq = queue.Queue(8), queue.Queue(8)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

            def drain(q, use):
                while (piece := q.get()) is not None:
                    use(piece)

            h = hashlib.sha256()
            hasher = threading.Thread(target=drain, args=(hashq, h.update))
            writer = threading.Thread(target=drain, args=(writeq, lambda b: os.write(fd, b)))
            hasher.start()
            writer.start()
            # a ring of buffers: one is filled again only once both threads are past it
            # (each queue holds 8, each thread works on one)
            ring = [bytearray(256 << 10) for _ in range(24)]
            got = pieces = 0
            while got < size:
                buf = ring[pieces % len(ring)]
                pieces += 1
                n = conn.recv_into(buf)
                if not n:
                    break
                got += n
                piece = memoryview(buf)[:n]
                hashq.put(piece)
                writeq.put(piece)
            hashq.put(None)
            writeq.put(None)
            hasher.join()
            writer.join()
            os.fdatasync(fd)
            os.close(fd)
            conn.close()
            if got != size:
                failed.append(f"bare receiver got {got} of {size} bytes")
        except OSError as e:
            failed.append(f"bare receiver: {e}")

    t = threading.Thread(target=receive)
    t.start()
    try:
        t0 = time.perf_counter()
        with socket.create_connection(lsock.getsockname()) as s:
            for piece in blob_pieces(0, 0, size, block):
                s.sendall(piece)
            t.join()
        dt = time.perf_counter() - t0
    finally:
        t.join()
        lsock.close()
        if os.path.exists(path):
            os.unlink(path)
    if failed:
        raise BenchError(failed[0])
    return size / 1e6 / dt


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""


def sendfile_ceiling_mbs(path, workdir, hey_secs=0):
    """GET of the file at `path` from nginx (sendfile on, one worker, started here on a
    free port and stopped by PID), with the same client and method as the blob pulls.
    With `hey_secs`, the same nginx then answers `hey` HEADs of a 1 KiB file at 64
    connections for that long, nginx and hey on separate cores as the servers and hey are in
    the manifest shape: the latency floor of that shape on this machine. Returns (MB/s, hey's figures or None),
    or (None, None) when nginx is not installed (apt-get install -y nginx-light)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not nginx:
        return None, None
    ndir = os.path.join(workdir, "nginx")
    os.makedirs(ndir, exist_ok=True)
    port = free_port()
    conf = os.path.join(ndir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=ndir, port=port, root=os.path.dirname(path)))
    proc = subprocess.Popen([nginx, "-c", conf, "-e", os.path.join(ndir, "nginx-error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        size = os.path.getsize(path)
        url = "/" + os.path.basename(path)
        deadline = time.time() + 10
        while True:
            try:
                # also warms the page cache, as a blob just pushed is warm
                timed_gets("127.0.0.1", port, url, {}, size, repeat=1)
                break
            except (BenchError, OSError):
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        mbs = timed_gets("127.0.0.1", port, url, {}, size)["mbs"]
        hey = None
        if hey_secs:
            small = os.path.join(os.path.dirname(path), "hey-floor.json")
            with open(small, "wb") as f:
                f.write(os.urandom(1024))
            try:
                with server_on_own_cores(proc.pid) as cpus:
                    hey = run_hey(f"http://127.0.0.1:{port}/hey-floor.json", secs=hey_secs, conns=64,
                                  method="HEAD", cpus=cpus)
            finally:
                os.unlink(small)
        return mbs, hey
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        wait_port_closed(port)
