#!/usr/bin/env python3
"""Check what a registry serves for one image, independently of any client.

    verify.py --registry HOST:PORT --repo NAME --ref TAG|DIGEST [--user U --password P]
              [--digest D] [--config D] [--diff-ids D,D] [--layers D,D] [--min-layers N]

Fetches the manifest (following a Bearer or Basic challenge the way docker
does: GET on the realm with `scope=repository:NAME:pull`), checks that its
bytes hash to `Docker-Content-Digest` and to --digest, then downloads the
config and every layer, checks each blob's sha256 against its descriptor, and
gunzips gzip layers to compare their diff_ids with the config's
`rootfs.diff_ids` and with --diff-ids. An index is followed to its first
manifest. Standard library only. Prints a JSON summary; exits 1 on any mismatch.
"""

import argparse
import base64
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class Mismatch(Exception):
    pass


class Client:
    def __init__(self, registry, repo, user=None, password=None):
        self.base = f"http://{registry}"
        self.repo = repo
        self.basic = None
        if user is not None:
            raw = f"{user}:{password or ''}".encode()
            self.basic = "Basic " + base64.b64encode(raw).decode()
        self.auth = None

    def _token(self, challenge):
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = {"scope": f"repository:{self.repo}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        url = params["realm"] + "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url)
        if self.basic:
            req.add_header("Authorization", self.basic)
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = json.load(resp)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise Mismatch(f"token response without a token: {body}")
        return "Bearer " + token

    def get(self, path, accept=None):
        """GET path, answering one auth challenge; returns the open response."""
        for attempt in range(2):
            req = urllib.request.Request(self.base + path)
            if accept:
                req.add_header("Accept", accept)
            if self.auth:
                req.add_header("Authorization", self.auth)
            try:
                return urllib.request.urlopen(req, timeout=120)
            except urllib.error.HTTPError as err:
                challenge = err.headers.get("WWW-Authenticate", "")
                if err.code != 401 or attempt == 1 or not challenge:
                    raise Mismatch(f"GET {path}: HTTP {err.code}: {err.read()[:500]!r}")
                if challenge.lower().startswith("bearer"):
                    self.auth = self._token(challenge)
                elif self.basic:
                    self.auth = self.basic
                else:
                    raise Mismatch(f"GET {path}: 401 and no credentials")
        raise AssertionError("unreachable")


def sha256_stream(resp, on_chunk=None):
    h = hashlib.sha256()
    size = 0
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        size += len(chunk)
        if on_chunk:
            on_chunk(chunk)
    return "sha256:" + h.hexdigest(), size


def fetch_manifest(client, ref):
    with client.get(f"/v2/{client.repo}/manifests/{ref}", ACCEPT) as resp:
        body = resp.read()
        header = resp.headers.get("Docker-Content-Digest")
        ctype = resp.headers.get("Content-Type", "")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if header and header != digest:
        raise Mismatch(f"manifest {ref}: Docker-Content-Digest {header} but body hashes to {digest}")
    if ref.startswith("sha256:") and ref != digest:
        raise Mismatch(f"manifest {ref}: body hashes to {digest}")
    return body, digest, ctype


def check_blob(client, desc, want_diff_id=None):
    """Download one blob, check its digest and size; return its diff_id if gzip."""
    decomp = None
    diff = hashlib.sha256()
    if "gzip" in desc.get("mediaType", ""):
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(chunk):
        if decomp is not None:
            diff.update(decomp.decompress(chunk))

    with client.get(f"/v2/{client.repo}/blobs/{desc['digest']}") as resp:
        digest, size = sha256_stream(resp, feed)
    if digest != desc["digest"]:
        raise Mismatch(f"blob {desc['digest']}: served bytes hash to {digest}")
    if size != desc.get("size", size):
        raise Mismatch(f"blob {desc['digest']}: {size} bytes served, descriptor says {desc['size']}")
    if decomp is None:
        return desc["digest"]  # an uncompressed layer is its own diff_id
    diff.update(decomp.flush())
    return "sha256:" + diff.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--digest", help="expected manifest digest")
    ap.add_argument("--config", help="expected config digest")
    ap.add_argument("--diff-ids", help="expected diff_ids, comma-separated")
    ap.add_argument("--layers", help="expected layer digests, comma-separated")
    ap.add_argument("--min-layers", type=int, default=2)
    args = ap.parse_args()

    client = Client(args.registry, args.repo, args.user, args.password)
    try:
        body, digest, ctype = fetch_manifest(client, args.ref)
        top_digest = digest
        manifest = json.loads(body)
        if manifest.get("mediaType", ctype) in INDEX_TYPES or "manifests" in manifest:
            first = manifest["manifests"][0]["digest"]
            body, digest, ctype = fetch_manifest(client, first)
            manifest = json.loads(body)
        if args.digest and args.digest not in (top_digest, digest):
            raise Mismatch(f"manifest digest {top_digest} (image {digest}), expected {args.digest}")

        config_desc = manifest["config"]
        with client.get(f"/v2/{client.repo}/blobs/{config_desc['digest']}") as resp:
            config_body = resp.read()
        config_digest = "sha256:" + hashlib.sha256(config_body).hexdigest()
        if config_digest != config_desc["digest"]:
            raise Mismatch(f"config {config_desc['digest']}: served bytes hash to {config_digest}")
        if args.config and args.config != config_digest:
            raise Mismatch(f"config digest {config_digest}, expected {args.config}")

        layers = manifest.get("layers", [])
        if len(layers) < args.min_layers:
            raise Mismatch(f"{len(layers)} layers, expected at least {args.min_layers}")
        layer_digests = [layer["digest"] for layer in layers]
        if args.layers and args.layers.split(",") != layer_digests:
            raise Mismatch(f"layers {layer_digests}, expected {args.layers.split(',')}")
        diff_ids = [check_blob(client, layer) for layer in layers]

        config = json.loads(config_body)
        config_diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if config_diff_ids is not None and config_diff_ids != diff_ids:
            raise Mismatch(f"layers unpack to {diff_ids}, config says {config_diff_ids}")
        if args.diff_ids and args.diff_ids.split(",") != diff_ids:
            raise Mismatch(f"diff_ids {diff_ids}, expected {args.diff_ids.split(',')}")
    except Mismatch as err:
        print(f"verify: {args.repo}:{args.ref}: {err}", file=sys.stderr)
        sys.exit(1)

    json.dump(
        {
            "manifest": top_digest,
            "image_manifest": digest,
            "media_type": manifest.get("mediaType", ctype),
            "config": config_digest,
            "layers": layer_digests,
            "diff_ids": diff_ids,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
