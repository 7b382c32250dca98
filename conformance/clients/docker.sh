#!/usr/bin/env bash
# docker 20.10 (Debian's docker.io) against the registry, through the private
# dockerd that run.sh started (DOCKER_HOST). The image is made offline: a
# `docker import` of a tar, then a `docker build` that COPYs a second file on
# top (the classic builder needs no container runtime for COPY): two layers.
set -uo pipefail
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

# /usr/local/bin may hold a newer docker CLI; test Debian's, which matches the engine.
docker() { /usr/bin/docker "$@"; }
export DOCKER_CONFIG=$CONF_WORK/docker-config DOCKER_BUILDKIT=0
mkdir -p "$DOCKER_CONFIG"

REG=$CONF_REGISTRY
IMG=$REG/conf/docker-img:v1

# --- build -------------------------------------------------------------------
mkdir -p rootfs ctx
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("docker-base").randbytes(1<<20))' >rootfs/base.bin
echo "docker conformance" >rootfs/README
tar -C rootfs -cf base.tar .
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("docker-top").randbytes(70000))' >ctx/top.bin
printf 'FROM conf-docker-base:1\nCOPY top.bin /top.bin\n' >ctx/Dockerfile
require "build a two-layer image (import + build)" \
    sh -c "/usr/bin/docker import base.tar conf-docker-base:1 && /usr/bin/docker build -t '$IMG' ctx"
IMAGE_ID=$(docker inspect --format '{{.Id}}' "$IMG")
DIFF_IDS=$(docker inspect --format '{{join .RootFS.Layers ","}}' "$IMG")

# --- auth refusals before login ------------------------------------------------
refusals_before_login() {
    check_denied "push without login is refused" docker push "$IMG"
    check_denied "login with a wrong password is refused" \
        sh -c "printf wrong-password | /usr/bin/docker login -u '$CONF_ADMIN_USER' --password-stdin '$REG'"
    check "login as admin" \
        sh -c "printf '%s' '$CONF_ADMIN_PASS' | /usr/bin/docker login -u '$CONF_ADMIN_USER' --password-stdin '$REG'"
    # docker login asks /token for offline_token=true and keeps the refresh
    # token as its identity token; later pushes trade it in by POST /token.
    equal "docker login keeps a refresh token as its identity token" yes \
        "$(jq -r --arg r "$REG" 'if (.auths[$r].identitytoken // "") != "" then "yes" else "no" end' "$DOCKER_CONFIG/config.json")"
}
auth_only "login checks" refusals_before_login

# --- push, check what the registry holds, pull back ----------------------------
require "push $IMG" docker push "$IMG"
PUSHED=$(grep -o 'digest: sha256:[0-9a-f]*' "$CONF_LOG" | tail -n 1 | cut -d' ' -f2)
equal "push reports a manifest digest" "sha256" "${PUSHED%%:*}"

check "registry serves the pushed manifest, config and both layers" \
    verify_remote conf/docker-img v1 --digest "$PUSHED" --config "$IMAGE_ID" --diff-ids "$DIFF_IDS"
check "registry serves the manifest by digest" verify_remote conf/docker-img "$PUSHED" --digest "$PUSHED"

run docker rmi "$IMG" conf-docker-base:1
check_fails "the image is gone locally" docker image inspect "$IMG"
require "pull it back" docker pull "$IMG"
equal "pulled repo digest equals pushed digest" "$REG/conf/docker-img@$PUSHED" \
    "$(docker inspect --format '{{index .RepoDigests 0}}' "$IMG")"
equal "pulled image ID equals the original" "$IMAGE_ID" "$(docker inspect --format '{{.Id}}' "$IMG")"
equal "pulled layers equal the original" "$DIFF_IDS" "$(docker inspect --format '{{join .RootFS.Layers ","}}' "$IMG")"

# Pushing the same image into a sibling repository mounts the layers from the
# first one (cross-repository mount) instead of uploading them again.
run docker tag "$IMG" "$REG/conf/docker-mount:v1"
check "push to a second repository" docker push "$REG/conf/docker-mount:v1"
check "the second push mounts the layers from the first" \
    grep -q "Mounted from conf/docker-img" "$CONF_LOG"
run docker rmi "$REG/conf/docker-mount:v1"

# Pull by digest too (the path `docker pull name@sha256:…` takes).
run docker rmi "$IMG"
check "pull by digest" docker pull "$REG/conf/docker-img@$PUSHED"

# --- as nobody, then as an ordinary user --------------------------------------
refusals_for_others() {
    run docker logout "$REG"
    run docker rmi "$REG/conf/docker-img@$PUSHED"
    check_denied "anonymous pull of a private image is refused" docker pull "$IMG"

    check "login as an ordinary user" \
        sh -c "printf '%s' '$CONF_USER_PASS' | /usr/bin/docker login -u '$CONF_USER' --password-stdin '$REG'"
    check_denied "user's pull from another's private collection is refused" docker pull "$IMG"
    run docker import base.tar "$REG/conf/docker-user:v1"
    local started=$SECONDS
    check_denied "user's push into another's collection is refused" docker push "$REG/conf/docker-user:v1"
    # docker retries an upload 5 times (about 50 s) unless the error is one it
    # knows not to retry; a 403 DENIED is meant to stop it at once (DESIGN §4).
    local took=$((SECONDS - started))
    if [ "$took" -lt 10 ]; then
        pass "that refusal stops docker at once (${took} s)"
    else
        # docker 20.10 turns an error with a null detail and the code's default
        # message into a bare ErrorCode, which its retry filter does not match.
        printf '\ndocker retried the refused push for %s s\n' "$took" >>"$CONF_LOG"
        fail "that refusal stops docker at once (it took ${took} s: docker retried the upload)"
    fi
}
auth_only "anonymous and ordinary-user refusals" refusals_for_others

