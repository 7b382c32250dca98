#!/usr/bin/env python3
"""oras-py (PyPI `oras`) against the registry: artifacts rather than images.

Run by run.sh with the venv's python and the CONF_* variables (see lib.sh).
Pushes two files as the layers of an OCI artifact with its own config media
type, once with oras' monolithic POST+PUT upload and once chunked (ordered
PATCHes with Content-Range), pulls them back into fresh directories and
compares the bytes, lists and deletes tags, and attaches a referrer.

Auth: oras-py 0.2.43 keeps the first bearer token it gets for every later
scope (CLIENTS.md), so, like `oras login` followed by a push, we log in with
the password and have oras' own token code fetch one token for the scope we
need (`repository:NAME:pull,push[,delete]`), then hand it over with
`auth.set_token_auth`. A wrong password gets no token.
"""

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import traceback

# This file is named after the package it tests: keep `import oras` from
# finding this file instead of the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import oras.client  # noqa: E402
import oras.decorator  # noqa: E402
import oras.oci  # noqa: E402
import requests  # noqa: E402
from oras.auth.utils import parse_auth_header  # noqa: E402

REG = os.environ["CONF_REGISTRY"]
AUTH = os.environ.get("CONF_AUTH") == "1"
ADMIN = (os.environ["CONF_ADMIN_USER"], os.environ["CONF_ADMIN_PASS"])
USER = (os.environ["CONF_USER"], os.environ["CONF_USER_PASS"])
RESULTS = os.environ["CONF_RESULTS"]
WORK = os.environ["CONF_WORK"]
CONF_DIR = os.environ["CONF_DIR"]
LOG = os.path.join(WORK, "commands.log")
CONFIG_TYPE = "application/vnd.berth.conformance.config.v1+json"
FILE_TYPE = "application/vnd.berth.conformance.file"
REPO = "conf/oras-img"
FAILED = False


class _NoSleep:
    """oras retries a failing request five times with 3**n s sleeps; a refusal
    we expect should not take two minutes."""

    @staticmethod
    def sleep(_seconds):
        return None


oras.decorator.time = _NoSleep


def record(status, what):
    global FAILED
    with open(RESULTS, "a") as f:
        f.write(f"{status} oras: {what}\n")
    print(f"[oras] {status} {what}", file=sys.stderr)
    if status == "FAIL":
        FAILED = True


def note(text):
    with open(LOG, "a") as f:
        f.write(text.rstrip() + "\n")


def check(what, fn, *args):
    """fn must succeed and not return False; returns its result or None."""
    note(f"\n== {what}")
    try:
        result = fn(*args)
    except Exception as err:  # a failed check, whatever raised it
        note(traceback.format_exc())
        record("FAIL", f"{what} ({type(err).__name__}: {str(err)[:200]})")
        return None
    if result is False:
        record("FAIL", what)
        return None
    record("PASS", what)
    return result


# oras says "Cannot respond to request for authentication" when a 401 or 403
# came without a challenge it can answer (a 403 DENIED carries none).
DENIED = re.compile(
    r"denied|unauthori[sz]ed|forbidden|insufficient_scope|\b40[13]\b|Cannot respond to request for authentication",
    re.I,
)


def check_denied(what, fn, *args):
    """fn must raise, and with an auth refusal, not some other error."""
    note(f"\n== {what} (expect refusal)")
    try:
        result = fn(*args)
    except Exception as err:
        note(traceback.format_exc())
        if DENIED.search(f"{type(err).__name__}: {err}"):
            record("PASS", what)
        else:
            record("FAIL", f"{what} (failed, but not with a refusal: {type(err).__name__}: {str(err)[:200]})")
        return
    note(f"unexpected success: {result!r}")
    record("FAIL", f"{what} (it succeeded)")


def auth_only(what, fn):
    if AUTH:
        fn()
    else:
        record("SKIP", f"{what} (registry without auth)")


def sha256_file(path):
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


# --- client and token handling -------------------------------------------------


