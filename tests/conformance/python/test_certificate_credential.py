"""CertificateCredential (client assertion) against the built-in token service."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
import uuid

import jwt  # PyJWT (installed with msal)
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from coffer_harness import uniq
from localcrypto import new_rsa


def _self_signed(cn: str):
    key = new_rsa(2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(key, cert) -> tuple[bytes, bytes]:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _register(server, token, cert_pem: bytes) -> requests.Response:
    return requests.post(
        f"{server.url}/coffer/v1/principals/{server.creds['object_id']}/certificates?api-version=2025-07-01",
        json={"certificate": cert_pem.decode()},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        verify=server.ca,
        timeout=30,
    )


def _cert_credential(server, path):
    return CertificateCredential(server.tenant, server.creds["client_id"], certificate_path=str(path),
                                 authority=server.creds["authority"], disable_instance_discovery=True,
                                 connection_verify=server.ca)


@pytest.fixture(scope="module")
def registered_cert(server, token, tmp_path_factory):
    key, cert = _self_signed("coffer-conformance-client")
    key_pem, cert_pem = _pem(key, cert)
    r = _register(server, token, cert_pem)
    assert r.status_code == 201, f"register certificate: {r.status_code} {r.text}"
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()
    assert r.json().get("thumbprint") == base64.urlsafe_b64encode(sha1).rstrip(b"=").decode(), r.text
    path = tmp_path_factory.mktemp("cert") / "client.pem"
    path.write_bytes(key_pem + cert_pem)
    return key, cert, path


def test_certificate_credential_creates_key(server, registered_cert):
    _, _, path = registered_cert
    cred = _cert_credential(server, path)
    kc = server.key_client(cred)
    key = kc.create_ec_key(uniq("certcred"), curve="P-256", hardware_protected=True)
    assert kc.get_key(key.name).id == key.id
    tok = cred.get_token(server.scope).token
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert claims.get("oid") == server.creds["object_id"], claims


def test_unregistered_certificate_is_refused(server, registered_cert, tmp_path):
    key, cert = _self_signed("not-registered")
    key_pem, cert_pem = _pem(key, cert)
    path = tmp_path / "other.pem"
    path.write_bytes(key_pem + cert_pem)
    with pytest.raises(ClientAuthenticationError):
        _cert_credential(server, path).get_token(server.scope)


def _assertion(server, signing_key, cert, token_endpoint, **claim_overrides) -> str:
    sha1 = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()
    now = int(time.time())
    claims = {"aud": token_endpoint, "iss": server.creds["client_id"], "sub": server.creds["client_id"],
              "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 600}
    claims.update(claim_overrides)
    return jwt.encode(claims, signing_key, algorithm="RS256",
                      headers={"x5t": base64.urlsafe_b64encode(sha1).rstrip(b"=").decode()})


def _post_assertion(server, assertion, token_endpoint) -> requests.Response:
    return requests.post(token_endpoint, data={
        "grant_type": "client_credentials",
        "client_id": server.creds["client_id"],
        "scope": server.scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }, verify=server.ca, timeout=30)


def test_forged_assertions_are_refused(server, registered_cert):
    key, cert, _ = registered_cert
    te = f"{server.creds['authority']}/{server.tenant}/oauth2/v2.0/token"
    # control: a correct assertion works
    ok = _post_assertion(server, _assertion(server, key, cert, te), te)
    assert ok.status_code == 200 and "access_token" in ok.json(), ok.text
    # the registered thumbprint, but signed by another key
    other, _ = _self_signed("attacker")
    r = _post_assertion(server, _assertion(server, other, cert, te), te)
    assert r.status_code in (400, 401) and r.json().get("error") == "invalid_client", r.text
    # expired
    past = int(time.time()) - 3600
    r = _post_assertion(server, _assertion(server, key, cert, te, iat=past - 600, nbf=past - 600, exp=past), te)
    assert r.status_code in (400, 401) and "access_token" not in r.json(), r.text
    # wrong audience
    r = _post_assertion(server, _assertion(server, key, cert, te, aud="https://elsewhere.example/token"), te)
    assert r.status_code in (400, 401) and "access_token" not in r.json(), r.text
    # wrong issuer/subject
    r = _post_assertion(server, _assertion(server, key, cert, te, iss="someone-else", sub="someone-else"), te)
    assert r.status_code in (400, 401) and "access_token" not in r.json(), r.text


def test_register_certificate_requires_auth(server):
    _, cert = _self_signed("no-auth")
    r = _register(server, None, cert.public_bytes(serialization.Encoding.PEM))
    assert r.status_code == 401, (r.status_code, r.text)


def test_register_garbage_certificate_is_400(server, token):
    r = _register(server, token, b"-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n")
    assert r.status_code == 400, (r.status_code, r.text)
