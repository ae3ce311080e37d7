"""Full backup and restore (HSM level) and selective key restore with the unmodified `KeyVaultBackupClient`
(azure-keyvault-administration), against Azurite (Azure Blob Storage emulator, started by scripts/test) and a
`file://` directory; restores go into a second instance recovered with the original's security domain
(`coffer sd exchange-key` / `restore-blob` / `upload`, docs/SECURITY-DOMAIN.md).

Protocol: sdk-requirements.md §4.1 (backup LRO, `folder_url` = container URL + "/" + folder) and §4.2 (restore:
the SDK splits `folder_url` after the FIRST path segment, so for Azurite's path-style URLs the server gets
`storageResourceUri=http://127.0.0.1:PORT/devstoreaccount1` and folder `<container>/<folder>`).

Azurite: COFFER_AZURITE_URL (`http://127.0.0.1:PORT/devstoreaccount1`) and COFFER_AZURITE_KEY. Without them the
Azurite tests fail, unless COFFER_SKIP_AZURITE=1. Run through ./scripts/test, or
`scripts/azurite start && eval "$(scripts/azurite env)"`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlencode, urlparse

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.administration import (
    KeyVaultAccessControlClient,
    KeyVaultBackupClient,
    KeyVaultDataAction,
    KeyVaultPermission,
    KeyVaultRoleScope,
)
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.keys.crypto import EncryptionAlgorithm, SignatureAlgorithm

from coffer_harness import CofferServer, coffer_bin, grant_crypto_roles, remote_crypto, uniq
from localcrypto import digest_for, ec_public_from_jwk, ec_verify, random_bytes, rsa_enc_padding, rsa_public_from_jwk, rsa_verify

AZURITE_WELL_KNOWN_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BLOB_VERSION = "2021-08-06"
JOB_TIMEOUT = 90  # seconds for one backup/restore job on a small instance
FOLDER_RE = re.compile(r"mhsm-[A-Za-z0-9.-]+-\d{14,16}")


# ================================================================================================ Azurite
class Azurite:
    def __init__(self, account_url: str, key_b64: str):
        self.account_url = account_url.rstrip("/")
        self.account = urlparse(self.account_url).path.strip("/").split("/")[-1]
        self.key = base64.b64decode(key_b64)

    def sas(self, permissions: str = "rwdlac", expiry: str = "2099-01-01T00:00:00Z", key: Optional[bytes] = None) -> str:
        """An account SAS (blob; service, container, object), signed like the portal / az CLI would."""
        sts = f"{self.account}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{BLOB_VERSION}\n\n"
        sig = base64.b64encode(hmac.new(key or self.key, sts.encode(), hashlib.sha256).digest()).decode()
        return urlencode({"sv": BLOB_VERSION, "ss": "b", "srt": "sco", "sp": permissions, "se": expiry,
                          "spr": "https,http", "sig": sig})

    def create_container(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        url = f"{self.account_url}/{name}"
        r = requests.put(f"{url}?restype=container&{self.sas()}", headers={"x-ms-version": BLOB_VERSION}, timeout=30)
        assert r.status_code == 201, f"creating Azurite container {name}: {r.status_code} {r.text[:300]}"
        return url

    def get_blob(self, blob_url: str) -> requests.Response:
        return requests.get(f"{blob_url}?{self.sas()}", headers={"x-ms-version": BLOB_VERSION}, timeout=60)

    def put_blob(self, blob_url: str, data: bytes) -> None:
        r = requests.put(f"{blob_url}?{self.sas()}", data=data, timeout=60,
                         headers={"x-ms-version": BLOB_VERSION, "x-ms-blob-type": "BlockBlob"})
        assert r.status_code == 201, f"Put Blob {blob_url}: {r.status_code} {r.text[:300]}"

    def list_blobs(self, container_url: str) -> list[str]:
        r = requests.get(f"{container_url}?restype=container&comp=list&{self.sas()}",
                         headers={"x-ms-version": BLOB_VERSION}, timeout=30)
        assert r.status_code == 200, f"List Blobs: {r.status_code} {r.text[:300]}"
        return re.findall(r"<Name>([^<]+)</Name>", r.text)


@pytest.fixture(scope="module")
def azurite() -> Azurite:
    url = os.environ.get("COFFER_AZURITE_URL")
    if not url:
        if os.environ.get("COFFER_SKIP_AZURITE") == "1":
            pytest.skip("COFFER_SKIP_AZURITE=1: Azure Blob Storage (Azurite) tests skipped")
        pytest.fail("COFFER_AZURITE_URL is not set: run the suite through ./scripts/test (it starts Azurite), or "
                    "`scripts/azurite start && eval \"$(scripts/azurite env)\"`; COFFER_SKIP_AZURITE=1 skips these "
                    "tests knowingly", pytrace=False)
    az = Azurite(url, os.environ.get("COFFER_AZURITE_KEY", AZURITE_WELL_KNOWN_KEY))
    try:
        requests.get(f"{az.account_url}?comp=list&{az.sas()}", headers={"x-ms-version": BLOB_VERSION}, timeout=10)
    except requests.RequestException as e:
        pytest.fail(f"Azurite at {url} is not reachable: {e!r}", pytrace=False)
    return az


# ================================================================================================ wire recording
class Wire:
    """raw_response_hook: every request/response of a client (the LRO polls too)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, pipeline_response) -> None:
        req, resp = pipeline_response.http_request, pipeline_response.http_response
        body = getattr(req, "content", None)
        if body is None:
            body = getattr(req, "body", None)
        if isinstance(body, (bytes, bytearray)):
            body = body.decode(errors="replace")
        try:
            text = resp.text()
        except Exception:  # noqa: BLE001
            text = ""
        self.calls.append({"method": req.method, "url": req.url, "path": urlparse(req.url).path,
                           "status": resp.status_code, "request": body, "text": text,
                           "headers": {k.lower(): v for k, v in resp.headers.items()}})

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.calls[mark:]

    def last_job_body(self, mark: int) -> dict:
        """The JSON of the last job-status answer (202 of the start, or a */pending poll) since `mark`."""
        for c in reversed(self.since(mark)):
            if c["path"].endswith("/pending") or c["status"] == 202:
                try:
                    return json.loads(c["text"])
                except ValueError:
                    return {"unparsed": c["text"]}
        return {}

    def start_call(self, mark: int) -> dict[str, Any]:
        """The request that started a job since `mark` (the one answered 202; the challenge's 401 comes first)."""
        for c in self.since(mark):
            if c["status"] == 202:
                return c
        raise AssertionError(f"no job was started (no 202):\n{self.describe(mark)}")

    def describe(self, mark: int) -> str:
        return "\n".join(f"  {c['method']} {c['path']} -> {c['status']} {c['text'][:300]}" for c in self.since(mark))