def client():
    return oras.client.OrasClient(hostname=REG, insecure=True)


def challenge():
    """The registry's Bearer challenge on /v2/, or None if it needs no auth."""
    r = requests.get(f"http://{REG}/v2/", timeout=30)
    if r.status_code == 200:
        return None
    header = r.headers.get("Www-Authenticate", "")
    if r.status_code != 401 or not header.lower().startswith("bearer"):
        raise RuntimeError(f"/v2/ answered {r.status_code} {header!r}")
    return parse_auth_header(header)


def login(c, creds, repo, actions):
    """Log c in and give it a token for repo; raises if no token was issued."""
    h = challenge()
    if h is None:
        return c
    c.login(creds[0], creds[1], hostname=REG, config_path=os.path.join(WORK, "oras-auth.json"))
    h.scope = f"repository:{repo}:{actions}"
    token = c.auth.request_token(h)
    if not token:
        # oras only logs why; ask the realm the same question to say it.
        r = requests.get(h.realm, params={"service": h.service, "scope": h.scope}, auth=creds, timeout=30)
        raise RuntimeError(f"no token for {creds[0]} on {h.scope}: /token answered {r.status_code} {r.text[:200]}")
    c.auth.set_token_auth(token)
    return c


def raw_manifest(c, repo, ref):
    url = f"http://{REG}/v2/{repo}/manifests/{ref}"
    accept = "application/vnd.oci.image.manifest.v1+json"
    r = c.do_request(url, "GET", headers={"Accept": accept})
    r.raise_for_status()
    return r


# --- the test ---------------------------------------------------------------------


def make_files():
    rng = random.Random("oras")
    with open("big.bin", "wb") as f:
        f.write(rng.randbytes(1024 * 1024 + 5))
    with open("notes.txt", "w") as f:
        f.write("berth conformance artifact\n")
    with open("config.json", "w") as f:
        json.dump({"purpose": "berth conformance"}, f)
    with open("chunked.bin", "wb") as f:
        f.write(rng.randbytes(700 * 1024 + 3))  # three 256 KiB PATCHes
    with open("other.txt", "w") as f:
        f.write("a second artifact, to delete\n")


def push(c, repo, tag, chunked=False, files=("big.bin", "notes.txt")):
    resp = c.push(
        target=f"{REG}/{repo}:{tag}",
        files=[f"{name}:{FILE_TYPE}" for name in files],
        manifest_config=f"config.json:{CONFIG_TYPE}",
        do_chunked=chunked,
        chunk_size=256 * 1024,
        quiet=True,
    )
    if resp.status_code != 201:
        raise RuntimeError(f"manifest PUT answered {resp.status_code}")
    digest = resp.headers.get("Docker-Content-Digest")
    if not digest:
        raise RuntimeError("manifest PUT without Docker-Content-Digest")
    return digest


def pull_and_compare(c, repo, tag, outdir):
    files = c.pull(target=f"{REG}/{repo}:{tag}", outdir=outdir)
    got = {os.path.basename(p): sha256_file(p) for p in files}
    want = {name: sha256_file(name) for name in ("big.bin", "notes.txt")}
    if got != want:
        raise RuntimeError(f"pulled {got}, pushed {want}")
    return True


def verify(repo, ref, digest, files=("big.bin", "notes.txt")):
    args = [sys.executable, os.path.join(CONF_DIR, "verify.py"), "--registry", REG,
            "--repo", repo, "--ref", ref, "--digest", digest,
            "--layers", ",".join(sha256_file(name) for name in files),
            "--config", sha256_file("config.json")]
    if AUTH:
        args += ["--user", ADMIN[0], "--password", ADMIN[1]]
    out = subprocess.run(args, capture_output=True, text=True)
    note(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip()[-300:])
    return True


