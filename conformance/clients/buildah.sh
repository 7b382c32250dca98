#!/usr/bin/env bash
# buildah 1.28 against the registry, with a private vfs store. The image is
# built with no network: `buildah from scratch` + `copy` + `commit`, then
# `from` that image + `copy` + `commit` again: two layers. The main push is
# Docker schema 2 (--format v2s2), the ordinary user's push is OCI. Auth by
# `buildah login --authfile`, and by --creds for the user.
set -uo pipefail
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

W=$CONF_WORK
buildah() { command buildah --root "$W/store" --runroot "$W/run" --storage-driver vfs "$@"; }
auth_files

REG=$CONF_REGISTRY
IMG=$REG/conf/buildah-img:v1

login() { # USER PASS
    printf '%s' "$2" | buildah login "${R[@]}" -u "$1" --password-stdin "$REG"
}
image_digest() { buildah inspect --type image --format '{{.FromImageDigest}}' "$1"; }
diff_ids() { buildah inspect --type image "$1" | jq -r '.OCIv1.rootfs.diff_ids | join(",")'; }

# --- build -------------------------------------------------------------------
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("buildah-a").randbytes(1<<20))' >a.bin
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("buildah-b").randbytes(30000))' >b.bin
build() {
    local c
    c=$(buildah from scratch) &&
        buildah copy "$c" a.bin /a.bin &&
        buildah commit --rm "$c" localhost/buildah-base:1 &&
        c=$(buildah from --pull-never localhost/buildah-base:1) &&
        buildah copy "$c" b.bin /b.bin &&
        buildah config --cmd /b.bin "$c" &&
        buildah commit --rm "$c" "$IMG"
}
require "build a two-layer image (from scratch, copy, commit; twice)" build
DIFF_IDS=$(diff_ids "$IMG")
equal "the image has two layers" 2 "$(tr ',' '\n' <<<"$DIFF_IDS" | grep -c .)"

# --- auth refusals before login ------------------------------------------------
refusals_before_login() {
    check_denied "push without login is refused" buildah push "${ANON[@]}" "$IMG"
    check_denied "login with a wrong password is refused" login "$CONF_ADMIN_USER" wrong-password
    check_denied "push with wrong --creds is refused" \
        buildah push --tls-verify=false --creds "$CONF_ADMIN_USER:wrong-password" "$IMG"
    check "login as admin" login "$CONF_ADMIN_USER" "$CONF_ADMIN_PASS"
}
auth_only "login checks" refusals_before_login

# --- push, check what the registry holds, pull back ----------------------------
require "push $IMG as Docker v2s2" buildah push "${R[@]}" --format v2s2 --digestfile "$W/pushed" "$IMG"
PUSHED=$(cat "$W/pushed")
check "registry serves the pushed manifest and both layers" \
    verify_remote conf/buildah-img v1 --digest "$PUSHED" --diff-ids "$DIFF_IDS"

run buildah rmi -a -f
check_fails "the image is gone locally" buildah inspect --type image "$IMG"
require "pull it back" buildah pull "${R[@]}" "$IMG"
equal "pulled digest equals pushed digest" "$PUSHED" "$(image_digest "$IMG")"
equal "pulled layers equal the original" "$DIFF_IDS" "$(diff_ids "$IMG")"

# --- as nobody, then as an ordinary user --------------------------------------
refusals_for_others() {
    # Keep the image under a local name only, so a pull must reach the registry.
    run buildah tag "$IMG" localhost/buildah-keep:1
    run buildah rmi "$IMG"
    check_denied "anonymous pull of a private image is refused" buildah pull "${ANON[@]}" "$IMG"
    run buildah logout --authfile "$AUTH" "$REG"
    check_denied "user's pull from another's private collection is refused" \
        buildah pull --tls-verify=false --creds "$CONF_USER:$CONF_USER_PASS" "$IMG"
    check_denied "user's push into another's collection is refused" \
        buildah push --tls-verify=false --creds "$CONF_USER:$CONF_USER_PASS" localhost/buildah-keep:1 "docker://$REG/conf/buildah-user:v1"
}
auth_only "anonymous and ordinary-user refusals" refusals_for_others

# A new collection becomes the user's own: push (OCI), then pull back into an empty store.
SRC=$IMG
[ "${CONF_AUTH:-0}" = 1 ] && SRC=localhost/buildah-keep:1
OWN=$REG/$CONF_USER-buildah/img:v1
check "user's push into a new collection (OCI)" buildah push --tls-verify=false --creds "$CONF_USER:$CONF_USER_PASS" \
    --format oci --digestfile "$W/own" "$SRC" "docker://$OWN" || exit 1
check "registry serves the user's OCI manifest and layers" \
    verify_remote "$CONF_USER-buildah/img" v1 --digest "$(cat "$W/own")" --diff-ids "$DIFF_IDS"
run buildah rmi -a -f
check "user pulls back from the own collection" \
    buildah pull --tls-verify=false --creds "$CONF_USER:$CONF_USER_PASS" "$OWN"
equal "user's pulled digest equals pushed" "$(cat "$W/own")" "$(image_digest "$OWN")"
equal "user's pulled layers equal the original" "$DIFF_IDS" "$(diff_ids "$OWN")"
exit 0