def backup_client(server: CofferServer, wire: Wire) -> KeyVaultBackupClient:
    return KeyVaultBackupClient(server.url, server.credential(), verify_challenge_resource=False,
                                connection_verify=server.ca, raw_response_hook=wire)


def finish(poller, timeout: float = JOB_TIMEOUT):
    """Waits for a job; raises what poller.result() raises (HttpResponseError for Failed)."""
    deadline = time.monotonic() + timeout
    while not poller.done() and time.monotonic() < deadline:
        poller.wait(timeout=1)
    assert poller.done(), f"the job did not finish within {timeout}s (status {poller.status()})"
    return poller.result()


def expect_refused(start: Callable[[], Any], wire: Wire, what: str) -> tuple[str, str]:
    """A job that must not succeed: either the start is refused (4xx) or the job ends Failed. Returns (code, message)
    from the error, and checks poller.result() raises HttpResponseError (sdk-requirements §4)."""
    mark = wire.mark()
    try:
        poller = start()
    except HttpResponseError as e:
        assert e.status_code and 400 <= e.status_code < 500, f"{what}: start answered {e.status_code}: {e}"
        err: dict = {}
        try:
            err = json.loads(e.response.text()).get("error") or {}
        except (ValueError, AttributeError):
            pass
        assert err.get("code") and err.get("message"), f"{what}: a refused start needs an Azure error body: {e}"
        print(f"{what}: start refused {e.status_code}: {err}")
        return err.get("code") or str(e.status_code), err.get("message") or str(e)
    with pytest.raises(HttpResponseError):
        finish(poller)
    body = wire.last_job_body(mark)
    assert body.get("status") == "Failed", f"{what}: the job should end Failed, last status {body}\n{wire.describe(mark)}"
    err = body.get("error") or {}
    assert err.get("code") and err.get("message"), f"{what}: a failed job needs error.code and error.message: {body}"
    assert body.get("endTime") is not None, f"{what}: a finished job has an endTime: {body}"
    print(f"{what}: job Failed: {err}")
    return err["code"], err["message"]


# ================================================================================================ servers
def _stop(srv: CofferServer) -> None:
    if srv.proc is not None:
        rc = srv.stop()
        assert rc == 0, f"{srv.name}: exit status {rc} after SIGTERM\n{srv.log_tail()}"


