#!/usr/bin/env bash
# The Azure SDK for Rust against the real binary (issue 14): builds this crate (the official azure_identity and
# azure_security_keyvault_keys crates; a workspace of its own, with its own Cargo.lock), starts `coffer serve --dev`
# on a free port in a temporary data directory, gives the bootstrap principal Managed HSM Crypto User at `/`
# (through the REST API, as the Python harness does), then runs the program twice: with the AD FS tenant alias
# `adfs`, and with the instance's tenant id. Each run authenticates with ClientSecretCredential, creates an EC P-256
# key, signs a SHA-256 digest with ES256 and verifies it (src/main.rs). Stops the server; non-zero on any failure.
#
#   tests/interop/rust-sdk/run.sh            (from anywhere; ./scripts/test calls it)
#
# COFFER_BIN: the server binary (default ${CARGO_TARGET_DIR:-target}/debug/coffer of the main workspace, which must
# be built). The program is built into $CARGO_TARGET_DIR when set, else tests/interop/rust-sdk/target.
# Server log: ${COFFER_CONFORMANCE_LOGDIR:-target/conformance-logs}/rust-sdk.log. Needs cargo and python3 (stdlib).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
COFFER_BIN="${COFFER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/coffer}"
[[ "$COFFER_BIN" = /* ]] || COFFER_BIN="$ROOT/$COFFER_BIN"
SDK_TARGET="${CARGO_TARGET_DIR:-$HERE/target}"
PY="${COFFER_INTEROP_PYTHON:-python3}"
CRYPTO_USER=21dbd100-6940-42c2-9190-5d6cb909625b

if [[ ! -x "$COFFER_BIN" ]]; then
    echo "rust-sdk: coffer binary not found at $COFFER_BIN (set COFFER_BIN or run \`cargo build -p coffer-cli\`)" >&2
    exit 1
fi

echo "==== build (Azure SDK for Rust program, $HERE/Cargo.lock)"
CARGO_TARGET_DIR="$SDK_TARGET" cargo build --quiet --locked --manifest-path "$HERE/Cargo.toml"
PROGRAM="$SDK_TARGET/debug/coffer-rust-sdk-interop"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/coffer-rust-sdk.XXXXXX")"
LOG_DIR="${COFFER_CONFORMANCE_LOGDIR:-$ROOT/target/conformance-logs}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/rust-sdk.log"
SERVER_PID=""
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID" i
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "rust-sdk: coffer did not exit within 30s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}
cleanup() {
    local rc=$?
    stop_server || true
    if [[ $rc -ne 0 && -f "$LOG" ]]; then
        echo "---- last lines of $LOG" >&2
        tail -n 40 "$LOG" >&2
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
echo "==== coffer serve --dev on 127.0.0.1:$PORT"
(cd "$WORK" && RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 exec "$COFFER_BIN" serve --data-dir "$WORK/data" \
    --listen "127.0.0.1:$PORT" --dev </dev/null >"$LOG" 2>&1) &
SERVER_PID=$!

# Waits for the credentials file and /healthz, assigns Crypto User at `/` to the bootstrap principal, and prints the
# fields the program needs, one a line (the secret goes to the program's environment, never to the output).
mapfile -t CREDS < <("$PY" - "$WORK/data/admin-credentials.json" "$PORT" "$SERVER_PID" "$CRYPTO_USER" <<'EOF'
import json, ssl, sys, time, urllib.error, urllib.parse, urllib.request, uuid

creds_path, port, pid, role = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
base = f"https://127.0.0.1:{port}"
deadline, last = time.monotonic() + 180, None
while True:
    try:
        with open(f"/proc/{pid}/stat") as f:
            exited = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        exited = True
    if exited:
        sys.exit("rust-sdk: coffer exited during start-up")
    if time.monotonic() > deadline:
        sys.exit(f"rust-sdk: coffer not ready after 180s (last: {last})")
    try:
        creds = json.load(open(creds_path))
        tls = ssl.create_default_context(cafile=creds["ca_cert"])
        with urllib.request.urlopen(f"{base}/healthz", context=tls, timeout=5) as r:
            if r.status == 200:
                break
    except (OSError, ValueError, KeyError) as e:
        last = repr(e)
    time.sleep(0.2)

form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": creds["client_id"],
                               "client_secret": creds["client_secret"], "scope": f"{creds['url']}/.default"})
req = urllib.request.Request(f"{base}/{creds['tenant_id']}/oauth2/v2.0/token", data=form.encode(), method="POST")
with urllib.request.urlopen(req, context=tls, timeout=30) as r:
    token = json.load(r)["access_token"]
name = uuid.uuid5(uuid.NAMESPACE_URL, f"{creds['object_id']}/{role}")
body = {"properties": {"principalId": creds["object_id"],
                       "roleDefinitionId": f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"}}
req = urllib.request.Request(f"{base}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=7.6",
                             data=json.dumps(body).encode(), method="PUT",
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=tls, timeout=30) as r:
        status = r.status
except urllib.error.HTTPError as e:
    sys.exit(f"rust-sdk: assigning Crypto User: {e.code} {e.read()[:500]!r}")
if status != 201:
    sys.exit(f"rust-sdk: assigning Crypto User: {status}")
print(f"rust-sdk: Managed HSM Crypto User assigned to {creds['object_id']} at /", file=sys.stderr)
for field in ("url", "authority", "tenant_id", "client_id", "client_secret", "ca_cert"):
    print(creds[field])
EOF
)
if [[ ${#CREDS[@]} -ne 6 ]]; then
    echo "rust-sdk: could not start coffer and assign the role" >&2
    exit 1
fi
URL="${CREDS[0]}" AUTHORITY="${CREDS[1]}" TENANT_ID="${CREDS[2]}"

for tenant in adfs "$TENANT_ID"; do
    echo "==== Azure SDK for Rust, tenant $tenant"
    COFFER_URL="$URL" COFFER_AUTHORITY="$AUTHORITY" COFFER_TENANT="$tenant" COFFER_CLIENT_ID="${CREDS[3]}" \
        COFFER_CLIENT_SECRET="${CREDS[4]}" COFFER_CA_FILE="${CREDS[5]}" "$PROGRAM"
done

stop_server
echo "rust-sdk: all passed"
