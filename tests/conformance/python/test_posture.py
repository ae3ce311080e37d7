"""The security posture report (`GET /coffer/v1/posture`, `coffer posture`): a default `--dev` instance fails the
checks it should; after following each check's remedy (network ACLs, purge protection, a full backup, a
security-domain download to three officers, administrators through a group, just-in-time privileged roles, keys
with an expiry, an off-host syslog audit sink, and the seal moved into a SoftHSM2 token) every check passes.
Throttling: a burst above the limit gets 429 with Retry-After and the unmodified SDK's retry policy completes the
work."""
from __future__ import annotations

import datetime
import json
import socket
import uuid
from pathlib import Path

from azure.keyvault.administration import KeyVaultBackupClient

from coffer_harness import CRYPTO_OFFICER, CRYPTO_USER, database_args, uniq
from sdtools import describe, raw, run_coffer
from test_pkcs11_seal import softhsm  # noqa: F401  (fixture)

ADMINISTRATOR = "a290e904-7015-4bba-90c8-60543313cdb4"
POLICY_ADMINISTRATOR = "4bd23610-cdcf-4971-bdee-bdc562cc28e4"
ROLE_DEF = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"


def posture(srv) -> dict[str, dict]:
    r = raw(srv, "GET", "/coffer/v1/posture")
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert body["passed"] + body["failed"] == len(body["checks"])
    return {c["id"]: c for c in body["checks"]}


def failing(checks: dict[str, dict]) -> set[str]:
    return {k for k, c in checks.items() if c["status"] != "Pass"}


def ok(r, *codes):
    assert r.status_code in (codes or (200,)), describe(r)
    return r.json() if r.text else None


def test_default_dev_instance_fails_what_it_should_and_passes_after_the_remedies(make_server, softhsm, tmp_path):
    srv = make_server("posture")
    kc = srv.key_client()
    key = kc.create_ec_key(uniq("noexp"), curve="P-256")

    checks = posture(srv)
    assert failing(checks) == {
        "firewall", "public-network-access", "purge-protection", "audit-off-host", "backup-age",
        "administrators-through-groups", "separation-of-duties", "just-in-time-administration",
        "security-domain-quorum", "keys-expire", "seal-provider",
    }, json.dumps(checks, indent=1)
    for c in checks.values():
        assert c["remedy"] and c["title"] and "evidence" in c, c
    assert checks["keys-expire"]["evidence"]["examples"] == [key.name]
    assert checks["seal-provider"]["evidence"]["sealProvider"] == "file"
    assert checks["security-domain-quorum"]["evidence"]["devKeysInDataDirectory"] is True
    creds = srv.data_dir / "admin-credentials.json"
    p = run_coffer("posture", "--creds", creds, ok=False)
    assert p.returncode == 1 and "remedy:" in p.stdout and "11 failed" in p.stdout, p.stdout

    # Keys: an expiry on every key.
    kc.update_key_properties(key.name, expires_on=datetime.datetime.now(datetime.timezone.utc)
                             + datetime.timedelta(days=365))
    # Purge protection.
    ok(raw(srv, "PATCH", "/settings/PurgeProtection", json={"value": "true"}))
    # A full backup with the unmodified SDK.
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    bc = KeyVaultBackupClient(srv.url, srv.credential(), verify_challenge_resource=False, connection_verify=srv.ca)
    assert bc.begin_backup(backups.as_uri()).result(timeout=120).folder_url
    # The security domain: three officers, quorum 2; the dev wrapping keys leave the machine.
    officers = tmp_path / "officers"
    run_coffer("sd", "keys", "--count", 3, "--out", officers, "--bits", 2048)
    # (the instance is active: the download is proposed, then a quorum of the current officers, here the dev keys,
    # consents to that very download)
    dev = srv.data_dir / "dev-security-domain"
    certs = [officers / f"officer{i}.cer" for i in (1, 2, 3)]
    refused = run_coffer("sd", "download", "--creds", creds, "--certs", *certs, "--quorum", 2,
                         "--out", tmp_path / "refused.json", ok=False)
    assert "quorum" in refused.stderr, refused.stderr
    proposal = run_coffer("sd", "proposal-hash", "--certs", *certs, "--quorum", 2).stdout.strip()
    subject = run_coffer("sd", "exchange-key", "--creds", creds, "--out", tmp_path / "exchange.cer").stdout
    assert proposal[:32] in subject, (proposal, subject)
    run_coffer("sd", "restore-blob", "--sd-file", dev / "security-domain.json", "--keys", dev / "officer1.pem",
               dev / "officer2.pem", "--exchange-cert", tmp_path / "exchange.cer", "--out", tmp_path / "proof.json")
    run_coffer("sd", "download", "--creds", creds, "--certs", *[officers / f"officer{i}.cer" for i in (1, 2, 3)],
               "--quorum", 2, "--quorum-proof", tmp_path / "proof.json", "--out", tmp_path / "sd.json")
    for pem in (srv.data_dir / "dev-security-domain").glob("*.pem"):
        pem.unlink()
    # Administrators through a group; privileged roles just in time; no conflicting roles.
    oid = srv.creds["object_id"]
    group = ok(raw(srv, "POST", "/coffer/v1/groups", json={"displayName": "hsm-admins"}), 201)["objectId"]
    ok(raw(srv, "PUT", f"/coffer/v1/groups/{group}/members/{oid}"), 200, 204)
    ok(raw(srv, "PUT", f"/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
           json={"properties": {"principalId": group, "roleDefinitionId": ROLE_DEF + ADMINISTRATOR}}), 201)
    ok(raw(srv, "POST", "/coffer/v1/eligible-assignments",
           json={"scope": "/", "roleDefinitionId": CRYPTO_OFFICER, "principalId": oid, "maxDurationSeconds": 3600}), 201)
    mine = ok(raw(srv, "GET", f"/providers/Microsoft.Authorization/roleAssignments?$filter=principalId eq '{oid}'"))
    for a in mine["value"]:
        role = a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1]
        if role in (ADMINISTRATOR, CRYPTO_OFFICER, CRYPTO_USER, POLICY_ADMINISTRATOR):
            ok(raw(srv, "DELETE", f"/providers/Microsoft.Authorization/roleAssignments/{a['name']}"))
    # The firewall: only this client's address, no public access.
    ok(raw(srv, "PUT", "/coffer/v1/network-acls", json={
        "defaultAction": "Deny", "ipRules": [{"value": "127.0.0.1/32"}], "publicNetworkAccess": "Disabled"}))

    checks = posture(srv)
    assert failing(checks) == {"audit-off-host", "seal-provider"}, json.dumps(checks, indent=1)

    # The seal into a PKCS#11 token, and audit records to syslog too: both need a restart.
    assert srv.stop() == 0
    run_coffer("seal", "migrate", "--data-dir", srv.data_dir, "--to-config", softhsm.config,
               *database_args(Path(srv.data_dir)), env=softhsm.env())
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(10)
    config = tmp_path / "coffer.toml"
    config.write_text(softhsm.config.read_text() + "\n[audit.syslog]\ntransport = \"udp\"\n"
                      f"address = \"127.0.0.1:{collector.getsockname()[1]}\"\n")
    srv.extra_args = ("--config", str(config))
    srv.env = softhsm.env()
    srv.dev = False  # (the harness would otherwise hand the bootstrap principal standing crypto roles again)
    srv.start()
    checks = posture(srv)
    assert failing(checks) == set(), json.dumps({k: c for k, c in checks.items() if c["status"] != "Pass"}, indent=1)
    assert checks["seal-provider"]["evidence"]["sealProvider"] == "pkcs11"
    datagram = collector.recv(65536).decode()
    assert '"category":"AuditEvent"' in datagram, datagram
    p = run_coffer("posture", "--creds", creds)
    assert "17 passed, 0 failed" in p.stdout, p.stdout


