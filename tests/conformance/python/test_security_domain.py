"""Security domain, end to end (issue 4, "How it is proven"; docs/SECURITY-DOMAIN.md; security-domain.md).

- The unmodified `azure-keyvault-securitydomain` client activates a fresh *provisioned* instance with three officer
  certificates made by `coffer sd keys` and quorum 2; the poller ends in `Success`; before that every key call gets
  409 HsmNotActivated.
- Every pair of the three officer keys opens the file (checked here independently of Coffer, from the format
  document, and through Coffer: `coffer sd restore-blob` + upload into a fresh recovery-mode instance, which then
  restores a key backup taken on the original and signs with it, the signature verifying under the ORIGINAL public
  key); a single officer key does not.
- Recovery with the SDK's `get_transfer_key` / `begin_upload` and with `coffer sd exchange-key` / `coffer sd upload`.
- Bad input: too few certificates, quorum out of range, bad certificates, the security-domain file uploaded as a
  restore blob, a blob made for another exchange key, a tampered blob, an upload to an active instance: the status
  the guide promises, and no change of state.
- Re-download on an active instance re-wraps the SAME domain secret for new officers.

Server starts: one provisioned original for the module, one recovery instance per pair, one for bad uploads and
one provisioned instance for bad downloads.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.administration import KeyVaultAccessControlClient
from azure.keyvault.keys import KeyVaultKey
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.securitydomain.models import CertificateInfo, SecurityDomain
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from coffer_harness import CRYPTO_USER, CofferServer, Recorder, ServerError, grant_crypto_roles, remote_crypto, uniq
from localcrypto import b64url_decode, digest_for, ec_public_from_jwk, ec_verify
from sdtools import (
    cert_der,
    decrypt_share,
    describe,
    error_body,
    error_code,
    lagrange_at_zero,
    load_cert,
    officer_jwk,
    officer_private_key,
    open_enc_data,
    raw,
    run_coffer,
    sd_client,
    share_points,
    x5t_s256,
)

OFFICERS = (1, 2, 3)
PAIRS = list(itertools.combinations(OFFICERS, 2))


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def officers(tmp_path_factory) -> Path:
    """officer1..3 (the original's officers), rotated1..3 (a second set, for re-download) and stranger1 (in no file),
    each NAME.pem + NAME.cer, made by `coffer sd keys`."""
    d = tmp_path_factory.mktemp("officers")
    for name, count in (("officer", 3), ("rotated", 3), ("stranger", 1)):
        run_coffer("sd", "keys", "--count", count, "--name", name, "--out", d, "--bits", 2048)
    for name in ("officer1", "officer2", "officer3", "rotated1", "rotated2", "rotated3", "stranger1"):
        assert (d / f"{name}.pem").stat().st_mode & 0o077 == 0, f"{name}.pem must be private (0600)"
        cert = load_cert(d / f"{name}.cer")
        assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    return d


@dataclass
class Original:
    """A provisioned instance activated by the SDK, with an EC key and its backup."""
    server: CofferServer
    sd_text: str = ""
    sd_file: Path = None
    poller_status: str = ""
    download_status: dict = field(default_factory=dict)
    download_calls: list = field(default_factory=list)
    before: dict = field(default_factory=dict)
    key: KeyVaultKey = None
    backup: bytes = b""


@pytest.fixture(scope="module")
def original(tmp_path_factory, officers) -> Original:
    """Starts a provisioned instance (no --dev), records how it behaves before activation, activates it with the
    unmodified SecurityDomainClient (three officer certificates, quorum 2), then creates a P-256 key and backs it up.
    The checks are in test_sdk_activates_a_provisioned_instance."""
    base = tmp_path_factory.mktemp("sd-original")
    srv = CofferServer(base / "data", name="python-sd-original", dev=False)
    srv.start()
    try:
        o = Original(server=srv)
        # ---- before activation
        try:
            srv.key_client().create_ec_key(uniq("early"), curve="P-256")
            o.before["sdk_create"] = "no error"
        except HttpResponseError as e:
            o.before["sdk_create"] = (e.status_code, error_code(e))
        r = raw(srv, "GET", "/keys")
        o.before["raw_list"] = (r.status_code, r.text)
        try:
            grant_crypto_roles(srv.port, srv.creds)
            o.before["role_write"] = "accepted"
        except ServerError as e:
            o.before["role_write"] = str(e)
        r = raw(srv, "PUT", f"/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", json={
            "properties": {"principalId": srv.creds["object_id"], "roleDefinitionId":
                           f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_USER}"}})
        o.before["raw_role_write"] = (r.status_code, r.text)
        try:
            acc = KeyVaultAccessControlClient(srv.url, srv.credential(), verify_challenge_resource=False,
                                              connection_verify=srv.ca)
            o.before["role_read"] = [a.properties.role_definition_id for a in acc.list_role_assignments("/")]
        except HttpResponseError as e:
            o.before["role_read"] = f"{e.status_code} {error_body(e)}"
        client = sd_client(srv)
        o.before["pending"] = dict(client.get_download_status())

        # ---- activation with the unmodified SDK
        rec = Recorder()
        client = sd_client(srv, raw_response_hook=rec)
        info = CertificateInfo(certificates=[officer_jwk(officers / f"officer{i}.cer") for i in OFFICERS], required=2)
        poller = client.begin_download(certificate_info=info)
        sd = poller.result()
        o.poller_status = poller.status()
        o.download_calls = rec.take()
        o.sd_text = sd.value
        o.sd_file = base / "security-domain.json"
        o.sd_file.write_text(sd.value)
        o.download_status = dict(client.get_download_status())

        # ---- after: keys work once a crypto role is assigned
        grant_crypto_roles(srv.port, srv.creds)
        kc = srv.key_client()
        o.key = kc.create_ec_key(uniq("sd-orig"), curve="P-256")
        o.backup = kc.backup_key(o.key.name)
        yield o
    finally:
        rc = srv.stop()
        assert rc == 0, f"{srv.name}: exit status {rc} after SIGTERM"


def assert_not_activated(server: CofferServer, what: str) -> None:
    r = raw(server, "GET", "/keys")
    assert r.status_code == 409, f"{what}: a key call must get 409 until activation: {describe(r)}"
    assert r.json().get("error", {}).get("code") == "HsmNotActivated", f"{what}: {describe(r)}"


def sign_and_verify_under(server: CofferServer, key_id: str, original_key: KeyVaultKey) -> None:
    """ES256 over a SHA-256 digest, done by `server`, verified with the ORIGINAL key's public key."""
    crypto, rec = remote_crypto(server, key_id)
    digest = digest_for("ES256", b"signed after the security-domain " + server.name.encode())
    sig = crypto.sign(SignatureAlgorithm.es256, digest).signature
    rec.assert_remote("sign")
    ec_verify(ec_public_from_jwk(original_key.key), "ES256", digest, sig, "P-256")


def make_blob(sd_file: Path, officers: Path, names, exchange_cert: Path, out: Path, ok: bool = True):
    keys = [officers / f"{n}.pem" for n in names]
    return run_coffer("sd", "restore-blob", "--sd-file", sd_file, "--keys", *keys, "--exchange-cert", exchange_cert,
                      "--out", out, ok=ok)


# ------------------------------------------------------------------------------------------------ activation
def test_sdk_activates_a_provisioned_instance(original, officers):
    o = original
    # before: keys refused with HsmNotActivated, role writes refused, role reads and the status work
    assert o.before["sdk_create"] == (409, "HsmNotActivated"), o.before["sdk_create"]
    status, text = o.before["raw_list"]
    assert status == 409 and json.loads(text)["error"]["code"] == "HsmNotActivated", (status, text)
    assert "HsmNotActivated" in o.before["role_write"], f"role assignment before activation: {o.before['role_write']}"
    status, text = o.before["raw_role_write"]
    assert status == 409 and json.loads(text)["error"]["code"] == "HsmNotActivated", (status, text)
    assert isinstance(o.before["role_read"], list) and o.before["role_read"], \
        f"reading role assignments must work before activation: {o.before['role_read']}"
    assert o.before["pending"].get("status") != "Success", o.before["pending"]

    # the SDK's poller ran to the end, polling the Azure-AsyncOperation URL without api-version
    assert o.poller_status == "Success", o.poller_status
    assert o.download_status.get("status") == "Success", o.download_status
    assert ("POST", "/securitydomain/download", 202) in o.download_calls, o.download_calls
    assert ("GET", "/securitydomain/download/pending", 200) in o.download_calls, o.download_calls

    # the file, in the Azure format (security-domain.md section 5)
    doc = json.loads(o.sd_text)
    assert doc["version"] == 2
    shared = doc["SharedKeys"]
    assert shared["key_algorithm"] == "shamir_share" and shared["required"] == 2, shared
    want = [x5t_s256(cert_der(officers / f"officer{i}.cer")) for i in OFFICERS]
    assert [s["x5t_256"] for s in shared["enc_shares"]] == want, "one share per certificate, in request order"
    assert doc["EncData"]["kdf"] == "sp108_kdf"
    assert doc["EncData"]["data"] and all(len(d["compact_jwe"].split(".")) == 5 for d in doc["EncData"]["data"])

    # after: the key made after activation signs
    assert o.key.key.crv == "P-256" and o.backup
    sign_and_verify_under(o.server, o.key.id, o.key)


# ------------------------------------------------------------------------------------------------ quorum
def test_every_pair_opens_the_file_and_one_share_does_not(original, officers):
    """Independent of Coffer's code: decrypt each officer's share, check the share layout (x = 1..3 in certificate
    order, values in GF(257)), rebuild the master key from every pair and open every EncData item with it."""
    doc = json.loads(original.sd_text)
    points = {}
    for i, entry in zip(OFFICERS, doc["SharedKeys"]["enc_shares"]):
        share = decrypt_share(entry["enc_key"], officer_private_key(officers / f"officer{i}.pem"))
        assert len(share) == 64, f"a 32-byte master key gives a 64-byte share, got {len(share)}"
        points[i] = share_points(share)
        assert points[i][0] == i, f"officer {i}'s share carries x = {points[i][0]}"

    masters, plaintexts = {}, {}
    for pair in PAIRS:
        masters[pair] = lagrange_at_zero([points[i] for i in pair])
        plaintexts[pair] = open_enc_data(doc, masters[pair])
    assert len(set(masters.values())) == 1, "every pair must rebuild the same master key"
    assert len({json.dumps({k: v.hex() for k, v in p.items()}) for p in plaintexts.values()}) == 1
    assert len(next(iter(masters.values()))) == 32

    for i in OFFICERS:  # one share alone is just noise: read as a key, it opens nothing
        with pytest.raises(ValueError):
            open_enc_data(doc, bytes(v % 256 for v in points[i][1]))


def test_one_officer_cannot_make_a_restore_blob(original, officers, tmp_path):
    """`coffer sd restore-blob` with fewer than the quorum of (distinct, matching) keys fails clearly and writes
    nothing. (The exchange certificate can be any RSA certificate for this: the command is offline.)"""
    exchange = officers / "stranger1.cer"
    for names in (["officer1"], ["officer2"], ["officer3"], ["officer2", "officer2"], ["officer1", "stranger1"]):
        out = tmp_path / f"blob-{'-'.join(names)}.json"
        p = make_blob(original.sd_file, officers, names, exchange, out, ok=False)
        msg = p.stderr.lower()
        assert "share" in msg and ("2 required" in msg or "quorum" in msg or "too few" in msg), \
            f"{names}: unclear error: {p.stderr}"
        assert not out.exists(), f"{names}: a failed restore-blob must not write {out}"


# ------------------------------------------------------------------------------------------------ recovery
@pytest.mark.parametrize("pair,uploader", [((1, 3), "sdk"), ((2, 1), "coffer"), ((3, 2), "coffer")],
                         ids=["officers-1-3-sdk-upload", "officers-2-1-coffer-upload", "officers-3-2-coffer-upload"])
def test_recovery_from_a_pair_of_officers(pair, uploader, original, officers, make_server, tmp_path):
    a, b = pair
    rec = make_server(f"sd-recovery-{a}{b}", dev=False, recovery=True)
    creds_file = rec.data_dir / "admin-credentials.json"
    assert_not_activated(rec, "recovery mode")
    client = sd_client(rec)

    # the transfer key, as the SDK gets it: a JSON *string* holding a JWK with x5c (security-domain.md section 8)
    tk = client.get_transfer_key()
    assert tk.key_format == "jwk", tk
    assert isinstance(tk["transfer_key"], str), f"transfer_key must be a JSON string, got {type(tk['transfer_key'])}"
    jwk = json.loads(tk["transfer_key"])
    assert jwk["kty"] == "RSA" and isinstance(jwk["x5c"], list) and len(jwk["x5c"]) == 1, jwk
    der = base64.b64decode(jwk["x5c"][0], validate=True)  # standard base64
    cert = x509.load_der_x509_certificate(der)
    pub = cert.public_key()
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size >= 2048
    assert int.from_bytes(b64url_decode(jwk["n"]), "big") == pub.public_numbers().n, "n must match x5c[0]"

    # coffer sd exchange-key gives the same certificate
    exchange = tmp_path / "exchange.cer"
    run_coffer("sd", "exchange-key", "--creds", creds_file, "--out", exchange)
    assert cert_der(exchange) == der, "coffer sd exchange-key and the SDK's transfer key differ"

    # the officers, offline
    blob = tmp_path / "restore-blob.json"
    make_blob(original.sd_file, officers, [f"officer{a}", f"officer{b}"], exchange, blob)
    doc = json.loads(blob.read_text())
    assert "SharedKeys" not in doc and doc["WrappedKey"]["x5t_256"] == x5t_s256(der), doc.get("WrappedKey")

    # upload
    if uploader == "sdk":
        poller = client.begin_upload(SecurityDomain(value=blob.read_text()))
        assert poller.result() is None
        assert str(poller.status()).lower() == "success", poller.status()
    else:
        run_coffer("sd", "upload", "--creds", creds_file, "--blob", blob)
    status = dict(client.get_upload_status())
    assert status.get("status") == "Success", status

    # the recovered instance holds the original domain secret: the original's key backup restores and signs
    grant_crypto_roles(rec.port, rec.creds)
    kc = rec.key_client()
    restored = kc.restore_key_backup(original.backup)
    assert restored.name == original.key.name
    assert (restored.key.x, restored.key.y) == (original.key.key.x, original.key.key.y)
    sign_and_verify_under(rec, restored.id, original.key)

    if uploader == "sdk":
        # a second upload to the now active instance: 409, and nothing changes
        with pytest.raises(HttpResponseError) as ei:
            client.begin_upload(SecurityDomain(value=blob.read_text())).result()
        assert ei.value.status_code == 409, f"{ei.value.status_code} {error_body(ei.value)}"
        assert dict(client.get_upload_status()).get("status") == "Success"
        sign_and_verify_under(rec, restored.id, original.key)


def test_upload_to_an_active_instance_is_refused(original, officers, tmp_path):
    """The original (active since its download): an upload gets 409 with the Azure error body; its keys are untouched.
    (Its "transfer key" exists only while a new download waits for the officers' consent: docs/SECURITY-DOMAIN.md.)"""
    srv = original.server
    client = sd_client(srv)
    with pytest.raises(HttpResponseError) as ei:
        client.get_transfer_key()
    assert ei.value.status_code == 409, f"transfer key of an active instance with nothing pending: {ei.value.status_code}"

    blob = tmp_path / "blob.json"
    make_blob(original.sd_file, officers, ["officer1", "officer2"], officers / "stranger1.cer", blob)
    with pytest.raises(HttpResponseError) as ei:
        client.begin_upload(SecurityDomain(value=blob.read_text())).result()
    assert ei.value.status_code == 409, f"{ei.value.status_code} {error_body(ei.value)}"
    r = raw(srv, "POST", "/securitydomain/upload", json={"value": blob.read_text()})
    assert r.status_code == 409, describe(r)
    err = r.json().get("error", {})
    assert err.get("code") and err.get("message"), describe(r)

    assert dict(client.get_download_status()).get("status") == "Success"
    sign_and_verify_under(srv, original.key.id, original.key)


def test_bad_uploads_change_nothing_and_redownload_rewraps_the_same_secret(original, officers, make_server, tmp_path):
    rec = make_server("sd-recovery-bad", dev=False, recovery=True)
    creds_file = rec.data_dir / "admin-credentials.json"
    client = sd_client(rec)
    exchange = tmp_path / "exchange.cer"
    run_coffer("sd", "exchange-key", "--creds", creds_file, "--out", exchange)
    exchange_der = cert_der(exchange)

    good = tmp_path / "good.json"
    make_blob(original.sd_file, officers, ["officer1", "officer2"], exchange, good)
    other = tmp_path / "other-exchange.json"
    make_blob(original.sd_file, officers, ["officer1", "officer2"], officers / "stranger1.cer", other)
    tampered = json.loads(good.read_text())
    jwe = tampered["EncData"]["data"][0]["compact_jwe"].split(".")
    jwe[3] = ("B" if jwe[3][0] != "B" else "C") + jwe[3][1:]  # first ciphertext character
    tampered["EncData"]["data"][0]["compact_jwe"] = ".".join(jwe)

    cases = {
        "a blob made for another exchange key": other.read_text(),
        "the security-domain file itself": original.sd_text,
        "a tampered blob": json.dumps(tampered),
        "not JSON": "this is not a restore blob",
    }
    problems = []
    for what, value in cases.items():
        try:
            client.begin_upload(SecurityDomain(value=value)).result()
            problems.append(f"{what}: accepted")
        except HttpResponseError as e:
            if e.status_code != 400:
                problems.append(f"{what}: {e.status_code} {error_body(e)} (expected 400)")
        # state unchanged: still waiting for an upload, same exchange key, keys refused
        assert_not_activated(rec, f"after {what}")
        assert dict(client.get_upload_status()).get("status") != "Success", what
        tk = json.loads(client.get_transfer_key()["transfer_key"])
        assert base64.b64decode(tk["x5c"][0]) == exchange_der, f"the exchange key changed after {what}"
    assert not problems, "\n".join(problems)

    # the Azure error body, and a clear message for the most likely mistake
    r = raw(rec, "POST", "/securitydomain/upload", json={"value": original.sd_text})
    assert r.status_code == 400, describe(r)
    err = r.json()["error"]
    assert err["code"] and "security-domain file" in err["message"], describe(r)

    # re-download on the ACTIVE original for a second set of officers, quorum 3 of 3. The Administrator alone (the
    # unmodified SDK, as `az keyvault security-domain download` would) is refused with a message saying why ...
    info = CertificateInfo(certificates=[officer_jwk(officers / f"rotated{i}.cer") for i in OFFICERS], required=3)
    with pytest.raises(HttpResponseError) as ei:
        sd_client(original.server).begin_download(certificate_info=info).result()
    assert ei.value.status_code == 403 and "quorum" in str(error_body(ei.value)), error_body(ei.value)
    # ... and accepted with a quorum proof of the current officers, made with the officer tools (`coffer sd`)
    admin_creds = original.server.data_dir / "admin-credentials.json"
    proof_exchange = tmp_path / "proof-exchange.cer"
    run_coffer("sd", "exchange-key", "--creds", admin_creds, "--out", proof_exchange)
    make_blob(original.sd_file, officers, ["officer1", "officer2"], proof_exchange, tmp_path / "proof.json")
    rotated_file = tmp_path / "rotated-security-domain.json"
    run_coffer("sd", "download", "--creds", admin_creds, "--certs", *[officers / f"rotated{i}.cer" for i in OFFICERS],
               "--quorum", 3, "--quorum-proof", tmp_path / "proof.json", "--out", rotated_file)
    rotated_text = rotated_file.read_text()
    # the proof is spent: the same proof again is refused
    run_coffer("sd", "download", "--creds", admin_creds, "--certs", *[officers / f"rotated{i}.cer" for i in OFFICERS],
               "--quorum", 3, "--quorum-proof", tmp_path / "proof.json", "--out", tmp_path / "again.json", ok=False)
    rotated = json.loads(rotated_text)
    assert rotated["SharedKeys"]["required"] == 3
    # independently: the new file opens with all three new officers to the same secrets as the old file
    old = json.loads(original.sd_text)
    old_points = [share_points(decrypt_share(e["enc_key"], officer_private_key(officers / f"officer{i}.pem")))
                  for i, e in zip((1, 2), old["SharedKeys"]["enc_shares"])]
    new_points = [share_points(decrypt_share(e["enc_key"], officer_private_key(officers / f"rotated{i}.pem")))
                  for i, e in zip(OFFICERS, rotated["SharedKeys"]["enc_shares"])]
    assert open_enc_data(rotated, lagrange_at_zero(new_points)) == open_enc_data(old, lagrange_at_zero(old_points)), \
        "a re-download must wrap the same domain secret"
    # two of three rotated officers are not enough now; the old officers do not open the new file
    make_blob(rotated_file, officers, ["rotated1", "rotated2"], exchange, tmp_path / "x.json", ok=False)
    make_blob(rotated_file, officers, ["officer1", "officer2"], exchange, tmp_path / "y.json", ok=False)

    # after all the refusals, a good upload (from the re-downloaded file, with `coffer sd upload`) still works
    rotated_blob = tmp_path / "rotated-blob.json"
    make_blob(rotated_file, officers, ["rotated3", "rotated1", "rotated2"], exchange, rotated_blob)
    run_coffer("sd", "upload", "--creds", creds_file, "--blob", rotated_blob)
    assert dict(client.get_upload_status()).get("status") == "Success"
    grant_crypto_roles(rec.port, rec.creds)
    restored = rec.key_client().restore_key_backup(original.backup)
    sign_and_verify_under(rec, restored.id, original.key)


# ------------------------------------------------------------------------------------------------ bad downloads
def _weak_cert_der() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak officer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_bad_downloads_leave_the_instance_provisioned(original, officers, make_server, tmp_path):
    prov = make_server("sd-provisioned-bad", dev=False)
    client = sd_client(prov)
    j = {i: officer_jwk(officers / f"officer{i}.cer") for i in OFFICERS}
    j[4] = officer_jwk(officers / "stranger1.cer")
    weak = officer_jwk(None, der=_weak_cert_der())
    garbage = officer_jwk(officers / "officer3.cer")
    garbage["x5c"] = [base64.b64encode(b"this is not a certificate").decode()]
    cases = {
        "two certificates": ([j[1], j[2]], 2),
        "quorum 1": ([j[1], j[2], j[3]], 1),
        "quorum above the certificate count": ([j[1], j[2], j[3]], 4),
        "the same certificate twice": ([j[1], j[1], j[2]], 2),
        "a 1024-bit RSA certificate": ([j[1], j[2], weak], 2),
        "x5c that is not a certificate": ([j[1], j[2], garbage], 2),
    }
    problems = []
    for what, (certs, required) in cases.items():
        try:
            client.begin_download(certificate_info=CertificateInfo(certificates=certs, required=required)).result()
            problems.append(f"{what}: accepted")
        except HttpResponseError as e:
            if e.status_code != 400:
                problems.append(f"{what}: {e.status_code} {error_body(e)} (expected 400)")
        assert_not_activated(prov, f"after {what}")
        assert dict(client.get_download_status()).get("status") != "Success", what
    assert not problems, "\n".join(problems)

    r = raw(prov, "POST", "/securitydomain/download",
            json={"certificates": [dict(j[1]), dict(j[2])], "required": 2})
    assert r.status_code == 400, describe(r)
    err = r.json()["error"]
    assert err["code"] and err["message"], describe(r)

    # `coffer sd download` then activates it, for four officers and quorum 3
    sd_file = tmp_path / "sd.json"
    certs = [officers / f"officer{i}.cer" for i in OFFICERS] + [officers / "stranger1.cer"]
    run_coffer("sd", "download", "--creds", prov.data_dir / "admin-credentials.json", "--certs", *certs,
               "--quorum", 3, "--out", sd_file)
    doc = json.loads(sd_file.read_text())
    assert doc["SharedKeys"]["required"] == 3
    assert [s["x5t_256"] for s in doc["SharedKeys"]["enc_shares"]] == [x5t_s256(cert_der(c)) for c in certs]
    assert dict(client.get_download_status()).get("status") == "Success"
    grant_crypto_roles(prov.port, prov.creds)
    kc = prov.key_client()
    key = kc.create_ec_key(uniq("sd-cli"), curve="P-256")
    sign_and_verify_under(prov, key.id, key)

    # another domain secret: the original's backup does not restore here
    with pytest.raises(HttpResponseError) as ei:
        kc.restore_key_backup(original.backup)
    assert 400 <= ei.value.status_code < 500, f"{ei.value.status_code} {error_body(ei.value)}"
