#!/usr/bin/env python3
"""Write a small multi-layer OCI image layout, offline.

    mkimage.py DIR --tag v1 --seed docker [--layers 2] [--first-mib 1]
               [--platforms amd64,arm64] [--name REF] [--archive OUT.tar]

Each layer is a gzipped tar holding one file of seeded pseudo-random bytes (the
first one about --first-mib MiB, so uploads are not trivially small), and the
config lists their diff_ids, as a real image's would. With --platforms the tag
names an image index over one such image per architecture. The layout gets `oci-layout`,
`index.json` (with `org.opencontainers.image.ref.name` = TAG and, with --name,
`io.containerd.image.name` = REF, which `ctr images import` uses) and
`blobs/sha256/…`. --archive also writes the layout as a tar (an OCI archive).

Prints a JSON summary: manifest, config, layers, diff_ids, and the file each
layer holds (with --platforms: the index digest as `manifest`, and one such
summary per image under `manifests`).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(root: str, data: bytes) -> str:
    digest = sha256(data)
    path = os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "wb") as f:
        f.write(data)
    return digest


def layer_tar(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def build_image(root, rng, seed, nlayers, first_size, arch):
    """Write one image's layers, config and manifest; return (descriptor, summary)."""
    layers, diff_ids, files = [], [], []
    for i in range(nlayers):
        size = first_size if i == 0 else 4096 + i
        content = rng.randbytes(size)
        fname = f"layer{i}-{seed}-{arch}.bin"
        raw = layer_tar(fname, content)
        # mtime=0 keeps the gzip bytes a function of the content alone.
        gz = gzip.compress(raw, mtime=0, compresslevel=1)
        digest = write_blob(root, gz)
        layers.append({"mediaType": MEDIA_LAYER, "digest": digest, "size": len(gz)})
        diff_ids.append(sha256(raw))
        files.append({"name": fname, "digest": sha256(content)})

    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"conformance layer {i}"} for i in range(nlayers)],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = write_blob(root, config_bytes)

    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layers,
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = write_blob(root, manifest_bytes)
    desc = {
        "mediaType": MEDIA_MANIFEST,
        "digest": manifest_digest,
        "size": len(manifest_bytes),
        "platform": {"architecture": arch, "os": "linux"},
    }
    summary = {
        "manifest": manifest_digest,
        "config": config_digest,
        "layers": [layer["digest"] for layer in layers],
        "diff_ids": diff_ids,
        "files": files,
    }
    return desc, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--seed", default="berth")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--first-mib", type=float, default=1.0, help="size of the first layer's file")
    ap.add_argument("--platforms", help="e.g. amd64,arm64: write an image index over one image each")
    ap.add_argument("--name", help="full reference for io.containerd.image.name")
    ap.add_argument("--archive", help="also write the layout as this tar file")
    args = ap.parse_args()

    root = args.dir
    os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
    rng = random.Random(args.seed)
    first_size = int(args.first_mib * 1024 * 1024) + 17

    if args.platforms:
        descs, summaries = [], []
        for arch in args.platforms.split(","):
            desc, summary = build_image(root, rng, args.seed, args.layers, first_size, arch)
            descs.append(desc)
            summaries.append(summary)
        index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": descs}
        index_bytes = json.dumps(index, separators=(",", ":")).encode()
        top = {"mediaType": MEDIA_INDEX, "digest": write_blob(root, index_bytes), "size": len(index_bytes)}
        result = {"manifest": top["digest"], "manifests": summaries}
    else:
        desc, result = build_image(root, rng, args.seed, args.layers, first_size, "amd64")
        top = {k: desc[k] for k in ("mediaType", "digest", "size")}

    top["annotations"] = {"org.opencontainers.image.ref.name": args.tag}
    if args.name:
        top["annotations"]["io.containerd.image.name"] = args.name
    layout_index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [top]}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(layout_index, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    if args.archive:
        with tarfile.open(args.archive, "w") as tar:
            for entry in sorted(os.listdir(root)):
                tar.add(os.path.join(root, entry), arcname=entry)

    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
