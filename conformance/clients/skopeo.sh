#!/usr/bin/env bash
# skopeo 1.9 against the registry. The image is an OCI layout written by
# mkimage.py (two gzip layers); skopeo copies it up byte for byte, so the
# registry must then serve exactly the manifest and blobs we wrote. Credentials
# go by --creds / --src-creds / --dest-creds, and once through `skopeo login`.
set -uo pipefail
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

W=$CONF_WORK
REG=$CONF_REGISTRY
REPO=conf/skopeo-img
echo '{}' >"$W/empty-auth.json"
ADMIN=$CONF_ADMIN_USER:$CONF_ADMIN_PASS
USER=$CONF_USER:$CONF_USER_PASS
# Plain HTTP; a private policy and auth file so nothing from the host leaks in.
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/policy.json"
skopeo() { command skopeo --policy "$W/policy.json" "$@"; }
NOTLS=(--tls-verify=false)
ANON=(--tls-verify=false --authfile "$W/empty-auth.json")

# --- build -------------------------------------------------------------------
require "write a two-layer OCI layout" sh -c "python3 '$CONF_DIR/mkimage.py' '$W/layout' --tag v1 --seed skopeo >'$W/image.json'"
WANT_MANIFEST=$(json "$W/image.json" .manifest)
WANT_CONFIG=$(json "$W/image.json" .config)
WANT_LAYERS=$(json "$W/image.json" '.layers | join(",")')
WANT_DIFF_IDS=$(json "$W/image.json" '.diff_ids | join(",")')

# --- auth refusals -------------------------------------------------------------
refusals_before_login() {
    check_denied "push without credentials is refused" \
        skopeo copy --dest-tls-verify=false --dest-authfile "$W/empty-auth.json" "oci:$W/layout:v1" "docker://$REG/$REPO:v1"
    check_denied "login with a wrong password is refused" \
        sh -c "printf wrong-password | skopeo login --tls-verify=false --authfile '$W/auth.json' -u '$CONF_ADMIN_USER' --password-stdin '$REG'"
    check_denied "push with a wrong password is refused" \
        skopeo copy --dest-tls-verify=false --dest-creds "$CONF_ADMIN_USER:wrong-password" "oci:$W/layout:v1" "docker://$REG/$REPO:v1"
    check "login as admin (skopeo login)" \
        sh -c "printf '%s' '$CONF_ADMIN_PASS' | skopeo login --tls-verify=false --authfile '$W/auth.json' -u '$CONF_ADMIN_USER' --password-stdin '$REG'"
}
auth_only "login checks" refusals_before_login

# --- push, inspect, pull back --------------------------------------------------
require "push the layout" skopeo copy --dest-tls-verify=false --dest-creds "$ADMIN" \
    --digestfile "$W/pushed" "oci:$W/layout:v1" "docker://$REG/$REPO:v1"
equal "pushed digest is the layout's manifest digest" "$WANT_MANIFEST" "$(cat "$W/pushed")"
check "registry serves exactly the blobs we wrote" verify_remote "$REPO" v1 \
    --digest "$WANT_MANIFEST" --config "$WANT_CONFIG" --layers "$WANT_LAYERS" --diff-ids "$WANT_DIFF_IDS"

skopeo inspect "${NOTLS[@]}" --creds "$ADMIN" --raw "docker://$REG/$REPO:v1" >"$W/raw.json" 2>>"$CONF_LOG"
equal "inspect --raw returns the manifest bytes" "$WANT_MANIFEST" "$(digest_of "$W/raw.json")"
check "inspect --raw is byte-identical to what was pushed" \
    cmp "$W/raw.json" "$W/layout/blobs/sha256/${WANT_MANIFEST#sha256:}"
equal "inspect reports the digest" "$WANT_MANIFEST" \
    "$(skopeo inspect "${NOTLS[@]}" --creds "$ADMIN" --format '{{.Digest}}' "docker://$REG/$REPO:v1" 2>>"$CONF_LOG")"
equal "inspect by the login's auth file" "$WANT_MANIFEST" \
    "$(skopeo inspect "${NOTLS[@]}" --authfile "$W/auth.json" --format '{{.Digest}}' "docker://$REG/$REPO:v1" 2>>"$CONF_LOG")"

require "pull into a fresh OCI layout" skopeo copy --src-tls-verify=false --src-creds "$ADMIN" \
    "docker://$REG/$REPO:v1" "oci:$W/pulled:v1"
equal "pulled manifest digest equals pushed" "$WANT_MANIFEST" "$(jq -r '.manifests[0].digest' "$W/pulled/index.json")"
equal "pulled blobs equal pushed blobs" \
    "$(cd "$W/layout/blobs/sha256" && sha256sum -- * | sort)" \
    "$(cd "$W/pulled/blobs/sha256" && sha256sum -- * | sort)"

# A second tag by digest, list it, delete the manifest, and see it gone.
check "copy to a second tag" skopeo copy --src-tls-verify=false --dest-tls-verify=false \
    --src-creds "$ADMIN" --dest-creds "$ADMIN" "docker://$REG/$REPO@$WANT_MANIFEST" "docker://$REG/$REPO:v2"
