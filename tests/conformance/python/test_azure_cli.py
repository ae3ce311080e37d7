"""A scripted session of the unmodified Azure CLI (`az keyvault …`, PyPI azure-cli in a venv of its own,
.venv-az, installed by scripts/setup-azure-cli) against the real `coffer` binary, set up with the two commands
`coffer az-cloud` prints (docs/AZURE-CLI.md). Every step checks the exit status and the JSON az prints.

Skipped, with the reason, only when the az venv is absent (AZ_BIN overrides its location).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Optional

import pytest
import requests

from coffer_harness import REPO_ROOT, CofferServer, coffer_bin, uniq

AZ = Path(os.environ.get("AZ_BIN", REPO_ROOT / ".venv-az" / "bin" / "az"))
if not AZ.exists():
    pytest.skip(f"the Azure CLI venv is absent ({AZ}): run scripts/setup-azure-cli", allow_module_level=True)

CRYPTO_AUDITOR = "Managed HSM Crypto Auditor"


class Az:
    """`az` with a configuration directory of its own, logged in to one instance with the lines `coffer az-cloud`
    printed."""

    def __init__(self, server: CofferServer, home: Path):
        self.server = server
        self.home = home
        self.env = dict(os.environ, AZURE_CONFIG_DIR=str(home), PATH=f"{AZ.parent}:{os.environ.get('PATH', '')}",
                        AZURE_CORE_COLLECT_TELEMETRY="false", AZURE_CORE_NO_COLOR="true")
        self.env.pop("REQUESTS_CA_BUNDLE", None)  # the helper's export sets it
        creds = server.data_dir / "admin-credentials.json"
        lines = subprocess.run([str(coffer_bin()), "az-cloud", "--creds", str(creds), "--write", str(home / "cloud.json")],
                               capture_output=True, text=True, check=True).stdout
        self.script = lines
        commands = [line for line in lines.splitlines() if line and not line.startswith("#")]
        assert [c.split()[0] for c in commands] == ["export", "az", "az"], lines
        self.ca = commands[0].split("=", 1)[1].strip("'")
        self.env["REQUESTS_CA_BUNDLE"] = self.ca
        # The two commands, as a user pastes them.
        p = subprocess.run(["bash", "-euc", lines], env=self.env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"set-up failed\n{lines}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        login = json.loads(p.stdout[p.stdout.index("["):])
        assert login[0]["tenantId"] == server.tenant and login[0]["user"]["type"] == "servicePrincipal", login
        self.hsm_name = next(line.split()[2] for line in lines.splitlines() if line.startswith("# --hsm-name"))

    def run(self, *args: Any, ok: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(AZ), *map(str, args), "--only-show-errors"]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        if ok:
            assert p.returncode == 0, f"az {' '.join(map(str, args))} -> exit {p.returncode}\n{p.stderr}"
        return p

    def json(self, *args: Any) -> Any:
        out = self.run(*args, "-o", "json").stdout
        return json.loads(out) if out.strip() else None

    def kv(self, *args: Any) -> Any:
        """`az keyvault …` on this instance, by --hsm-name."""
        return self.json("keyvault", *args, "--hsm-name", self.hsm_name)


def hsm_token(server: CofferServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token()}"}


def coffer_api(server: CofferServer, method: str, path: str, body: Optional[dict] = None) -> dict:
    r = requests.request(method, f"{server.url}{path}?api-version=7.6", json=body, headers=hsm_token(server),
                         verify=server.ca, timeout=30)
    assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    srv = CofferServer(tmp_path_factory.mktemp("az-dev") / "data", name="python-az-dev").start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def az(dev, tmp_path_factory) -> Az:
    return Az(dev, tmp_path_factory.mktemp("az-home"))


def test_two_commands_log_in_and_hsm_name_reaches_the_instance(az, dev):
    assert az.hsm_name == "127", az.script  # https://127.0.0.1:{port}: name `127`, mhsmDns `.0.0.1:{port}`
    assert az.json("account", "show")["tenantId"] == dev.tenant
    cloud = az.json("cloud", "show")
    assert cloud["suffixes"]["mhsmDns"] == f".0.0.1:{dev.port}" and cloud["isActive"], cloud
    # --id takes any URL (the CLI does not check the challenge resource against it).
    assert isinstance(az.json("keyvault", "key", "list", "--id", dev.url), list)


def test_keys(az, dev, tmp_path):
    rsa, ec = uniq("az-rsa"), uniq("az-ec")
    created = az.kv("key", "create", "--name", rsa, "--kty", "RSA-HSM", "--size", 2048)
    assert created["key"]["kty"] == "RSA-HSM" and created["key"]["kid"].startswith(f"{dev.url}/keys/{rsa}/"), created
    ec_key = az.kv("key", "create", "--name", ec, "--kty", "EC-HSM", "--curve", "P-256")
    assert ec_key["key"]["crv"] == "P-256", ec_key
    names = {k["name"] for k in az.kv("key", "list")}
    assert {rsa, ec} <= names, names
    assert az.kv("key", "show", "--name", rsa)["key"]["kid"] == created["key"]["kid"]

    enc = az.kv("key", "encrypt", "--name", rsa, "--algorithm", "RSA-OAEP-256", "--value", "hello coffer",
                "--data-type", "plaintext")
    dec = az.kv("key", "decrypt", "--name", rsa, "--algorithm", "RSA-OAEP-256", "--value", enc["result"],
                "--data-type", "plaintext")
    assert dec["result"] == "hello coffer", dec

    digest = base64.b64encode(hashlib.sha256(b"message").digest()).decode()
    sig = az.kv("key", "sign", "--name", ec, "--algorithm", "ES256", "--digest", digest)
    ok = az.kv("key", "verify", "--name", ec, "--algorithm", "ES256", "--digest", digest, "--signature", sig["signature"])
    assert ok["isValid"] is True, ok
    bad = az.kv("key", "verify", "--name", ec, "--algorithm", "ES256", "--digest", digest,
                "--signature", base64.b64encode(bytes(64)).decode())
    assert bad["isValid"] is False, bad

    policy = {"lifetimeActions": [{"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Rotate"}}],
              "attributes": {"expiryTime": "P90D"}}
    set_policy = az.kv("key", "rotation-policy", "update", "--name", ec, "--value", json.dumps(policy))
    assert set_policy["expiresIn"] == "P90D", set_policy
    assert az.kv("key", "rotation-policy", "show", "--name", ec)["lifetimeActions"][0]["action"] == "Rotate"
    rotated = az.kv("key", "rotate", "--name", ec)
    assert rotated["key"]["kid"] != ec_key["key"]["kid"] and rotated["attributes"]["expires"], rotated
    assert len(az.kv("key", "list-versions", "--name", ec)) == 2

    # get-attestation (docs/KEY-ATTESTATION.md): az prints the key's `attestation` object.
    att = az.kv("key", "get-attestation", "--name", ec)
    assert isinstance(att, dict) and att.get("privateKeyAttestation") and att.get("certificatePemFile"), att

    blob = tmp_path / "rsa.backup"
    az.kv("key", "backup", "--name", rsa, "--file", blob)
    assert blob.stat().st_size > 100
    deleted = az.kv("key", "delete", "--name", rsa)
    assert deleted["recoveryId"].endswith(f"/deletedkeys/{rsa}"), deleted
    assert az.kv("key", "show-deleted", "--name", rsa)["key"]["kid"] == created["key"]["kid"]
    assert az.kv("key", "recover", "--name", rsa)["key"]["kid"] == created["key"]["kid"]
    az.kv("key", "delete", "--name", rsa)
    az.kv("key", "purge", "--name", rsa)
    assert rsa not in {k["name"] for k in az.kv("key", "list-deleted")}
    restored = az.kv("key", "restore", "--file", blob)
    assert restored["key"]["kid"] == created["key"]["kid"], restored


def test_role_definitions_and_assignments_show_names(az, dev):
    roles = {r["roleName"] for r in az.kv("role", "definition", "list")}
    assert {"Managed HSM Administrator", "Managed HSM Crypto User", CRYPTO_AUDITOR} <= roles, roles
    app = coffer_api(dev, "POST", "/coffer/v1/principals", {"displayName": "az-cli-app"})
    group = coffer_api(dev, "POST", "/coffer/v1/groups", {"displayName": "az-cli-auditors"})

    a = az.kv("role", "assignment", "create", "--role", CRYPTO_AUDITOR, "--assignee-object-id", app["objectId"],
              "--scope", "/keys")
    assert (a["principalId"], a["principalName"], a["principalType"], a["roleName"], a["scope"]) == \
        (app["objectId"], app["clientId"], "ServicePrincipal", CRYPTO_AUDITOR, "/keys"), a
    g = az.kv("role", "assignment", "create", "--role", CRYPTO_AUDITOR, "--assignee-object-id", group["objectId"],
              "--scope", "/")
    assert (g["principalName"], g["principalType"]) == ("az-cli-auditors", "Group"), g

    # --assignee with a client id: the CLI resolves it through Graph's servicePrincipalNames filter.
    listed = az.kv("role", "assignment", "list", "--assignee", app["clientId"], "--scope", "/keys")
    assert [x["name"] for x in listed] == [a["name"]], listed
    everyone = az.kv("role", "assignment", "list")
    bootstrap = [x for x in everyone if x["principalId"] == dev.creds["object_id"]]
    assert bootstrap and all(x["principalName"] == dev.creds["client_id"] for x in bootstrap), bootstrap
    assert not [x for x in everyone if x["principalName"] == "Unknown"], everyone

    az.kv("role", "assignment", "delete", "--name", a["name"], "--scope", "/keys")
    az.kv("role", "assignment", "delete", "--role", CRYPTO_AUDITOR, "--assignee-object-id", group["objectId"],
          "--scope", "/")
    left = {x["principalId"] for x in az.kv("role", "assignment", "list")}
    assert app["objectId"] not in left and group["objectId"] not in left, left


def test_full_backup_to_a_directory_and_azurite_and_selective_restore(az, dev, tmp_path):
    key = uniq("az-bk")
    kid = az.kv("key", "create", "--name", key, "--kty", "EC-HSM", "--curve", "P-256")["key"]["kid"]
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    job = az.kv("backup", "start", "--storage-resource-uri", backups.as_uri())
    assert job["status"] == "Succeeded" and job["folderUrl"].startswith(backups.as_uri() + "/"), job
    folder = job["folderUrl"].rsplit("/", 1)[1]
    assert (backups / folder).is_dir()

    azurite_url = os.environ.get("COFFER_AZURITE_URL")
    if azurite_url:
        from test_backup import AZURITE_WELL_KNOWN_KEY, Azurite
        storage = Azurite(azurite_url, os.environ.get("COFFER_AZURITE_KEY", AZURITE_WELL_KNOWN_KEY))
        container = storage.create_container("az-cli")
        sas = storage.sas()
        blob_job = az.kv("backup", "start", "--storage-resource-uri", container, "--storage-container-SAS-token", sas)
        assert blob_job["status"] == "Succeeded" and blob_job["folderUrl"].startswith(container + "/"), blob_job
        assert storage.list_blobs(container), "the backup wrote no blob"
    elif os.environ.get("COFFER_SKIP_AZURITE") != "1":
        pytest.fail("COFFER_AZURITE_URL is not set (run through ./scripts/test, or set COFFER_SKIP_AZURITE=1)")

    # Selective restore: the purged key comes back from the directory backup.
    az.kv("key", "delete", "--name", key)
    az.kv("key", "purge", "--name", key)
    restore = az.kv("restore", "start", "--storage-resource-uri", backups.as_uri(), "--backup-folder", folder,
                    "--key", key)
    assert restore is None or restore.get("status") == "Succeeded", restore  # (az prints nothing for one key)
    assert az.kv("key", "show", "--name", key)["key"]["kid"] == kid


def test_security_domain_download_and_recovery(tmp_path, tmp_path_factory):
    officers = tmp_path / "officers"
    subprocess.run([str(coffer_bin()), "sd", "keys", "--count", "3", "--name", "officer", "--out", str(officers),
                    "--bits", "2048"], check=True, capture_output=True)
    provisioned = CofferServer(tmp_path / "provisioned", name="python-az-provisioned", dev=False).start()
    recovery = CofferServer(tmp_path / "recovery", name="python-az-recovery", dev=False, recovery=True).start()
    try:
        az = Az(provisioned, tmp_path_factory.mktemp("az-home-provisioned"))
        sd_file = tmp_path / "sd.json"
        out = az.kv("security-domain", "download", "--sd-wrapping-keys", *(officers / f"officer{i}.cer" for i in (1, 2, 3)),
                    "--sd-quorum", 2, "--security-domain-file", sd_file)
        assert out is None or out.get("status", "Success") == "Success", out
        assert json.loads(sd_file.read_text())["EncData"], "the security-domain file"
        # Activated: role-assignment writes work now.
        me = provisioned.creds["object_id"]
        assert az.kv("role", "assignment", "create", "--role", "Managed HSM Crypto User", "--assignee-object-id", me,
                     "--scope", "/")["principalType"] == "ServicePrincipal"

        rz = Az(recovery, tmp_path_factory.mktemp("az-home-recovery"))
        exchange = tmp_path / "exchange.cer"
        rz.kv("security-domain", "init-recovery", "--sd-exchange-key", exchange)
        assert exchange.stat().st_size > 0
        blob = tmp_path / "restore-blob.json"
        rz.json("keyvault", "security-domain", "restore-blob", "--sd-file", sd_file, "--sd-exchange-key", exchange,
                "--sd-wrapping-keys", officers / "officer1.pem", officers / "officer3.pem",
                "--sd-file-restore-blob", blob)
        up = rz.kv("security-domain", "upload", "--sd-file", blob, "--restore-blob")
        assert up is None or up.get("status") == "Success", up
        a = rz.kv("role", "assignment", "create", "--role", "Managed HSM Crypto User", "--assignee-object-id",
                  recovery.creds["object_id"], "--scope", "/")
        assert a["principalName"] == recovery.creds["client_id"], a
        assert rz.kv("key", "list") == []
    finally:
        for s in (provisioned, recovery):
            assert s.stop() == 0
