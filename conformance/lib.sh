# shellcheck shell=bash
# conformance/lib.sh: helpers shared by run.sh and every client script.
#
# Sourced, never executed. A client script runs as its own bash process with
# these variables from run.sh:
#   CONF_DIR        this directory
#   CONF_REGISTRY   host:port of the registry under test (plain HTTP, loopback)
#   CONF_AUTH       1 if the registry enforces token auth (berth), 0 if not
#                   (Distribution's reference server, used to check the scripts)
#   CONF_PRIVATE    1 if the admin's collection `conf` is private (anonymous pulls fail);
#                   users' own collections are public (berth's default)
#   CONF_ADMIN_USER / CONF_ADMIN_PASS   superuser credentials
#   CONF_USER / CONF_USER_PASS          an ordinary user's credentials
#   CONF_CLIENT     short client name, used in results and repository names
#   CONF_WORK       an empty scratch directory for this client
#   CONF_RESULTS    file collecting one "PASS|FAIL|SKIP <client>: <what>" a line
#   CONF_PYTHON     a python with `oras` and `requests` installed
# plus DOCKER_HOST (docker) and CONF_CONTAINERD_SOCK (ctr).

CONF_LOG="${CONF_WORK:-/tmp}/commands.log"

log() { printf '[%s] %s\n' "${CONF_CLIENT:-run}" "$*" >&2; }

# free_port: a port the kernel just handed out on 127.0.0.1.
free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# auth_files: for the containers/image tools (podman, buildah, skopeo): AUTH, an auth
# file that logins write to, an empty one at $CONF_WORK/empty-auth.json for anonymous
# calls, and the flag arrays R (logged in) and ANON (plain HTTP on loopback).
auth_files() {
    AUTH=$CONF_WORK/auth.json
    echo '{}' >"$AUTH"
    echo '{}' >"$CONF_WORK/empty-auth.json"
    R=(--tls-verify=false --authfile "$AUTH")
    ANON=(--tls-verify=false --authfile "$CONF_WORK/empty-auth.json")
}

# --- berth under test (run.sh, official.sh) -----------------------------------