def run_cli(*args: Any) -> subprocess.CompletedProcess:
    cmd = [str(coffer_bin()), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, RUST_BACKTRACE="0", NO_COLOR="1"))
    assert p.returncode == 0, f"{' '.join(cmd)} -> exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def recover_with_security_domain(tmp: Path, original: CofferServer, name: str) -> CofferServer:
    """A new instance holding the original's domain secret (docs/SECURITY-DOMAIN.md §3, with the dev officers)."""
    sd_dir = original.data_dir / "dev-security-domain"
    assert (sd_dir / "security-domain.json").exists(), f"--dev wrote no security domain in {sd_dir}"
    # The officers' files, copied as an officer would bring them.
    officers = tmp / f"{name}-officers"
    officers.mkdir()
    for f in sd_dir.iterdir():
        shutil.copy2(f, officers / f.name)
    # `serve --recovery` on an empty data directory: only the token service, the transfer key and the upload work
    # until the restore blob is uploaded (so the harness grants no crypto roles at start).
    srv = CofferServer(tmp / name, name=f"python-{name}", dev=False, recovery=True).start()
    try:
        creds = srv.data_dir / "admin-credentials.json"
        run_cli("sd", "exchange-key", "--creds", creds, "--out", tmp / f"{name}-exchange.cer")
        run_cli("sd", "restore-blob", "--sd-file", officers / "security-domain.json",
                "--keys", officers / "officer1.pem", officers / "officer3.pem",
                "--exchange-cert", tmp / f"{name}-exchange.cer", "--out", tmp / f"{name}-restore-blob.json")
        run_cli("sd", "upload", "--creds", creds, "--blob", tmp / f"{name}-restore-blob.json")
        grant_crypto_roles(srv.port, srv.creds)
    except BaseException:
        srv.kill()
        raise
    return srv


@pytest.fixture(scope="module")
def bk_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backup")


@pytest.fixture(scope="module")
def original(bk_tmp):
    srv = CofferServer(bk_tmp / "original", name="python-bk-original").start()
    yield srv
    _stop(srv)


@pytest.fixture(scope="module")
def recovered(bk_tmp, original):
    srv = recover_with_security_domain(bk_tmp, original, "recovered")
    yield srv
    _stop(srv)


# ================================================================================================ the data set
class Dataset:
    """What the original holds when it is backed up, and what was computed with its keys before."""

    def __init__(self) -> None:
        self.versions: dict[str, set[str]] = {}   # live key name -> versions
        self.tags: dict[tuple[str, str], dict] = {}  # (name, version) -> tags
        self.public: dict[tuple[str, str], Any] = {}  # (name, version) -> JsonWebKey (public)
        self.deleted: set[str] = set()
        self.rsa = self.ec = self.aes = self.sel = ""
        self.rsa_ciphertexts: dict[str, tuple[bytes, bytes]] = {}  # version -> (plaintext, RSA-OAEP-256 ciphertext)
        self.aes_ct: tuple = ()
        self.custom_role = ""
        self.policy_expires = "P90D"


def _record(ds: Dataset, key) -> None:
    ds.versions.setdefault(key.name, set()).add(key.properties.version)
    ds.tags[(key.name, key.properties.version)] = dict(key.properties.tags or {})
    ds.public[(key.name, key.properties.version)] = key.key


