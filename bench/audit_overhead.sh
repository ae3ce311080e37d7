#!/usr/bin/env bash
# Benchmark (not a test): throughput of a cheap operation (get key) with the audit file sink (fsync always and
# interval) and with auditing off, on this machine, release build, loopback.
#
#   cargo build --release -p coffer-cli -p coffer-testkit && bench/audit_overhead.sh [seconds] [clients]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release"
SECS="${1:-5}"
CLIENTS="${2:-16}"
PY="$ROOT/.venv/bin/python"

run() {
    local name="$1" toml="$2" dir port pid
    dir="$(mktemp -d)"
    port=$((20000 + RANDOM % 20000))
    printf '%s\n' "$toml" > "$dir/coffer.toml"
    "$BIN/coffer" serve --config "$dir/coffer.toml" --data-dir "$dir/data" --listen "127.0.0.1:$port" --dev \
        >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do [[ -f "$dir/data/admin-credentials.json" ]] && break; sleep 0.1; done
    sleep 0.5
    "$PY" - "$dir/data/admin-credentials.json" <<'PYEOF'
import json, sys, uuid, requests
c = json.load(open(sys.argv[1]))
tok = requests.post(f"{c['url']}/{c['tenant_id']}/oauth2/v2.0/token", verify=c["ca_cert"], data={
    "grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"],
    "scope": f"{c['url']}/.default"}).json()["access_token"]
r = requests.put(f"{c['url']}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}?api-version=7.6",
                 json={"properties": {"principalId": c["object_id"],
                                      "roleDefinitionId": "21dbd100-6940-42c2-9190-5d6cb909625b"}},
                 headers={"Authorization": f"Bearer {tok}"}, verify=c["ca_cert"])
assert r.status_code == 201, r.text
PYEOF
    printf '%-28s ' "$name"
    "$BIN/coffer-loadgen" --creds "$dir/data/admin-credentials.json" --op get-key --concurrency "$CLIENTS" \
        --seconds "$SECS" | tail -1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    if [[ -d "$dir/data/audit" ]]; then
        printf '%-28s %s records on disk\n' "" "$(cat "$dir"/data/audit/*.jsonl | wc -l)"
    fi
    rm -rf "$dir"
}

# Throttling off: the load generator is one principal, and the point is the cost of auditing.
T=$'[throttling]\nenabled = false\n'
run "audit off" "$T"$'[audit]\nfail_closed = false\n[audit.file]\nenabled = false'
run "audit file, fsync interval" "$T"$'[audit.file]\nfsync = "interval"'
run "audit file, fsync always" "$T"$'[audit.file]\nfsync = "always"'
run "audit off (again)" "$T"$'[audit]\nfail_closed = false\n[audit.file]\nenabled = false'