# stop_pid PID: TERM, then KILL after 10 s.
stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    # dockerd stops its own containerd on TERM; give both time to do it.
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# build_berth: build berth (debug, as `cargo test` does) and set BERTH_BIN. Uses ROOT
# (the repository) and CARGO_TARGET_DIR.
build_berth() {
    log "building berth"
    (cd "$ROOT" && cargo build --locked)
    local target=${CARGO_TARGET_DIR:-target}
    case $target in /*) ;; *) target=$ROOT/$target ;; esac
    BERTH_BIN=$target/debug/berth
    [ -x "$BERTH_BIN" ] || { log "no binary at $BERTH_BIN"; exit 1; }
}

# launch_berth: start `berth serve` on CONF_REGISTRY with a fresh data dir under TMP, the
# superuser `admin` with CONF_ADMIN_PASS, blobs in S3 (moto) with CONF_STORAGE=s3 and
# metadata in PostgreSQL with CONF_DATABASE=postgres; wait until it answers. Sets BERTH_LOG.
launch_berth() {
    [ "${CONF_STORAGE:-filesystem}" = s3 ] && start_moto
    [ "${CONF_DATABASE:-sqlite}" = postgres ] && start_postgres
    export BERTH_LISTEN=$CONF_REGISTRY BERTH_PUBLIC_URL=http://$CONF_REGISTRY \
        BERTH_DATA_DIR=$TMP/berth-data BERTH_INITIAL_ADMIN_PASSWORD=$CONF_ADMIN_PASS
    NO_COLOR=1 RUST_LOG=${RUST_LOG:-info,berth=debug,tower_http=debug} "$BERTH_BIN" serve >"$TMP/berth.log" 2>&1 &
    PIDS+=($!)
    BERTH_LOG=$TMP/berth.log
    log "berth pid $! on $CONF_REGISTRY, log $BERTH_LOG"
    if ! wait_until 60 berth_ready; then
        log "berth did not answer 401 on /v2/ within 60 s"; tail -n 30 "$BERTH_LOG" >&2; exit 1
    fi
}

berth_ready() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$CONF_REGISTRY/v2/")" = 401 ]
}

# --- services berth runs on (run.sh, official.sh) ------------------------------
# Both use TMP (a scratch dir), PIDS (an array of started PIDs the caller stops) and
# VENV (the venv with moto_server), and export the BERTH_* settings that point berth there.

# start_moto: an S3 server for berth's blobs, and the settings that point berth at it.
# A private dockerd under $TMP/docker (its pid in PIDS); exports DOCKER_HOST.
start_dockerd() {
    local d=$TMP/docker
    mkdir -p "$d"
    echo '{}' >"$d/daemon.json"
    # No networking and vfs: nothing here runs a container, it only stores images.
    dockerd --config-file "$d/daemon.json" --iptables=false --ip6tables=false --bridge=none \
        --storage-driver=vfs --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" \
        --host "unix://$d/sock" >"$d/dockerd.log" 2>&1 &
    PIDS+=($!)
    export DOCKER_HOST=unix://$d/sock
    log "dockerd pid $! on $DOCKER_HOST"
    wait_until 60 /usr/bin/docker version || { log "dockerd did not start"; tail -n 30 "$d/dockerd.log" >&2; exit 1; }
}

start_moto() {
    local port; port=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$TMP/moto.log" 2>&1 &
    PIDS+=($!)
    log "moto_server pid $! on 127.0.0.1:$port"
    wait_until 30 curl -s -o /dev/null "http://127.0.0.1:$port/" || { log "moto_server did not start"; exit 1; }
    curl -sf -X PUT "http://127.0.0.1:$port/berth" >/dev/null || { log "creating the bucket failed"; exit 1; }
    export BERTH_STORAGE__KIND=s3 BERTH_STORAGE__S3__BUCKET=berth BERTH_STORAGE__S3__PREFIX=conformance \
        BERTH_STORAGE__S3__ENDPOINT=http://127.0.0.1:$port BERTH_STORAGE__S3__ALLOW_HTTP=true \
        BERTH_STORAGE__S3__ACCESS_KEY_ID=test BERTH_STORAGE__S3__SECRET_ACCESS_KEY=test
    # CONF_S3_REDIRECT=1: blob GETs answer 307 to presigned moto URLs the clients follow.
    if [ "${CONF_S3_REDIRECT:-0}" = 1 ]; then export BERTH_STORAGE__S3__REDIRECT=true; fi
}

# start_postgres: a PostgreSQL for berth's metadata, stopped with everything else.
start_postgres() {
    local bin port dir=$TMP/pg
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$bin/initdb" ] || { log "PostgreSQL is not installed (apt-get install postgresql)"; exit 1; }
    port=$(free_port)
    # postgres must be able to reach its directory: traverse (not list) the temp dir.
    chmod o+x "$TMP"
    mkdir -p "$dir" && chown postgres:postgres "$dir"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >"$TMP/pg-init.log" 2>&1 ||
        { log "initdb failed"; cat "$TMP/pg-init.log" >&2; exit 1; }
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null ||
        { log "pg_ctl start failed"; cat "$dir/log" >&2; exit 1; }
    PIDS+=("$(head -n 1 "$dir/data/postmaster.pid")")
    log "postgres pid ${PIDS[-1]} on 127.0.0.1:$port"
    export BERTH_DATABASE__URL=postgres://postgres@127.0.0.1:$port/postgres
}

# --- results -----------------------------------------------------------------

_record() { printf '%s %s: %s\n' "$1" "${CONF_CLIENT:-run}" "$2" >>"$CONF_RESULTS"; }
pass() { _record PASS "$*"; log "PASS $*"; }
skip() { _record SKIP "$*"; log "SKIP $*"; }
fail() {
    _record FAIL "$*"
    log "FAIL $*"
    # The tail of the command log usually says why; CI output is all we get.
    if [ -s "$CONF_LOG" ]; then
        tail -n 25 "$CONF_LOG" | sed 's/^/    | /' >&2
    fi
}

# run CMD...: run a command, appending its output to the client's command log.
run() {
    printf '\n[%s] $ %s\n' "$(date +%T)" "$*" >>"$CONF_LOG"
    "$@" >>"$CONF_LOG" 2>&1
}

# check DESC CMD...: CMD must succeed.
check() {
    local desc=$1; shift
    if run "$@"; then pass "$desc"; else fail "$desc (exit $?)"; return 1; fi
}

# check_fails DESC CMD...: CMD must fail (a refused login, push or pull).
check_fails() {
    local desc=$1; shift
    if run "$@"; then fail "$desc (the command succeeded)"; return 1; else pass "$desc"; fi
}

# check_denied DESC CMD...: CMD must fail, and say it was refused access; a
# failure for another reason (no such local image, a crash) is not a refusal.
DENIED_RE='denied|unauthori[sz]ed|authentication required|forbidden|invalid username|insufficient_scope|\b40[13]\b'
check_denied() { check_fails_like "$DENIED_RE" "$@"; }

# check_fails_like REGEX DESC CMD...: CMD must fail with output matching REGEX.
check_fails_like() {
    local re=$1 desc=$2; shift 2
    local mark; mark=$(wc -l <"$CONF_LOG" 2>/dev/null || echo 0)
    if run "$@"; then fail "$desc (the command succeeded)"; return 1; fi
    if tail -n +"$((mark + 1))" "$CONF_LOG" | grep -Eiq "$re"; then
        pass "$desc"
    else
        fail "$desc (it failed, but its output does not match /$re/)"
        return 1
    fi
}

# require DESC CMD...: like check, but a failure ends the client script, since
# every later step depends on this one.
require() {
    check "$@" || exit 1
}

# auth_only DESC FN ARGS...: run an auth-related step only against a registry
# that enforces auth; record a skip otherwise.
auth_only() {
    local desc=$1; shift
    if [ "${CONF_AUTH:-0}" = 1 ]; then "$@"; else skip "$desc (registry without auth)"; fi
}

# private_only DESC FN ARGS...: like auth_only, for checks that need the
# pushed repositories to be private.
private_only() {
    local desc=$1; shift
    if [ "${CONF_AUTH:-0}" = 1 ] && [ "${CONF_PRIVATE:-0}" = 1 ]; then "$@"; else skip "$desc (repositories not private)"; fi
}

# equal DESC WANT GOT: record whether two values match.
equal() {
    if [ -n "$2" ] && [ "$2" = "$3" ]; then
        pass "$1"
    else
        printf '\nmismatch for %s:\n  want: %s\n  got:  %s\n' "$1" "$2" "$3" >>"$CONF_LOG"
        fail "$1 (want '$2', got '$3')"
        return 1
    fi
}

# --- image helpers -----------------------------------------------------------

# mkimage DIR TAG SEED: write a two-layer OCI image layout at DIR, tagged TAG;
# prints a JSON summary (manifest/config digests, layer digests, diff_ids).
mkimage() {
    python3 "$CONF_DIR/mkimage.py" "$@"
}

# verify_remote REPO REF [ARGS...]: fetch REPO:REF over the registry API with
# the admin's credentials (anonymous against a registry without auth), check
# every blob's digest, and compare with the expectations in ARGS
# (--digest, --config, --diff-ids, --layers, --min-layers).
verify_remote() {
    local repo=$1 ref=$2; shift 2
    local creds=()
    [ "${CONF_AUTH:-0}" = 1 ] && creds=(--user "$CONF_ADMIN_USER" --password "$CONF_ADMIN_PASS")
    python3 "$CONF_DIR/verify.py" --registry "$CONF_REGISTRY" --repo "$repo" --ref "$ref" \
        "${creds[@]}" "$@"
}

# json FILE EXPR: read a value from a JSON file with jq.
json() { jq -r "$2" "$1"; }

# digest_of FILE: "sha256:<hex>" of a file.
digest_of() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"; }