@pytest.fixture(scope="module")
def dataset(original) -> Dataset:
    ds = Dataset()
    kc = original.key_client()
    ds.rsa, ds.ec, ds.aes, ds.sel = uniq("bk-rsa"), uniq("bk-ec"), uniq("bk-aes"), uniq("bk-sel")
    for tags in ({"role": "rsa", "v": "1"}, {"role": "rsa", "v": "2"}):
        _record(ds, kc.create_rsa_key(ds.rsa, size=2048, hardware_protected=True, tags=tags))
    _record(ds, kc.create_ec_key(ds.ec, curve="P-256", hardware_protected=True, tags={"role": "ec"}))
    _record(ds, kc.create_oct_key(ds.aes, size=256, hardware_protected=True))
    for i in range(2):
        _record(ds, kc.create_ec_key(ds.sel, curve="P-384", hardware_protected=True, tags={"sel": str(i)}))
    kc.update_key_rotation_policy(ds.rsa, KeyRotationPolicy(), expires_in=ds.policy_expires, lifetime_actions=[
        KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P60D")])
    gone = uniq("bk-deleted")
    kc.create_ec_key(gone, curve="P-256", hardware_protected=True)
    kc.begin_delete_key(gone).wait(timeout=30)
    ds.deleted.add(gone)

    # Ciphertexts made before the backup, under each RSA version (locally, with the public key) and the AES key
    # (by the server).
    for version in ds.versions[ds.rsa]:
        msg = random_bytes(32)
        pub = rsa_public_from_jwk(ds.public[(ds.rsa, version)])
        ds.rsa_ciphertexts[version] = (msg, pub.encrypt(msg, rsa_enc_padding("RSA-OAEP-256")))
    aes_key = kc.get_key(ds.aes)
    crypto, rec = remote_crypto(original, aes_key.id)
    msg = random_bytes(40)
    enc = crypto.encrypt(EncryptionAlgorithm.a256_gcm, msg, additional_authenticated_data=b"bk")
    rec.assert_remote("encrypt")
    ds.aes_ct = (msg, enc.ciphertext, enc.iv, enc.tag)

    # A custom role definition (RBAC is part of the backup).
    ac = KeyVaultAccessControlClient(original.url, original.credential(), verify_challenge_resource=False,
                                     connection_verify=original.ca)
    ds.custom_role = str(uuid.uuid4())
    ac.set_role_definition(KeyVaultRoleScope.GLOBAL, name=ds.custom_role, role_name=uniq("bk-role"),
                           permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY])])
    return ds


def snapshot(server: CofferServer) -> tuple[dict[str, set[str]], set[str]]:
    """Live keys with their versions, and soft-deleted key names."""
    kc = server.key_client()
    live = {p.name: {v.version for v in kc.list_properties_of_key_versions(p.name)} for p in kc.list_properties_of_keys()}
    deleted = {d.name for d in kc.list_deleted_keys()}
    return live, deleted


def assert_holds_dataset(server: CofferServer, ds: Dataset, what: str) -> None:
    """Every key of the data set is there with all its versions, tags, public keys, the rotation policy, the
    deleted key and the custom role; and every key signs/decrypts as it did on the original."""
    kc = server.key_client()
    live, deleted = snapshot(server)
    for name, versions in ds.versions.items():
        assert live.get(name) == versions, f"{what}: {name} versions {live.get(name)} != {versions}"
        for v in versions:
            k = kc.get_key(name, v)
            assert k.id == f"{server.url}/keys/{name}/{v}", f"{what}: {k.id}"
            assert dict(k.properties.tags or {}) == ds.tags[(name, v)], f"{what}: tags of {name}/{v}"
            want = ds.public[(name, v)]
            for field in ("kty", "n", "e", "crv", "x", "y"):
                assert getattr(k.key, field) == getattr(want, field), f"{what}: {name}/{v} public key field {field}"
    assert ds.deleted <= deleted, f"{what}: soft-deleted keys {ds.deleted - deleted} not restored as deleted"
    for name in ds.deleted:
        assert name not in live, f"{what}: deleted key {name} came back live"
    policy = kc.get_key_rotation_policy(ds.rsa)
    assert policy.expires_in == ds.policy_expires, f"{what}: rotation policy {vars(policy)}"
    ac = KeyVaultAccessControlClient(server.url, server.credential(), verify_challenge_resource=False,
                                     connection_verify=server.ca)
    role = ac.get_role_definition(KeyVaultRoleScope.GLOBAL, ds.custom_role)
    assert role.role_type == "CustomRole", f"{what}: custom role {vars(role)}"

    # Decrypt what the original encrypted, with every RSA version.
    for version, (msg, ct) in ds.rsa_ciphertexts.items():
        crypto, rec = remote_crypto(server, f"{server.url}/keys/{ds.rsa}/{version}")
        assert crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext == msg, f"{what}: RSA {version}"
        rec.assert_remote("decrypt")
    msg, ct, iv, tag = ds.aes_ct
    crypto, rec = remote_crypto(server, kc.get_key(ds.aes).id)
    assert crypto.decrypt(EncryptionAlgorithm.a256_gcm, ct, iv=iv, authentication_tag=tag,
                          additional_authenticated_data=b"bk").plaintext == msg, f"{what}: AES-GCM"
    rec.assert_remote("decrypt")
    # Sign now; the original's public keys verify.
    for name, alg, crv in ((ds.rsa, "RS256", None), (ds.ec, "ES256", "P-256"), (ds.sel, "ES384", "P-384")):
        for version in ds.versions[name]:
            crypto, rec = remote_crypto(server, f"{server.url}/keys/{name}/{version}")
            digest = digest_for(alg)
            sig = crypto.sign(SignatureAlgorithm(alg), digest).signature
            rec.assert_remote("sign")
            pub = ds.public[(name, version)]
            if crv:
                ec_verify(ec_public_from_jwk(pub), alg, digest, sig, crv)
            else:
                rsa_verify(rsa_public_from_jwk(pub), alg, digest, sig)