equal "list-tags shows both tags" '["v1","v2"]' \
    "$(skopeo list-tags "${NOTLS[@]}" --creds "$ADMIN" "docker://$REG/$REPO" 2>>"$CONF_LOG" | jq -c '.Tags | sort')"

# An image index over two platforms, copied with --all: the registry must take
# the index after its manifests and serve all of it back byte for byte.
require "write a two-platform OCI index" sh -c \
    "python3 '$CONF_DIR/mkimage.py' '$W/multi' --tag v1 --seed skopeo-multi --platforms amd64,arm64 >'$W/multi.json'"
WANT_INDEX=$(json "$W/multi.json" .manifest)
check "push the index with --all" skopeo copy --all --dest-tls-verify=false --dest-creds "$ADMIN" \
    --digestfile "$W/multi-pushed" "oci:$W/multi:v1" "docker://$REG/conf/skopeo-multi:v1"
equal "pushed digest is the index's digest" "$WANT_INDEX" "$(cat "$W/multi-pushed" 2>/dev/null)"
skopeo inspect "${NOTLS[@]}" --creds "$ADMIN" --raw "docker://$REG/conf/skopeo-multi:v1" >"$W/multi-raw.json" 2>>"$CONF_LOG"
check "inspect --raw returns the index bytes" cmp "$W/multi-raw.json" "$W/multi/blobs/sha256/${WANT_INDEX#sha256:}"
check "registry serves the arm64 image of the index" verify_remote conf/skopeo-multi \
    "$(json "$W/multi.json" '.manifests[1].manifest')" --layers "$(json "$W/multi.json" '.manifests[1].layers | join(",")')"
check "pull the index with --all into a fresh layout" skopeo copy --all --src-tls-verify=false --src-creds "$ADMIN" \
    "docker://$REG/conf/skopeo-multi:v1" "oci:$W/multi-pulled:v1"
equal "pulled index blobs equal pushed blobs" \
    "$(cd "$W/multi/blobs/sha256" && sha256sum -- * | sort)" \
    "$(cd "$W/multi-pulled/blobs/sha256" && sha256sum -- * | sort)"

# One 70 MiB layer: more than one 64 MiB checkpoint of a streamed PATCH.
require "write a 70 MiB single-layer image" sh -c \
    "python3 '$CONF_DIR/mkimage.py' '$W/big' --tag v1 --seed skopeo-big --layers 1 --first-mib 70 >'$W/big.json'"
check "push the 70 MiB layer" skopeo copy --dest-tls-verify=false --dest-creds "$ADMIN" \
    "oci:$W/big:v1" "docker://$REG/conf/skopeo-big:v1"
check "registry serves the 70 MiB layer intact" verify_remote conf/skopeo-big v1 --min-layers 1 \
    --digest "$(json "$W/big.json" .manifest)" --layers "$(json "$W/big.json" '.layers | join(",")')"
rm -rf "$W/big"

# --- as nobody, then as an ordinary user --------------------------------------
refusals_for_others() {
    check_denied "anonymous inspect of a private image is refused" skopeo inspect "${ANON[@]}" "docker://$REG/$REPO:v1"
    check_denied "anonymous pull of a private image is refused" \
        skopeo copy --src-tls-verify=false --src-authfile "$W/empty-auth.json" "docker://$REG/$REPO:v1" "oci:$W/anon:v1"
    check_denied "user's pull from another's private collection is refused" \
        skopeo copy --src-tls-verify=false --src-creds "$USER" "docker://$REG/$REPO:v1" "oci:$W/user-denied:v1"
    check_denied "user's push into another's collection is refused" \
        skopeo copy --dest-tls-verify=false --dest-creds "$USER" "oci:$W/layout:v1" "docker://$REG/conf/skopeo-user:v1"
    check_denied "user's delete in another's collection is refused" \
        skopeo delete "${NOTLS[@]}" --creds "$USER" "docker://$REG/$REPO:v2"
}
auth_only "anonymous and ordinary-user refusals" refusals_for_others

# A new collection becomes the user's own: push, inspect, pull back.
OWN=$CONF_USER-skopeo/img
check "user's push into a new collection" skopeo copy --dest-tls-verify=false --dest-creds "$USER" \
    --digestfile "$W/own" "oci:$W/layout:v1" "docker://$REG/$OWN:v1" || exit 1
equal "user's pushed digest is the layout's" "$WANT_MANIFEST" "$(cat "$W/own")"
check "user pulls back from the own collection" skopeo copy --src-tls-verify=false --src-creds "$USER" \
    "docker://$REG/$OWN:v1" "oci:$W/own-pulled:v1"
equal "user's pulled blobs equal pushed blobs" \
    "$(cd "$W/layout/blobs/sha256" && sha256sum -- * | sort)" \
    "$(cd "$W/own-pulled/blobs/sha256" && sha256sum -- * | sort)"

# Delete by digest (admin) last: the tags go with the manifest.
check "delete the manifest by digest" skopeo delete "${NOTLS[@]}" --creds "$ADMIN" "docker://$REG/$REPO@$WANT_MANIFEST"
check_fails_like "manifest unknown|not found" "the deleted manifest is gone" skopeo inspect "${NOTLS[@]}" --creds "$ADMIN" --raw "docker://$REG/$REPO:v2"
exit 0
