#!/usr/bin/env bash
# conformance/run.sh: drive real clients against a freshly started berth.
#
#   bash conformance/run.sh [CLIENT...]      # default: all of them
#
# Builds berth, starts it on a free loopback port with a new data dir on berth's
# default settings (the admin's collection `conf` made private, so anonymous pulls
# can be checked), creates ordinary users, starts a private dockerd and containerd when their clients are chosen,
# then runs conformance/clients/<client>.{sh,py}, one process each. Every check
# is one line in the results; the last line is "N passed, N failed". Exits
# non-zero if any check failed. Everything started here is stopped by PID.
#
# Environment:
#   CONF_TARGET=reference  run against Distribution's reference server
#                          (docker-registry, no auth) instead of berth, to
#                          check the scripts themselves; auth checks are skipped
#   CONF_KEEP=1            keep the temp dir (logs, stores) even on success
#   CONF_STORAGE=s3        berth keeps blobs in S3: a moto_server (from the venv) is
#                          started on a free port with a fresh bucket
#   CONF_S3_REDIRECT=1     with CONF_STORAGE=s3: blob GETs answer 307 to presigned URLs
#                          on moto (storage.s3.redirect), and the run checks that the
#                          clients' pulls went through such redirects
#   CONF_DATABASE=postgres berth keeps metadata in a PostgreSQL started here (initdb +
#                          pg_ctl as user postgres, on a free loopback port)
#   BERTH_VENV             venv with oras+requests (default /var/cache/berth-venv)
#   CARGO_TARGET_DIR       where cargo puts the berth binary
set -euo pipefail

CONF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$CONF_DIR")
export CONF_DIR
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

ALL_CLIENTS=(docker podman skopeo buildah ctr oras)
if [ $# -gt 0 ]; then CLIENTS=("$@"); else CLIENTS=("${ALL_CLIENTS[@]}"); fi
TARGET=${CONF_TARGET:-berth}
VENV=${BERTH_VENV:-/var/cache/berth-venv}

TMP=$(mktemp -d /tmp/berth-conf.XXXXXX)
export CONF_RESULTS=$TMP/results
: >"$CONF_RESULTS"
PIDS=()      # started processes, stopped in reverse order
KEEP=${CONF_KEEP:-0}

cleanup() {
    local rc=$?
    set +e
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    # Stores may leave mounts behind (overlay/shm); never rm -rf through one.
    grep -o " $TMP/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then
        log "logs and stores kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has_client() {
    local c
    for c in "${CLIENTS[@]}"; do [ "$c" = "$1" ] && return 0; done
    return 1
}

# --- the registry under test -------------------------------------------------

start_berth() {
    build_berth
    local bin=$BERTH_BIN
    CONF_REGISTRY=127.0.0.1:$(free_port)
    CONF_ADMIN_USER="admin"
    CONF_ADMIN_PASS=$(python3 -c 'import secrets;print(secrets.token_urlsafe(18))')
    CONF_USER=alice
    CONF_USER_PASS=$(python3 -c 'import secrets;print(secrets.token_urlsafe(18))')
    CONF_USER2=bob
    CONF_USER2_PASS=$(python3 -c 'import secrets;print(secrets.token_urlsafe(18))')
    CONF_AUTH=1
    CONF_PRIVATE=1
    # berth's own defaults (new collections public); only the admin's `conf` collection
    # is made private below, so anonymous and other users can be refused there.
    launch_berth
    # Users are created once the server has made the superuser (first start).
    printf '%s' "$CONF_USER_PASS" | "$bin" user create "$CONF_USER" --role user --password-stdin \
        >>"$TMP/berth-cli.log" 2>&1 || { log "berth user create failed"; cat "$TMP/berth-cli.log" >&2; exit 1; }
    printf '%s' "$CONF_USER2_PASS" | "$bin" user create "$CONF_USER2" --role user --password-stdin \
        >>"$TMP/berth-cli.log" 2>&1 || { log "berth user create failed"; cat "$TMP/berth-cli.log" >&2; exit 1; }
    "$bin" collection create conf --owner "$CONF_ADMIN_USER" --private >>"$TMP/berth-cli.log" 2>&1 ||
        { log "berth collection create failed"; cat "$TMP/berth-cli.log" >&2; exit 1; }
}

start_reference() {
    local port; port=$(free_port)
    CONF_REGISTRY=127.0.0.1:$port
    CONF_ADMIN_USER=admin CONF_ADMIN_PASS=unused CONF_USER=alice CONF_USER_PASS=unused
    CONF_USER2=bob CONF_USER2_PASS=unused
    CONF_AUTH=0
    CONF_PRIVATE=0
    cat >"$TMP/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $TMP/registry-data
  delete:
    enabled: true
http:
  addr: $CONF_REGISTRY
EOF
    docker-registry serve "$TMP/registry.yml" >"$TMP/registry.log" 2>&1 &
    PIDS+=($!)
    BERTH_LOG=$TMP/registry.log
    log "reference registry pid $! on $CONF_REGISTRY"
    wait_until 30 curl -sf "http://$CONF_REGISTRY/v2/" || { log "registry did not start"; exit 1; }
}

# --- client daemons ----------------------------------------------------------

start_containerd() {
    local d=$TMP/containerd
    mkdir -p "$d"
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/sock"
[ttrpc]
  address = "$d/sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
    containerd --config "$d/config.toml" >"$d/containerd.log" 2>&1 &
    PIDS+=($!)
    export CONF_CONTAINERD_SOCK=$d/sock
    log "containerd pid $! on $CONF_CONTAINERD_SOCK"
    wait_until 60 ctr --address "$CONF_CONTAINERD_SOCK" version || { log "containerd did not start"; tail -n 30 "$d/containerd.log" >&2; exit 1; }
}

# --- run ---------------------------------------------------------------------

case $TARGET in
    berth) start_berth ;;
    reference) start_reference ;;
    *) log "unknown CONF_TARGET=$TARGET"; exit 2 ;;
