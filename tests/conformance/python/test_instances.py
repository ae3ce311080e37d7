"""Servers of their own: --resource, --hostname, and isolation between two instances (tokens, backups)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json

import jwt
import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm

from coffer_harness import check_admin_credentials_file, free_port, remote_crypto, uniq
from localcrypto import b64url, digest_for, ec_public_from_jwk, ec_verify

API = "2025-07-01"


def test_admin_credentials_file(admin_creds, server):
    assert admin_creds["url"] == server.url


def test_resource_option_lets_challenge_verification_stay_on(make_server):
    """--resource sets the challenge resource and the token audience (sdk-requirements.md §1.3): with
    resource https://0.0.1:PORT the SDK's own resource verification passes for https://127.0.0.1:PORT."""
    port = free_port()
    resource = f"https://0.0.1:{port}"
    srv = make_server("resource", port=port, extra_args=("--resource", resource))
    r = requests.get(f"{srv.url}/keys?api-version={API}", verify=srv.ca, timeout=30)
    assert r.status_code == 401
    assert r.headers.get("WWW-Authenticate") == f'Bearer authorization="{srv.url}/{srv.tenant}", resource="{resource}"'
    # default client: verify_challenge_resource stays True
    kc = KeyClient(srv.url, srv.credential(), connection_verify=srv.ca)
    key = kc.create_ec_key(uniq("res"), curve="P-256", hardware_protected=True)
    assert kc.get_key(key.name).id == key.id
    tok = srv.credential().get_token(f"{resource}/.default").token
    assert jwt.decode(tok, options={"verify_signature": False})["aud"] == resource
    # a token for the default audience (the url) is not for this resource
    r = requests.post(f"{srv.creds['authority']}/{srv.tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": srv.creds["client_id"],
        "client_secret": srv.creds["client_secret"], "scope": f"{srv.url}/.default"}, verify=srv.ca, timeout=30)
    if r.status_code == 200:
        wrong_aud = r.json()["access_token"]
        r2 = requests.get(f"{srv.url}/keys?api-version={API}", headers={"Authorization": f"Bearer {wrong_aud}"},
                          verify=srv.ca, timeout=30)
        assert r2.status_code == 401, f"token with aud={srv.url} accepted by an instance whose resource is {resource}"
    else:
        assert r.status_code in (400, 401), r.text


def test_hostname_option(make_server):
    srv = make_server("hostname", extra_args=("--hostname", "localhost"))
    assert srv.creds["url"] == f"https://localhost:{srv.port}", srv.creds["url"]
    kc = srv.key_client()
    key = kc.create_ec_key(uniq("host"), curve="P-256", hardware_protected=True)
    assert key.id.startswith(f"https://localhost:{srv.port}/keys/"), key.id
    crypto, rec = remote_crypto(srv, key.id)
    digest = digest_for("ES256")
    sig = crypto.sign(SignatureAlgorithm.es256, digest)
    rec.assert_remote("sign")
    ec_verify(ec_public_from_jwk(key.key), "ES256", digest, sig.signature, "P-256")


def test_two_instances_are_isolated(server, key_client, token, make_server):
    other = make_server("other")
    assert other.tenant != server.tenant, "two instances got the same tenant id"
    assert hashlib.sha256(open(other.ca, "rb").read()).digest() != hashlib.sha256(open(server.ca, "rb").read()).digest()
    # a token of the other instance is refused here (and the other way round)
    other_token = other.token()
    for srv, tok in ((server, other_token), (other, token)):
        r = requests.get(f"{srv.url}/keys?api-version={API}", headers={"Authorization": f"Bearer {tok}"},
                         verify=srv.ca, timeout=30)
        assert r.status_code == 401, f"{srv.name} accepted a token of another instance: {r.status_code}"
    # a key backup of this instance cannot be restored into the other one (different domain secret)
    name = uniq("xinst")
    key_client.create_oct_key(name, size=256, hardware_protected=True)
    blob = key_client.backup_key(name)
    with pytest.raises(HttpResponseError) as ei:
        other.key_client().restore_key_backup(blob)
    assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)
    assert name not in {p.name for p in other.key_client().list_properties_of_keys()}


def test_forged_tokens_are_refused(server, token):
    """alg=none and an HS256 token keyed with the public JWKS key (algorithm confusion) get the challenge."""
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    h_none = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": header.get("kid")}).encode())
    body = b64url(json.dumps(claims).encode())
    doc = requests.get(f"{server.creds['authority']}/{server.tenant}/v2.0/.well-known/openid-configuration",
                       verify=server.ca, timeout=30).json()
    jwks = requests.get(doc["jwks_uri"], verify=server.ca, timeout=30).json()["keys"]
    h_hs = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": header.get("kid")}).encode())
    forged = []
    forged.append(f"{h_none}.{body}.")
    for k in jwks:
        for secret in (json.dumps(k).encode(), json.dumps(k, separators=(",", ":")).encode(),
                       jwt.PyJWK(k).key.public_bytes(*_pem_args())):
            mac = hmac.new(secret, f"{h_hs}.{body}".encode(), hashlib.sha256).digest()
            forged.append(f"{h_hs}.{body}.{b64url(mac)}")
    # claims changed under the original signature
    changed = dict(claims, oid="00000000-0000-0000-0000-000000000000")
    forged.append(f"{token.split('.')[0]}.{b64url(json.dumps(changed).encode())}.{token.split('.')[2]}")
    for f in forged:
        r = requests.get(f"{server.url}/keys?api-version={API}", headers={"Authorization": f"Bearer {f}"},
                         verify=server.ca, timeout=30)
        assert r.status_code == 401, f"forged token accepted ({f[:60]}...): {r.status_code}"


