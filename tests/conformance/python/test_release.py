"""Secure Key Release (docs/KEY-RELEASE.md) through the unmodified SDK: a dedicated server trusts a test
attestation authority (an ES256 key made here, its JWK Set in a file named by coffer.toml); an exportable RSA key
with a release policy (the SDK test's policy shape) is released to a TEE RSA key made here. The release JWS is
verified with its `x5c[0]` (issued by the server's CA for the host the SDK called), `key_hsm` is opened the way
Microsoft's clients do (RSA-OAEP-SHA1 or -SHA256, then RFC 5649, then PKCS#8) and the key is the HSM's. A token whose
claims do not match is refused with 403."""
from __future__ import annotations

import base64
import json
import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyExportEncryptionAlgorithm, KeyReleasePolicy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

from coffer_harness import uniq
from localcrypto import b64url, b64url_decode

AUTHORITY = "https://attest.python.test/"
ISSUER = "https://attest.python.test"


def sign_es256(key: ec.EllipticCurvePrivateKey, header: dict, claims: dict) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    r, s = utils.decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture
def skr(make_server, tmp_path):
    authority = ec.generate_private_key(ec.SECP256R1())
    nums = authority.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "attest-1", "use": "sig", "alg": "ES256",
           "x": b64url(nums.x.to_bytes(32, "big")), "y": b64url(nums.y.to_bytes(32, "big"))}
    jwks = tmp_path / "attest-jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    config = tmp_path / "coffer.toml"
    config.write_text(f'[[attestation_authorities]]\nissuer = "{AUTHORITY}"\njwks_file = "{jwks}"\n'
                      'algorithms = ["ES256"]\n')
    srv = make_server("release", extra_args=("--config", str(config)))
    tee = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return srv, authority, tee


def attestation_token(authority, tee, **overrides) -> str:
    pub = tee.public_key().public_numbers()
    now = int(time.time())
    claims = {
        "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 600, "sdk-test": True,
        "x-ms-isolation-tee": {"x-ms-attestation-type": "sevsnpvm"},
        "x-ms-runtime": {"keys": [{"kid": "TpmEphemeralEncryptionKey", "key_ops": ["encrypt"], "kty": "RSA",
                                   "e": b64url(pub.e.to_bytes(3, "big")),
                                   "n": b64url(pub.n.to_bytes(256, "big"))}]},
    }
    claims.update(overrides)
    return sign_es256(authority, {"alg": "ES256", "kid": "attest-1", "typ": "JWT"}, claims)


def verify_release(value: str, ca_path) -> tuple[dict, dict]:
    """Verifies the JWS like the confidential sidecar: signature with x5c[0], then the chain and host name."""
    h, p, s = value.split(".")
    header = json.loads(b64url_decode(h))
    payload = json.loads(b64url_decode(p))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    sig = b64url_decode(s)
    assert header["alg"] == "ES256", header
    half = len(sig) // 2
    der = utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
    leaf.public_key().verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    ca = x509.load_pem_x509_certificate(open(ca_path, "rb").read())
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName) or san.get_values_for_type(x509.IPAddress), san
    assert header["x5t#S256"] == b64url(leaf.fingerprint(hashes.SHA256()))
    return header, payload


def open_key_hsm(tee, key_hsm: str, enc: str) -> bytes:
    blob = json.loads(b64url_decode(key_hsm))
    assert blob["header"] == {"kid": "TpmEphemeralEncryptionKey", "alg": "dir", "enc": enc}
    ct = b64url_decode(blob["ciphertext"])
    h = {"CKM_RSA_AES_KEY_WRAP": hashes.SHA1, "RSA_AES_KEY_WRAP_256": hashes.SHA256}[enc]
    k = tee.decrypt(ct[:256], padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
    assert len(k) == 32
    return aes_key_unwrap_with_padding(k, ct[256:])


def test_release_rsa_key_to_attested_tee(skr):
    srv, authority, tee = skr
    kc = srv.key_client()
    policy = {"anyOf": [{"anyOf": [{"claim": "sdk-test", "equals": True}], "authority": AUTHORITY}],
              "version": "1.0.0"}
    name = uniq("skr")
    key = kc.create_rsa_key(name, size=2048, hardware_protected=True, exportable=True,
                            release_policy=KeyReleasePolicy(json.dumps(policy).encode()))
    assert key.properties.exportable is True
    # Managed HSM keeps JSON types (true, not "true") in the stored policy.
    stored = json.loads(key.properties.release_policy.encoded_policy)
    assert stored == policy
    assert key.properties.release_policy.immutable is False

    result = kc.release_key(name, attestation_token(authority, tee), nonce="fresh-1")
    header, payload = verify_release(result.value, srv.ca)
    assert payload["request"]["enc"] == "CKM_RSA_AES_KEY_WRAP"
    assert payload["request"]["nonce"] == "fresh-1"
    released = payload["response"]["key"]["key"]
    assert released["kid"] == key.id
    pkcs8 = open_key_hsm(tee, released["key_hsm"], "CKM_RSA_AES_KEY_WRAP")
    private = serialization.load_der_private_key(pkcs8, password=None)
    assert private.public_key().public_numbers().n == int.from_bytes(key.key.n, "big")

    # SHA-256 OAEP on request, and a specific version.
    result = kc.release_key(name, attestation_token(authority, tee), version=key.properties.version,
                            algorithm=KeyExportEncryptionAlgorithm.rsa_aes_key_wrap_256)
    _, payload = verify_release(result.value, srv.ca)
    assert payload["request"]["enc"] == "RSA_AES_KEY_WRAP_256"
    pkcs8 = open_key_hsm(tee, payload["response"]["key"]["key"]["key_hsm"], "RSA_AES_KEY_WRAP_256")
    assert serialization.load_der_private_key(pkcs8, password=None).private_numbers() == private.private_numbers()

    # Claims that do not satisfy the policy: 403.
    with pytest.raises(HttpResponseError) as e:
        kc.release_key(name, attestation_token(authority, tee, **{"sdk-test": False}))
    assert e.value.status_code == 403
    assert "release policy" in e.value.message
    # A token signed by another key under the trusted issuer's name: 403.
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(HttpResponseError) as e:
        kc.release_key(name, attestation_token(other, tee))
    assert e.value.status_code == 403
