#!/usr/bin/env bash
# conformance/tls.sh: docker, podman and skopeo against berth serving TLS itself.
#
#   bash conformance/tls.sh
#
# Makes a CA and a certificate for this host's address with openssl, starts berth with
# tls.cert / tls.key, and installs the CA the way each client expects it:
#   docker   /etc/docker/certs.d/HOST:PORT/ca.crt (read by the private dockerd started
#            here; the directory is removed at the end)
#   podman, skopeo   --cert-dir / --src-cert-dir / --dest-cert-dir DIR with DIR/ca.crt
# Each client is first shown to refuse the certificate without the CA, so a pass means
# it verified the chain. docker treats every loopback registry as insecure (and then skips
# verification), so berth listens on a non-loopback address of this host when there is
# one. Prints one line per check and "N passed, N failed"; exits non-zero on a failure.
# Everything started here is stopped by PID.
set -euo pipefail

CONF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$CONF_DIR")
export CONF_DIR
# shellcheck source=conformance/lib.sh
source "$CONF_DIR/lib.sh"

TMP=$(mktemp -d /tmp/berth-tls.XXXXXX)
export CONF_RESULTS=$TMP/results CONF_CLIENT=tls CONF_WORK=$TMP/work
mkdir -p "$CONF_WORK"
: >"$CONF_RESULTS"
PIDS=()
DOCKER_CERTS=""

cleanup() {
    local rc=$? i pid
    set +e
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    [ -n "$DOCKER_CERTS" ] && rm -rf "$DOCKER_CERTS"
    if [ "$rc" = 0 ] && [ "${CONF_KEEP:-0}" != 1 ]; then rm -rf "$TMP"; else echo "kept $TMP" >&2; fi
}
trap cleanup EXIT

# --- address, CA, certificate ---------------------------------------------------------
HOST=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -n 1 || true)
if [ -z "$HOST" ]; then
    HOST=127.0.0.1
    log "no non-loopback IPv4 address: docker will not verify the certificate (loopback is insecure to it)"
fi
PORT=$(free_port)
REG=$HOST:$PORT
PASS=$(python3 -c 'import secrets;print(secrets.token_urlsafe(18))')

C=$TMP/certs
mkdir -p "$C"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=berth conformance CA" -keyout "$C/ca.key" -out "$C/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$HOST" \
    -keyout "$C/server.key" -out "$C/server.csr" 2>/dev/null
printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$HOST" >"$C/ext"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 2 \
    -extfile "$C/ext" -out "$C/server.crt" 2>/dev/null
# Clients' CA directory: ca.crt only (a *.key there would be taken for a client key).
mkdir -p "$TMP/trust" && cp "$C/ca.crt" "$TMP/trust/ca.crt"

# --- berth -------------------------------------------------------------------------
log "building berth"
(cd "$ROOT" && cargo build -q --locked --bin berth)
bin=${CARGO_TARGET_DIR:-$ROOT/target}/debug/berth
BERTH_LISTEN=$REG BERTH_PUBLIC_URL=https://$REG BERTH_DATA_DIR=$TMP/berth-data \
    BERTH_INITIAL_ADMIN_PASSWORD=$PASS BERTH_TLS__CERT=$C/server.crt BERTH_TLS__KEY=$C/server.key \
    "$bin" serve >"$TMP/berth.log" 2>&1 &
PIDS+=($!)
log "berth pid $! on https://$REG"
wait_until 60 curl -sf --cacert "$C/ca.crt" "https://$REG/healthz" ||
    { log "berth did not answer on https"; tail -n 30 "$TMP/berth.log" >&2; exit 1; }
check "curl verifies berth's certificate against the CA" curl -sf --cacert "$C/ca.crt" "https://$REG/readyz"

# A one-file image, as a tar for `import`.
mkdir -p "$CONF_WORK/rootfs"
python3 -c 'import random,sys;sys.stdout.buffer.write(random.Random("tls").randbytes(300000))' >"$CONF_WORK/rootfs/data.bin"
tar -C "$CONF_WORK/rootfs" -cf "$CONF_WORK/image.tar" .