def _pem_args():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


def test_token_for_another_audience_is_refused(server):
    r = requests.post(f"{server.creds['authority']}/{server.tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": server.creds["client_id"],
        "client_secret": server.creds["client_secret"], "scope": "https://vault.azure.net/.default"},
        verify=server.ca, timeout=30)
    if r.status_code == 200:
        tok = r.json()["access_token"]
        r2 = requests.get(f"{server.url}/keys?api-version={API}", headers={"Authorization": f"Bearer {tok}"},
                          verify=server.ca, timeout=30)
        assert r2.status_code == 401, "a token for another audience was accepted by the data plane"
    else:
        assert r.status_code in (400, 401), r.text


def test_concurrent_operations(server, key_client):
    """20 parallel signs and creates: no deadlock, every result correct."""
    key = key_client.create_ec_key(uniq("conc"), curve="P-256", hardware_protected=True)
    pub = ec_public_from_jwk(key.key)

    def sign(i):
        crypto, _ = remote_crypto(server, key.id)
        d = digest_for("ES256", f"message {i}".encode())
        return d, crypto.sign(SignatureAlgorithm.es256, d).signature

    def create(i):
        return key_client.create_oct_key(uniq(f"conc{i}"), size=128, hardware_protected=True).name

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        sigs = list(pool.map(sign, range(20), timeout=120))
        names = list(pool.map(create, range(20), timeout=120))
    for d, s in sigs:
        ec_verify(pub, "ES256", d, s, "P-256")
    assert len(set(names)) == 20
    listed = {p.name for p in key_client.list_properties_of_keys()}
    assert set(names) <= listed


def _encodings(secret: bytes) -> list[bytes]:
    import base64

    return [secret, secret.hex().encode(), secret.hex().upper().encode(), base64.b64encode(secret).rstrip(b"="),
            base64.urlsafe_b64encode(secret).rstrip(b"=")]


def test_key_material_is_never_stored_or_exported_in_clear(make_server):
    """Issue #2: key material is stored only encrypted; a backup is an encrypted blob. Import known secrets,
    then look for them (raw, hex, base64, base64url) in every file of the data dir and in the backup."""
    import os

    from localcrypto import int_bytes, new_rsa, oct_jwk, random_bytes, rsa_private_jwk

    srv = make_server("at-rest")
    kc = srv.key_client()
    k = random_bytes(32)
    rsa_priv = new_rsa(2048)
    kc.import_key(uniq("rest-oct"), oct_jwk(k), hardware_protected=True)
    rsa_name = uniq("rest-rsa")
    kc.import_key(rsa_name, rsa_private_jwk(rsa_priv), hardware_protected=True)
    d = int_bytes(rsa_priv.private_numbers().d, 256)
    p = int_bytes(rsa_priv.private_numbers().p)
    secrets = {"oct k": k, "rsa d": d, "rsa p": p}
    backup = kc.backup_key(rsa_name)

    def scan(when):
        for root, _, files in os.walk(srv.data_dir):
            for f in files:
                data = open(os.path.join(root, f), "rb").read()
                for label, secret in secrets.items():
                    for enc in _encodings(secret):
                        assert enc[:24] not in data, f"{when}: {label} found in clear in {os.path.join(root, f)}"

    scan("while running")
    for label, secret in secrets.items():
        for enc in _encodings(secret):
            assert enc[:24] not in backup, f"{label} found in clear in the key backup blob"
    assert srv.stop() == 0
    scan("after shutdown")


def test_private_files_are_0600(make_server):
    import stat

    srv = make_server("modes")
    for name in ("admin-credentials.json", "seal.key"):
        path = srv.data_dir / name
        assert path.exists(), f"{name} missing from the data dir (issue #2: seal key in <data-dir>/seal.key)"
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"


def test_sigint_is_graceful(make_server):
    import signal

    srv = make_server("sigint")
    srv.key_client().create_oct_key(uniq("int"), size=128, hardware_protected=True)
    srv.proc.send_signal(signal.SIGINT)
    rc = srv.proc.wait(timeout=30)
    assert rc == 0, f"SIGINT: exit status {rc}"
    assert srv.stop() == 0  # already exited: just collects the status