# ================================================================================================ backups
class AzuriteBackup:
    def __init__(self, container: str, sas: str, folder_url: str):
        self.container, self.sas, self.folder_url = container, sas, folder_url


class DirBackup:
    def __init__(self, container: str, folder_url: str, request: dict):
        self.container, self.folder_url, self.request = container, folder_url, request


@pytest.fixture(scope="module")
def az_backup(original, dataset, azurite) -> AzuriteBackup:
    """A backup of the original (holding the data set) to an Azurite container, with an account SAS."""
    wire = Wire()
    client = backup_client(original, wire)
    container = azurite.create_container("mhsm-backups")
    sas = azurite.sas()
    mark = wire.mark()
    result = finish(client.begin_backup(container, sas_token=sas))
    first = wire.start_call(mark)
    assert first["method"] == "POST" and first["path"] == "/backup", wire.describe(mark)
    assert json.loads(first["request"])["token"] == sas, "the SDK sends the SAS as `token`"
    return AzuriteBackup(container, sas, result.folder_url)


@pytest.fixture(scope="module")
def dir_backup(original, dataset, bk_tmp) -> DirBackup:
    """A backup of the original (holding the data set) to a file:// directory."""
    wire = Wire()
    client = backup_client(original, wire)
    backup_dir = bk_tmp / "dir-backups"
    backup_dir.mkdir(mode=0o700)
    mark = wire.mark()
    # No SAS for a directory: the SDK makes sas_token optional and sends no token.
    result = finish(client.begin_backup(backup_dir.as_uri()))
    return DirBackup(backup_dir.as_uri(), result.folder_url, json.loads(wire.start_call(mark)["request"]))


def test_full_backup_to_azurite(az_backup, azurite, dataset):
    url = az_backup.folder_url
    assert url.startswith(az_backup.container + "/"), f"folder_url {url} is not under {az_backup.container}"
    folder = url[len(az_backup.container) + 1:]
    assert FOLDER_RE.fullmatch(folder), f"backup folder name {folder!r} is not mhsm-{{instance}}-{{timestamp}}"
    names = azurite.list_blobs(az_backup.container)
    assert f"{folder}/manifest.json" in names and f"{folder}/state.bin" in names, names
    state = azurite.get_blob(f"{url}/state.bin")
    assert state.status_code == 200 and len(state.content) > 256, state.status_code
    # Encrypted: no key name of the data set appears in the stored files.
    manifest = azurite.get_blob(f"{url}/manifest.json").content
    for blob in (state.content, manifest):
        for name in dataset.versions:
            assert name.encode() not in blob, f"key name {name} readable in the backup: not encrypted"


def test_full_backup_to_directory(dir_backup):
    sent = dir_backup.request
    assert sent.get("storageResourceUri") == dir_backup.container, sent
    assert not sent.get("token"), f"no SAS token was given, the SDK sent {sent}"
    url = dir_backup.folder_url
    assert url.startswith(dir_backup.container + "/"), f"{url} not under {dir_backup.container}"
    folder = Path(urlparse(url).path)
    assert FOLDER_RE.fullmatch(folder.name), folder.name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["manifest.json", "state.bin"], files
    for f in folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f"{f}: {oct(f.stat().st_mode)}"
    assert b"bk-rsa-" not in (folder / "state.bin").read_bytes(), "backup is not encrypted"


def test_full_restore_from_azurite_into_a_recovered_instance(az_backup, recovered, dataset, azurite):
    live, _ = snapshot(recovered)
    assert not live, f"the recovered instance should start without keys: {live}"
    wire = Wire()
    client = backup_client(recovered, wire)
    mark = wire.mark()
    assert finish(client.begin_restore(az_backup.folder_url, sas_token=az_backup.sas)) is None
    # sdk-requirements §4.2: the SDK split the path-style URL after the account segment.
    sent = json.loads(wire.start_call(mark)["request"])
    assert sent["sasTokenParameters"]["storageResourceUri"] == azurite.account_url, sent
    assert sent["folderToRestore"].startswith(az_backup.container.rsplit("/", 1)[1] + "/"), sent
    final = wire.last_job_body(mark)
    assert final.get("status") == "Succeeded" and final["endTime"] > final["startTime"], final
    assert_holds_dataset(recovered, dataset, "after the full restore from Azurite")