esac
export CONF_REGISTRY CONF_AUTH CONF_PRIVATE CONF_ADMIN_USER CONF_ADMIN_PASS CONF_USER CONF_USER_PASS \
    CONF_USER2 CONF_USER2_PASS
export CONF_PYTHON=$VENV/bin/python

has_client docker && start_dockerd
has_client ctr && start_containerd

for c in "${CLIENTS[@]}"; do
    export CONF_CLIENT=$c CONF_WORK=$TMP/clients/$c
    mkdir -p "$CONF_WORK"
    before=$(grep -c "^FAIL $c:" "$CONF_RESULTS" || true)
    log "--- $c"
    started=$SECONDS
    rc=0
    if [ -f "$CONF_DIR/clients/$c.sh" ]; then
        (cd "$CONF_WORK" && timeout 900 bash "$CONF_DIR/clients/$c.sh") || rc=$?
    elif [ -f "$CONF_DIR/clients/$c.py" ]; then
        if [ -x "$CONF_PYTHON" ]; then
            (cd "$CONF_WORK" && timeout 900 "$CONF_PYTHON" "$CONF_DIR/clients/$c.py") || rc=$?
        else
            printf 'FAIL %s: no python at %s (set BERTH_VENV)\n' "$c" "$CONF_PYTHON" >>"$CONF_RESULTS"
        fi
    else
        printf 'FAIL %s: no such client script\n' "$c" >>"$CONF_RESULTS"
    fi
    log "--- $c done in $((SECONDS - started)) s"
    after=$(grep -c "^FAIL $c:" "$CONF_RESULTS" || true)
    if [ "$rc" != 0 ] && [ "$after" = "$before" ]; then
        printf 'FAIL %s: script exited %s\n' "$c" "$rc" >>"$CONF_RESULTS"
    fi
done

# With redirects on, every client's blob downloads must have been 307s it followed: count
# the redirected blob GETs in berth's access log, per client run (the log is shared).
if [ "${CONF_S3_REDIRECT:-0}" = 1 ] && [ "$TARGET" = berth ]; then
    redirects=$(grep 'berth::access' "$BERTH_LOG" | grep 'method=GET' | grep -E 'path=/v2/[^ ]*/blobs/sha' |
        grep -c 'status=307' || true)
    streamed=$(grep 'berth::access' "$BERTH_LOG" | grep 'method=GET' | grep -E 'path=/v2/[^ ]*/blobs/sha' |
        grep -c 'status=200' || true)
    if [ "$redirects" -gt 0 ]; then
        printf 'PASS redirect: %s blob GETs answered 307 to a presigned URL (%s streamed: manifests read as blobs)\n' \
            "$redirects" "$streamed" >>"$CONF_RESULTS"
    else
        printf 'FAIL redirect: no blob GET was redirected\n' >>"$CONF_RESULTS"
    fi
fi

passed=$(grep -c '^PASS ' "$CONF_RESULTS" || true)
failed=$(grep -c '^FAIL ' "$CONF_RESULTS" || true)
skipped=$(grep -c '^SKIP ' "$CONF_RESULTS" || true)
echo
echo "conformance results ($TARGET at $CONF_REGISTRY, storage ${CONF_STORAGE:-filesystem}, database ${CONF_DATABASE:-sqlite}):"
sed 's/^/  /' "$CONF_RESULTS"
if [ "$failed" != 0 ]; then
    echo
    echo "last lines of the registry log ($BERTH_LOG):"
    tail -n 40 "$BERTH_LOG" | sed 's/^/  | /'
fi
echo
if [ "$skipped" != 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