def main():
    make_files()

    def refusals_before_login():
        check_denied("login with a wrong password gets no token",
                    login, client(), (ADMIN[0], "wrong-password"), REPO, "pull,push")
        check_denied("push without login is refused", push, client(), REPO, "v1")

    auth_only("login checks", refusals_before_login)

    admin = check("login as admin (token for pull,push,delete)", login, client(), ADMIN, REPO, "pull,push,delete")
    if admin is None:
        return
    pushed = check("push a two-file artifact", push, admin, REPO, "v1")
    if pushed is None:
        return
    check("registry serves the pushed manifest, config and files", verify, REPO, "v1", pushed)
    check("manifest bytes hash to the pushed digest",
          lambda: hashlib.sha256(raw_manifest(admin, REPO, "v1").content).hexdigest() == pushed.split(":")[1])

    reader = check("fresh client logs in to pull", login, client(), ADMIN, REPO, "pull")
    if reader is not None:
        check("pull into a fresh directory; files equal", pull_and_compare, reader, REPO, "v1",
              os.path.join(WORK, "pulled"))

    # New content, so the blob is really uploaded (oras skips blobs that exist).
    chunked_files = ("chunked.bin", "notes.txt")
    chunked = check("push an artifact with chunked PATCH uploads", push, admin, REPO, "chunked", True, chunked_files)
    if chunked is not None:
        check("registry serves the chunked upload's bytes", verify, REPO, "chunked", chunked, chunked_files)

    # A second artifact under its own tag; deleting it leaves v1 alone.
    check("push a second artifact", push, admin, REPO, "tmp", False, ("other.txt",))
    check("tags list v1, chunked and tmp", lambda: sorted(admin.get_tags(f"{REG}/{REPO}")) == ["chunked", "tmp", "v1"])
    check("delete the second artifact's manifest", admin.delete_tag, f"{REG}/{REPO}", "tmp")
    check("tags list v1 and chunked", lambda: sorted(admin.get_tags(f"{REG}/{REPO}")) == ["chunked", "v1"])

    def referrers():
        subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json",
                                   digest=pushed, size=len(raw_manifest(admin, REPO, "v1").content))
        resp = admin.push(target=f"{REG}/{REPO}:sig", files=[f"notes.txt:{FILE_TYPE}"],
                          manifest_config=f"config.json:{CONFIG_TYPE}", subject=subject, quiet=True)
        referrer = resp.headers.get("Docker-Content-Digest")
        r = admin.do_request(f"http://{REG}/v2/{REPO}/referrers/{pushed}", "GET")
        r.raise_for_status()
        found = [m["digest"] for m in r.json().get("manifests", [])]
        if referrer not in found:
            raise RuntimeError(f"referrers of {pushed} are {found}, expected {referrer}")
        return True

    # Distribution 2.8 has no referrers API; only berth is asked.
    auth_only("referrers", lambda: check("an artifact with a subject is listed by the referrers API", referrers))

    def refusals_for_others():
        check_denied("anonymous pull of a private artifact is refused",
                    client().pull, f"{REG}/{REPO}:v1", None, None, True, os.path.join(WORK, "anon"))
        check_denied("user's pull from another's private collection is refused",
                    lambda: login(client(), USER, REPO, "pull").pull(
                        target=f"{REG}/{REPO}:v1", outdir=os.path.join(WORK, "denied")))
        check_denied("user's push into another's collection is refused",
                    lambda: push(login(client(), USER, "conf/oras-user", "pull,push"), "conf/oras-user", "v1"))

    auth_only("anonymous and ordinary-user refusals", refusals_for_others)

    # A new collection becomes the user's own: push, then pull back.
    own = f"{USER[0]}-oras/img"
    user = check("login as an ordinary user for a new collection", login, client(), USER, own, "pull,push")
    if user is not None:
        digest = check("user's push into a new collection", push, user, own, "v1")
        if digest is not None:
            check("user's pushed digest equals admin's for the same content", lambda: digest == pushed)
            check("user pulls back from the own collection", pull_and_compare,
                  login(client(), USER, own, "pull"), own, "v1", os.path.join(WORK, "own-pulled"))


if __name__ == "__main__":
    os.chdir(WORK)
    main()
    sys.exit(1 if FAILED else 0)