# --- docker ------------------------------------------------------------------------
start_dockerd
D=$TMP/docker
export DOCKER_CONFIG=$D/config
docker_login() { printf '%s' "$PASS" | docker login -u admin --password-stdin "$REG"; }
if [ "$HOST" != 127.0.0.1 ]; then
    check_fails_like 'x509|certificate' "docker refuses the certificate before the CA is installed" docker_login
fi
DOCKER_CERTS=/etc/docker/certs.d/$REG
mkdir -p "$DOCKER_CERTS" && cp "$C/ca.crt" "$DOCKER_CERTS/ca.crt"
if check "docker login over TLS (CA in certs.d)" docker_login; then
    IMG=$REG/conf/tls-docker:v1
    check "docker import" docker import "$CONF_WORK/image.tar" "$IMG"
    check "docker push over TLS" docker push "$IMG"
    check "docker rmi" docker rmi "$IMG"
    check "docker pull over TLS" docker pull "$IMG"
fi

# podman and skopeo also read /etc/docker/certs.d and docker's login: take both away.
rm -rf "$DOCKER_CERTS" && DOCKER_CERTS=""
unset DOCKER_CONFIG

# --- podman ------------------------------------------------------------------------
W=$CONF_WORK/podman
podman() {
    command podman --root "$W/store" --runroot "$W/run" --tmpdir "$W/tmp" --storage-driver vfs \
        --cgroup-manager=cgroupfs --events-backend=file "$@"
}
mkdir -p "$W/tmp"
echo '{}' >"$W/auth.json"
podman_login() { printf '%s' "$PASS" | podman login --authfile "$W/auth.json" -u admin --password-stdin "$@" "$REG"; }
check_fails_like 'x509|certificate' "podman refuses the certificate without --cert-dir" podman_login
if check "podman login --cert-dir" podman_login --cert-dir "$TMP/trust"; then
    IMG=$REG/conf/tls-podman:v1
    check "podman import" podman import "$CONF_WORK/image.tar" "$IMG"
    check "podman push --cert-dir" podman push --authfile "$W/auth.json" --cert-dir "$TMP/trust" "$IMG"
    check "podman rmi" podman rmi "$IMG"
    check "podman pull --cert-dir" podman pull --authfile "$W/auth.json" --cert-dir "$TMP/trust" "$IMG"
fi

# --- skopeo ------------------------------------------------------------------------
CREDS=admin:$PASS
check_fails_like 'x509|certificate' "skopeo refuses the certificate without --cert-dir" \
    skopeo inspect --creds "$CREDS" "docker://$REG/conf/tls-podman:v1"
check "skopeo inspect --cert-dir" skopeo inspect --cert-dir "$TMP/trust" --creds "$CREDS" "docker://$REG/conf/tls-podman:v1"
check "skopeo copy registry to registry (--src-cert-dir, --dest-cert-dir)" \
    skopeo copy --src-cert-dir "$TMP/trust" --dest-cert-dir "$TMP/trust" --src-creds "$CREDS" --dest-creds "$CREDS" \
    "docker://$REG/conf/tls-podman:v1" "docker://$REG/conf/tls-skopeo:v1"
check "skopeo list-tags of the copy" skopeo list-tags --cert-dir "$TMP/trust" --creds "$CREDS" "docker://$REG/conf/tls-skopeo"

# --- results -----------------------------------------------------------------------
passed=$(grep -c '^PASS ' "$CONF_RESULTS" || true)
failed=$(grep -c '^FAIL ' "$CONF_RESULTS" || true)
echo
echo "TLS conformance (berth at https://$REG):"
sed 's/^/  /' "$CONF_RESULTS"
if [ "$failed" != 0 ]; then
    echo "last lines of the berth log:"
    tail -n 30 "$TMP/berth.log" | sed 's/^/  | /'
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
