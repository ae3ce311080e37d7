#!/usr/bin/env bash
# Security-domain interop with the Azure CLI's own code (tests/interop/azure_cli_security_domain/, vendored
# unchanged from the azure-cli 2.91.0 wheel, MIT):
#
#   1. Coffer (examples/sd_fixture.rs) builds a security-domain file for N officer certificates, a transfer key and
#      its own restore blob;
#   2. the CLI's init-recovery and restore-blob functions (tests/interop/sd_interop.py) read Coffer's transfer key
#      and security-domain file and write restore blobs with every ordered choice of quorum officers; the CLI's
#      decoder opens Coffer's restore blob;
#   3. Coffer's open_restore_blob opens every CLI-made blob and compares the items; it refuses the security-domain
#      file itself and a blob opened with another exchange key.
#
#   tests/interop/run.sh            (from anywhere; ./scripts/test can call it)
#
# Needs cargo, and python3 with `cryptography` (the repo's .venv has it; COFFER_INTEROP_PYTHON overrides).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

PY="${COFFER_INTEROP_PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
if ! "$PY" -c 'import cryptography' 2>/dev/null; then
    echo "interop: $PY has no 'cryptography' module (run ./scripts/setup-conformance, or set COFFER_INTEROP_PYTHON)" >&2
    exit 1
fi

cargo build --quiet -p coffer-crypto --example sd_fixture
FIXTURE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/sd_fixture"
fixture() { "$FIXTURE" "$@"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/coffer-sd-interop.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# (officers, quorum): the smallest file, and a larger one with a quorum of 3.
for config in "3 2" "5 3"; do
    read -r n m <<<"$config"
    dir="$WORK/n${n}m${m}"
    echo "==== security domain: $n officers, quorum $m"
    fixture make "$dir" "$n" "$m"
    "$PY" "$ROOT/tests/interop/sd_interop.py" "$dir"
    blobs=("$dir"/cli_blob_*.json)
    fixture open "$dir" "${blobs[@]}"
    fixture open "$dir" "$dir/sd.json" --expect-error "this is a security-domain file, not a restore blob"
    fixture open "$dir" "${blobs[0]}" --exchange other_exchange --expect-error "another exchange key"
done
echo "interop: security domain: all passed"
