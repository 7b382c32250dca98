#!/usr/bin/env bash
# containerd 1.6 `ctr` against the registry, through the private containerd
# that run.sh started (CONF_CONTAINERD_SOCK), in a namespace of our own. The
# image is an OCI archive from mkimage.py (two gzip layers), imported with
# `ctr images import`. ctr authenticates with --user u:p; it asks the token
# realm by POST (OAuth2 password grant) first and falls back to GET.
set -uo pipefail
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

W=$CONF_WORK
REG=$CONF_REGISTRY
REPO=conf/ctr-img
IMG=$REG/$REPO:v1
# stdin from /dev/null: ctr prompts for a password when --user has none.
ctr() { command ctr --address "$CONF_CONTAINERD_SOCK" --namespace conf "$@" </dev/null; }
ADMIN=(--plain-http --user "$CONF_ADMIN_USER:$CONF_ADMIN_PASS")
USER=(--plain-http --user "$CONF_USER:$CONF_USER_PASS")
target_of() { ctr images ls "name==$1" | awk 'NR == 2 { print $3 }'; }
content_digests() { ctr content ls -q | sort | tr '\n' ' '; }
remove_all() { # every image, then wait for GC to drop the content
    local refs
    mapfile -t refs < <(ctr images ls -q)
    [ "${#refs[@]}" = 0 ] || ctr images rm --sync "${refs[@]}"
}

# --- build -------------------------------------------------------------------
require "write a two-layer OCI archive" sh -c \
    "python3 '$CONF_DIR/mkimage.py' '$W/layout' --tag v1 --seed ctr --name '$IMG' --archive '$W/image.tar' >'$W/image.json'"
WANT_MANIFEST=$(json "$W/image.json" .manifest)
WANT_LAYERS=$(json "$W/image.json" '.layers | join(",")')
WANT_DIFF_IDS=$(json "$W/image.json" '.diff_ids | join(",")')
WANT_CONTENT=$(json "$W/image.json" '[.manifest, .config] + .layers | sort | join(" ")')" "
require "import it" ctr images import --snapshotter native "$W/image.tar"
equal "imported image is the archive's manifest" "$WANT_MANIFEST" "$(target_of "$IMG")"

# --- auth refusals -------------------------------------------------------------
refusals_before_login() {
    check_denied "push without credentials is refused" ctr images push --plain-http "$IMG"
    check_denied "push with a wrong password is refused" \
        ctr images push --plain-http --user "$CONF_ADMIN_USER:wrong-password" "$IMG"
}
auth_only "login checks" refusals_before_login

# --- push, check what the registry holds, pull back ----------------------------
require "push $IMG" ctr images push "${ADMIN[@]}" "$IMG"
check "registry serves exactly the blobs we wrote" verify_remote "$REPO" v1 \
    --digest "$WANT_MANIFEST" --layers "$WANT_LAYERS" --diff-ids "$WANT_DIFF_IDS"

run remove_all
equal "local content is gone before the pull" "none" "$(content_digests)none"
require "pull it back" ctr images pull "${ADMIN[@]}" --snapshotter native "$IMG"
equal "pulled image is the pushed manifest" "$WANT_MANIFEST" "$(target_of "$IMG")"
equal "pulled content is the pushed manifest, config and layers" "$WANT_CONTENT" "$(content_digests)"
bytes_match() {
    local d
    for d in $(json "$W/image.json" '.layers[]'); do
        ctr content get "$d" | cmp -s - "$W/layout/blobs/sha256/${d#sha256:}" || return 1
    done
}
check "pulled layer bytes equal the archive's" bytes_match

# --- as nobody, then as an ordinary user --------------------------------------
refusals_for_others() {
    run remove_all
    check_denied "anonymous pull of a private image is refused" ctr images pull --plain-http --snapshotter native "$IMG"
    check_denied "user's pull from another's private collection is refused" \
        ctr images pull "${USER[@]}" --snapshotter native "$IMG"
    run ctr images import --snapshotter native "$W/image.tar"
    run ctr images tag "$IMG" "$REG/conf/ctr-user:v1"
    check_denied "user's push into another's collection is refused" ctr images push "${USER[@]}" "$REG/conf/ctr-user:v1"
}
auth_only "anonymous and ordinary-user refusals" refusals_for_others

# A new collection becomes the user's own: push, then pull back after removing everything.
OWN=$REG/$CONF_USER-ctr/img:v1
run ctr images import --snapshotter native "$W/image.tar"
run ctr images tag --force "$IMG" "$OWN"
check "user's push into a new collection" ctr images push "${USER[@]}" "$OWN" || exit 1
run remove_all
check "user pulls back from the own collection" ctr images pull "${USER[@]}" --snapshotter native "$OWN"
equal "user's pulled image is the pushed manifest" "$WANT_MANIFEST" "$(target_of "$OWN")"
run remove_all
exit 0