# A new collection becomes the user's own: push, then pull back.
OWN=$REG/$CONF_USER-docker/img:v1
run docker import base.tar "$OWN"
check "user's push into a new collection" docker push "$OWN" || exit 1
OWN_DIGEST=$(grep -o 'digest: sha256:[0-9a-f]*' "$CONF_LOG" | tail -n 1 | cut -d' ' -f2)
run docker rmi "$OWN"
check "user pulls back from the own collection" docker pull "$OWN"
equal "user's pulled digest equals pushed" "$REG/$CONF_USER-docker/img@$OWN_DIGEST" \
    "$(docker inspect --format '{{index .RepoDigests 0}}' "$OWN")"
run docker logout "$REG"

# --- API tokens as docker passwords ---------------------------------------------
# new_api_token JSON: create an API token for the ordinary user, print it.
new_api_token() {
    curl -sS -u "$CONF_USER:$CONF_USER_PASS" -H 'Content-Type: application/json' \
        -d "$1" "http://$REG/api/v1/tokens" | tee -a "$CONF_LOG" | jq -er .token
}
api_tokens() {
    local rw ro
    rw=$(new_api_token '{"name":"conformance-docker"}') ||
        { fail "create an API token (POST /api/v1/tokens)"; return; }
    pass "create an API token (POST /api/v1/tokens)"
    check "docker login with an API token" \
        sh -c "printf '%s' '$rw' | /usr/bin/docker login -u '$CONF_USER' --password-stdin '$REG'"
    run docker tag "$OWN" "$REG/$CONF_USER-docker/img:token"
    check "push with an API token login" docker push "$REG/$CONF_USER-docker/img:token"

    ro=$(new_api_token '{"name":"conformance-docker-ro","read_only":true}') ||
        { fail "create a read-only API token"; return; }
    check "docker login with a read-only API token" \
        sh -c "printf '%s' '$ro' | /usr/bin/docker login -u '$CONF_USER' --password-stdin '$REG'"
    run docker rmi "$REG/$CONF_USER-docker/img:token"
    check "pull with a read-only API token" docker pull "$REG/$CONF_USER-docker/img:token"
    run docker tag "$OWN" "$REG/$CONF_USER-docker/img:readonly"
    check_denied "push with a read-only API token is refused" docker push "$REG/$CONF_USER-docker/img:readonly"
    run docker logout "$REG"
}
auth_only "API tokens" api_tokens

# --- a contributor with an API token (DESIGN §3: push yes, delete no) ----------
# status METHOD URL USER:SECRET [SCOPE]: the HTTP status of a registry call made
# with a token fetched for SCOPE with those credentials.
registry_status() {
    local method=$1 url=$2 creds=$3 scope=$4 token
    token=$(curl -sS -u "$creds" "http://$REG/token?service=berth&scope=$scope" | jq -r .token)
    curl -s -o /dev/null -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token" "http://$REG$url"
}
contributor() {
    local coll=$CONF_USER-docker tok
    equal "owner adds a contributor (PUT …/members/users/$CONF_USER2)" 200 "$(curl -s -o /dev/null -w '%{http_code}' \
        -X PUT -u "$CONF_USER:$CONF_USER_PASS" -d '{"role":"contributor"}' \
        "http://$REG/api/v1/collections/$coll/members/users/$CONF_USER2")"
    tok=$(curl -sS -u "$CONF_USER2:$CONF_USER2_PASS" -d '{"name":"docker"}' "http://$REG/api/v1/tokens" | jq -er .token) ||
        { fail "contributor creates an API token"; return; }
    check "contributor's docker login with an API token" \
        sh -c "printf '%s' '$tok' | /usr/bin/docker login -u '$CONF_USER2' --password-stdin '$REG'"
    run docker tag "$OWN" "$REG/$coll/img:contrib"
    check "contributor pushes into the owner's collection" docker push "$REG/$coll/img:contrib"
    equal "contributor's registry DELETE of the tag is refused" 403 \
        "$(registry_status DELETE "/v2/$coll/img/manifests/contrib" "$CONF_USER2:$tok" "repository:$coll/img:delete")"
    equal "contributor's repository DELETE through the API is refused" 403 "$(curl -s -o /dev/null -w '%{http_code}' \
        -X DELETE -H "Authorization: Bearer $tok" "http://$REG/api/v1/repositories/$coll/img")"
    equal "owner's registry DELETE of the tag is accepted" 202 \
        "$(registry_status DELETE "/v2/$coll/img/manifests/contrib" "$CONF_USER:$CONF_USER_PASS" "repository:$coll/img:delete")"
    run docker rmi "$REG/$coll/img:contrib"
    check_fails "the deleted tag no longer pulls" docker pull "$REG/$coll/img:contrib"
    run docker logout "$REG"
}
auth_only "contributor" contributor
exit 0