def test_full_restore_from_directory_restores_the_state_and_erases_nothing(dir_backup, recovered, dataset):
    # Something the backup does not know: a full restore brings back the backup's keys, and soft-deletes (never
    # erases) a key made after the backup, so it stays recoverable.
    kc = recovered.key_client()
    extra = uniq("bk-extra")
    kc.create_ec_key(extra, curve="P-256", hardware_protected=True)
    if dataset.ec in snapshot(recovered)[0]:  # and a key missing that the backup has
        kc.begin_delete_key(dataset.ec).wait(timeout=30)
        kc.purge_deleted_key(dataset.ec)
        _wait_purged(kc, dataset.ec)
    wire = Wire()
    client = backup_client(recovered, wire)
    assert finish(client.begin_restore(dir_backup.folder_url)) is None
    live, deleted = snapshot(recovered)
    assert extra not in live, f"a key made after the backup is still live after the full restore: {extra}"
    assert extra in deleted, f"a key made after the backup was erased, not soft-deleted: {extra}"
    assert_holds_dataset(recovered, dataset, "after the full restore from a directory")


def test_selective_restore_brings_back_a_purged_key(az_backup, original, dataset):
    kc = original.key_client()
    name = dataset.sel
    kc.begin_delete_key(name).wait(timeout=30)
    kc.purge_deleted_key(name)
    _wait_purged(kc, name)
    with pytest.raises(ResourceNotFoundError):
        kc.get_key(name)
    before_live, before_deleted = snapshot(original)

    wire = Wire()
    client = backup_client(original, wire)
    mark = wire.mark()
    assert finish(client.begin_restore(az_backup.folder_url, sas_token=az_backup.sas, key_name=name)) is None
    first = wire.start_call(mark)
    assert first["method"] == "PUT" and first["path"].lower() == f"/keys/{name}/restore".lower(), wire.describe(mark)
    assert json.loads(first["request"]).get("folder"), first["request"]

    live, deleted = snapshot(original)
    assert live.get(name) == dataset.versions[name], f"restored versions {live.get(name)} != {dataset.versions[name]}"
    assert {k: v for k, v in live.items() if k != name} == before_live, "selective restore changed other keys"
    assert deleted == before_deleted
    for v in dataset.versions[name]:
        k = kc.get_key(name, v)
        assert dict(k.properties.tags or {}) == dataset.tags[(name, v)]
        crypto, rec = remote_crypto(original, k.id)
        digest = digest_for("ES384")
        sig = crypto.sign(SignatureAlgorithm.es384, digest).signature
        rec.assert_remote("sign")
        ec_verify(ec_public_from_jwk(dataset.public[(name, v)]), "ES384", digest, sig, "P-384")

    # A key the backup does not have: the job fails and nothing appears.
    missing = uniq("bk-never")
    code, message = expect_refused(
        lambda: client.begin_restore(az_backup.folder_url, sas_token=az_backup.sas, key_name=missing),
        wire, "selective restore of a key the backup lacks")
    with pytest.raises(ResourceNotFoundError):
        kc.get_key(missing)


