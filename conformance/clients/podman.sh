#!/usr/bin/env bash
# podman 4.3 against the registry. Store, run and tmp dirs are private to this
# run (vfs, cgroupfs, file events). The image comes from `podman build` of a
# Containerfile `FROM scratch` with two COPY steps: two layers, OCI format.
# Credentials live in an auth file of our own (--authfile).
set -uo pipefail
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

W=$CONF_WORK
podman() {
    command podman --root "$W/store" --runroot "$W/run" --tmpdir "$W/tmp" --storage-driver vfs \
        --cgroup-manager=cgroupfs --events-backend=file "$@"
}
auth_files

REG=$CONF_REGISTRY
IMG=$REG/conf/podman-img:v1

# diff_ids, comma-separated (podman's Layers are digests: `join` refuses them)
layers_of() {
    podman inspect --format '{{range $i, $l := .RootFS.Layers}}{{if $i}},{{end}}{{$l}}{{end}}' "$1"
}
login() { # USER PASS
    printf '%s' "$2" | podman login "${R[@]}" -u "$1" --password-stdin "$REG"
}

# --- build -------------------------------------------------------------------
mkdir -p ctx
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("podman-a").randbytes(1<<20))' >ctx/a.bin
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("podman-b").randbytes(50000))' >ctx/b.bin
printf 'FROM scratch\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\n' >ctx/Containerfile
require "build a two-layer image (podman build)" podman build -t "$IMG" ctx
IMAGE_ID=sha256:$(podman inspect --format '{{.Id}}' "$IMG")
DIFF_IDS=$(layers_of "$IMG")

# --- auth refusals before login ------------------------------------------------
refusals_before_login() {
    check_denied "push without login is refused" podman push "${ANON[@]}" "$IMG"
    check_denied "login with a wrong password is refused" login "$CONF_ADMIN_USER" wrong-password
    check "login as admin" login "$CONF_ADMIN_USER" "$CONF_ADMIN_PASS"
}
auth_only "login checks" refusals_before_login

# --- push, check what the registry holds, pull back ----------------------------
require "push $IMG" podman push "${R[@]}" --digestfile "$W/pushed" "$IMG"
PUSHED=$(cat "$W/pushed")
check "registry serves the pushed manifest, config and both layers" \
    verify_remote conf/podman-img v1 --digest "$PUSHED" --config "$IMAGE_ID" --diff-ids "$DIFF_IDS"

run podman rmi -f "$IMG"
check_fails "the image is gone locally" podman image exists "$IMG"
require "pull it back" podman pull "${R[@]}" "$IMG"
equal "pulled digest equals pushed digest" "$PUSHED" "$(podman inspect --format '{{.Digest}}' "$IMG")"
equal "pulled image ID equals the original" "$IMAGE_ID" "sha256:$(podman inspect --format '{{.Id}}' "$IMG")"
equal "pulled layers equal the original" "$DIFF_IDS" "$(layers_of "$IMG")"

KEEP=localhost/podman-keep:1 # a local name that survives untagging $IMG
run podman tag "$IMG" "$KEEP"

# Push the same image again as Docker schema 2 under another tag: the registry
# now holds two manifests that share every blob.
check "push again as Docker v2s2" podman push "${R[@]}" --format v2s2 --digestfile "$W/pushed2" "$KEEP" "$REG/conf/podman-img:v2s2"
check "registry serves the v2s2 manifest and layers" \
    verify_remote conf/podman-img v2s2 --digest "$(cat "$W/pushed2")" --diff-ids "$DIFF_IDS"

# --- as nobody, then as an ordinary user --------------------------------------
refusals_for_others() {
    run podman untag "$KEEP" "$IMG" # drops the name $IMG only
    check_denied "anonymous pull of a private image is refused" podman pull "${ANON[@]}" "$IMG"
    run podman logout --authfile "$AUTH" "$REG"
    check "login as an ordinary user" login "$CONF_USER" "$CONF_USER_PASS"
    check_denied "user's pull from another's private collection is refused" podman pull "${R[@]}" "$IMG"
    check_denied "user's push into another's collection is refused" \
        podman push "${R[@]}" "$KEEP" "$REG/conf/podman-user:v1"
}
auth_only "anonymous and ordinary-user refusals" refusals_for_others

# A new collection becomes the user's own: push, then pull back into an empty store.
OWN=$REG/$CONF_USER-podman/img:v1
check "user's push into a new collection" podman push "${R[@]}" --digestfile "$W/own" "$KEEP" "$OWN" || exit 1
run podman rmi -a -f
check "user pulls back from the own collection" podman pull "${R[@]}" "$OWN"
equal "user's pulled digest equals pushed" "$(cat "$W/own")" "$(podman inspect --format '{{.Digest}}' "$OWN")"
equal "user's pulled image ID equals the original" "$IMAGE_ID" "sha256:$(podman inspect --format '{{.Id}}' "$OWN")"

# `podman search` reads /v2/_catalog, which lists only what the caller may pull.
# search_names AUTHFILE: the repository names matching "podman", sorted.
search_names() {
    podman search --tls-verify=false --authfile "$1" --format '{{.Name}}' "$REG/podman" 2>>"$CONF_LOG" |
        sed "s|^$REG/||" | sort | tr '\n' ' '
}
catalog_checks() {
    equal "catalog as the user shows only the own repository" "$CONF_USER-podman/img " "$(search_names "$AUTH")"
    run podman logout --authfile "$AUTH" "$REG"
    login "$CONF_ADMIN_USER" "$CONF_ADMIN_PASS" >>"$CONF_LOG" 2>&1
    equal "catalog as admin shows every repository" \
        "$CONF_USER-podman/img conf/podman-img " "$(search_names "$AUTH")"
    equal "catalog as nobody shows only the public repository" "$CONF_USER-podman/img " \
        "$(search_names "$W/empty-auth.json")"
}
auth_only "catalog checks" catalog_checks
run podman logout --authfile "$AUTH" "$REG"
exit 0