def test_key_creation_weighs_more_than_reads(make_server, tmp_path):
    config = tmp_path / "coffer.toml"
    config.write_text("[throttling]\nunits_per_10s = 20\n")
    srv = make_server("throttled", extra_args=("--config", str(config)))
    kc = srv.key_client()
    key = kc.create_ec_key(uniq("t"), curve="P-256")  # 200 units: this principal now waits ~90 s for its next call
    r = raw(srv, "GET", f"/keys/{key.name}")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, describe(r)
    assert r.json()["error"]["code"] == "Throttled"


def test_sdk_retries_429_until_the_work_is_done(make_server, tmp_path):
    config = tmp_path / "coffer.toml"
    config.write_text("[throttling]\nunits_per_10s = 20\n")
    srv = make_server("throttled-retry", extra_args=("--config", str(config)))
    kc = srv.key_client()
    done = 0
    for i in range(35):
        assert list(kc.list_properties_of_keys()) == [], f"call {i}"
        done += 1
    assert done == 35
    # Some of those calls were answered 429 first: the audit log has them, from the SDK.
    records = [json.loads(line) for f in sorted((srv.data_dir / "audit").glob("audit-*.jsonl"))
               for line in f.read_text().splitlines()]
    throttled = [r for r in records if r["properties"].get("httpStatusCode") == 429]
    assert throttled, "expected 429s during the burst"
    assert all(r["resultSignature"] == "Too Many Requests" for r in throttled)
    assert any("azsdk-python-keyvault-keys" in (r["properties"].get("clientInfo") or "") for r in throttled)


def test_stdout_audit_sink_writes_json_lines(make_server, tmp_path):
    config = tmp_path / "coffer.toml"
    config.write_text("[audit]\nstdout = true\n")
    srv = make_server("audit-stdout", extra_args=("--config", str(config)))
    kc = srv.key_client()
    kc.create_ec_key(uniq("out"), curve="P-256")
    srv.stop()
    # The harness sends stdout and stderr to one log: audit records are the lines that are AuditEvent JSON.
    records = []
    for line in srv.log_path.read_text().splitlines():
        if line.startswith("{") and '"category":"AuditEvent"' in line:
            records.append(json.loads(line))
    assert any(r["operationName"] == "KeyCreate" for r in records), srv.log_tail()
    assert all("cofferChain" in r for r in records)
    # The same records, in the same chain, are in the file sink.
    files = sorted((srv.data_dir / "audit").glob("audit-*.jsonl"))
    on_disk = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [r["cofferChain"]["hash"] for r in records] == [r["cofferChain"]["hash"] for r in on_disk]