def _wait_purged(kc, name: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            kc.get_deleted_key(name)
        except ResourceNotFoundError:
            return
        assert time.monotonic() < deadline, f"purge of {name} did not complete"
        time.sleep(0.2)


def _copy_backup(src_folder_url: str, dst_root: Path) -> Path:
    src = Path(urlparse(src_folder_url).path)
    dst_root.mkdir(parents=True, exist_ok=True)
    dst = dst_root / src.name
    shutil.copytree(src, dst)
    return dst


def test_tampered_backup_is_refused_and_changes_nothing(dir_backup, recovered, dataset, bk_tmp):
    # A marker key that a full restore would remove, and no key named like the selective-restore target (so a
    # selective restore would have room to bring it back, and only the damage can stop it).
    kc = recovered.key_client()
    marker = uniq("bk-marker")
    kc.create_ec_key(marker, curve="P-256", hardware_protected=True)
    live, deleted = snapshot(recovered)
    if dataset.sel in live:
        kc.begin_delete_key(dataset.sel).wait(timeout=30)
    if dataset.sel in live or dataset.sel in deleted:
        kc.purge_deleted_key(dataset.sel)
        _wait_purged(kc, dataset.sel)
    before = snapshot(recovered)
    wire = Wire()
    client = backup_client(recovered, wire)

    cases: list[tuple[str, Callable[[Path], None]]] = [
        ("one flipped bit in state.bin", lambda d: _flip((d / "state.bin"), 200)),
        ("one flipped bit in the last byte of state.bin", lambda d: _flip((d / "state.bin"), -1)),
        ("truncated state.bin", lambda d: (d / "state.bin").write_bytes((d / "state.bin").read_bytes()[:-40])),
        ("empty state.bin", lambda d: (d / "state.bin").write_bytes(b"")),
        ("state.bin missing", lambda d: (d / "state.bin").unlink()),
    ]
    for i, (why, damage) in enumerate(cases):
        folder = _copy_backup(dir_backup.folder_url, bk_tmp / f"tampered-{i}")
        damage(folder)
        code, message = expect_refused(lambda: client.begin_restore(folder.as_uri()), wire, f"restore of {why}")
        assert snapshot(recovered) == before, f"a refused restore ({why}) changed the instance"
        # the selective restore reads the same file
        expect_refused(lambda: client.begin_restore(folder.as_uri(), key_name=dataset.sel), wire,
                       f"selective restore of {why}")
        assert snapshot(recovered) == before, f"a refused selective restore ({why}) changed the instance"

    kc.get_key(marker)  # still there
    # The undamaged backup restores the key: the refusals above were the damage's doing.
    assert finish(client.begin_restore(dir_backup.folder_url, key_name=dataset.sel)) is None
    assert snapshot(recovered)[0].get(dataset.sel) == dataset.versions[dataset.sel]


def test_tampered_blob_in_azurite_is_refused(az_backup, recovered, azurite):
    before = snapshot(recovered)
    wire = Wire()
    client = backup_client(recovered, wire)
    container = azurite.create_container("tampered")
    folder = az_backup.folder_url.rsplit("/", 1)[1]
    state = bytearray(azurite.get_blob(f"{az_backup.folder_url}/state.bin").content)
    state[len(state) // 2] ^= 0x01
    azurite.put_blob(f"{container}/{folder}/state.bin", bytes(state))
    azurite.put_blob(f"{container}/{folder}/manifest.json",
                     azurite.get_blob(f"{az_backup.folder_url}/manifest.json").content)
    expect_refused(lambda: client.begin_restore(f"{container}/{folder}", sas_token=azurite.sas()), wire,
                   "restore of a tampered blob")
    assert snapshot(recovered) == before, "a refused restore from Azurite changed the instance"
    # the untouched copy of the same folder still restores (pre-restore check: changes nothing)
    assert finish(client.begin_pre_restore(az_backup.folder_url, sas_token=az_backup.sas)) is None


def _flip(path: Path, index: int) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def test_backup_of_another_security_domain_is_refused(recovered, bk_tmp, dataset):
    stranger = CofferServer(bk_tmp / "stranger", name="python-bk-stranger").start()
    try:
        name = uniq("bk-stranger")
        stranger.key_client().create_ec_key(name, curve="P-256", hardware_protected=True)
        # also a key named like one of the data set, so a selective restore would have something to take
        stranger.key_client().create_ec_key(dataset.ec, curve="P-256", hardware_protected=True)
        d = bk_tmp / "stranger-backups"
        d.mkdir()
        folder_url = finish(backup_client(stranger, Wire()).begin_backup(d.as_uri())).folder_url
    finally:
        _stop(stranger)
    before = snapshot(recovered)
    wire = Wire()
    client = backup_client(recovered, wire)
    code, message = expect_refused(lambda: client.begin_restore(folder_url), wire, "restore of another domain's backup")
    assert snapshot(recovered) == before, "a backup of another security domain changed the instance"
    with pytest.raises(ResourceNotFoundError):
        recovered.key_client().get_key(name)
    expect_refused(lambda: client.begin_pre_restore(folder_url), wire, "pre-restore check of another domain's backup")
    kc = recovered.key_client()
    live, deleted = snapshot(recovered)
    if dataset.ec in live:
        kc.begin_delete_key(dataset.ec).wait(timeout=30)
    if dataset.ec in live or dataset.ec in deleted:
        kc.purge_deleted_key(dataset.ec)
        _wait_purged(kc, dataset.ec)
    before = snapshot(recovered)
    expect_refused(lambda: client.begin_restore(folder_url, key_name=dataset.ec), wire,
                   "selective restore from another domain's backup")
    assert snapshot(recovered) == before


def test_pre_backup_and_pre_restore_checks(original, az_backup, azurite, recovered):
    wire = Wire()
    client = backup_client(original, wire)
    assert finish(client.begin_pre_backup(az_backup.container, sas_token=az_backup.sas)) is None
    code, message = expect_refused(
        lambda: client.begin_pre_backup(az_backup.container, sas_token=azurite.sas(key=b"\x07" * 64)),
        wire, "pre-backup with a forged SAS")
    before = snapshot(recovered)
    rclient = backup_client(recovered, wire)
    assert finish(rclient.begin_pre_restore(az_backup.folder_url, sas_token=az_backup.sas)) is None
    assert snapshot(recovered) == before, "a pre-restore check changed the instance"


def test_bad_storage_is_a_failed_job_with_a_clear_message(original, azurite, az_backup):
    wire = Wire()
    client = backup_client(original, wire)
    container = az_backup.container

    forged = azurite.sas(key=b"\x07" * 64)
    code, message = expect_refused(lambda: client.begin_backup(container, sas_token=forged), wire, "forged SAS")
    assert "sas" in message.lower(), f"the message should say the SAS token was refused: {message}"
    assert forged.split("sig=")[1] not in message, "the SAS signature leaked into the job's message"

    expired = azurite.sas(expiry="2020-01-01T00:00:00Z")
    code, message = expect_refused(lambda: client.begin_backup(container, sas_token=expired), wire, "expired SAS")
    assert "sas" in message.lower(), message

    code, message = expect_refused(
        lambda: client.begin_backup(f"{azurite.account_url}/no-such-container-{uuid.uuid4().hex[:8]}",
                                    sas_token=az_backup.sas), wire, "missing container")
    assert "exist" in message.lower(), message

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, message = expect_refused(
        lambda: client.begin_backup(f"http://127.0.0.1:{port}/devstoreaccount1/c", sas_token=az_backup.sas),
        wire, "unreachable storage")
    # One generic message for every unreachable target (no port-scan oracle); the cause is in the server log.
    assert message == "The backup storage could not be reached.", message

    # A destination the HSM's [backup] settings do not allow: refused before any connection.
    code, message = expect_refused(
        lambda: client.begin_backup("https://storage.example.invalid/c", sas_token=az_backup.sas),
        wire, "a destination outside [backup] blob_endpoints")
    assert "not an allowed backup destination" in message, message

    code, message = expect_refused(
        lambda: client.begin_restore(f"{container}/mhsm-nothing-20200101000000", sas_token=az_backup.sas),
        wire, "restore of a folder that does not exist")


class Blackhole:
    """A loopback TCP server that accepts connections and never answers: a storage endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self) -> None:
        self._closed = True
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.sock.close()


def test_one_job_at_a_time_and_the_data_plane_keeps_serving(original, dataset, az_backup, azurite):
    wire = Wire()
    client = backup_client(original, wire)
    hole = Blackhole()
    try:
        held = client.begin_backup(f"http://127.0.0.1:{hole.port}/devstoreaccount1/held", sas_token=az_backup.sas)
        deadline = time.monotonic() + 20
        while not hole.conns and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hole.conns, "the backup job never connected to its storage"
        assert not held.done() and held.status().lower() == "inprogress", held.status()

        # A second job while the first runs: refused at the start (409) or Failed.
        code, message = expect_refused(lambda: client.begin_backup(az_backup.container,
                                                                   sas_token=az_backup.sas),
                                       wire, "a second backup while one runs")
        code, message = expect_refused(lambda: client.begin_restore(az_backup.folder_url,
                                                                    sas_token=az_backup.sas),
                                       wire, "a restore while a backup runs")
        assert not held.done(), "the first job ended early"

        # The data plane keeps serving during a backup.
        kc = original.key_client()
        crypto, rec = remote_crypto(original, kc.get_key(dataset.ec).id)
        crypto.sign(SignatureAlgorithm.es256, digest_for("ES256"))
        rec.assert_remote("sign")
    finally:
        hole.close()
    # The storage hung up: the held job fails with a clear message.
    mark = wire.mark()
    with pytest.raises(HttpResponseError):
        finish(held)
    body = wire.last_job_body(mark)
    assert body.get("status") == "Failed", body
    assert (body.get("error") or {}).get("message") == "The backup storage could not be reached.", body
    # and the next job runs
    result = finish(client.begin_backup(azurite.create_container("after"), sas_token=azurite.sas()))
    assert FOLDER_RE.fullmatch(result.folder_url.rsplit("/", 1)[1]), result.folder_url
