"""BYOK import (docs/BYOK.md) with the unmodified SDK: a key exchange key created with KeyClient, a `.byok` file
built here with `cryptography` exactly as a vendor tool builds it (RSA-OAEP-SHA1 of an AES transport key, then
RFC 5649 key wrap with padding of the target key), imported through `JsonWebKey(t=<file bytes>)` (which the SDK
sends as `key_hsm`), and the imported key used by the server, each result checked locally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import JsonWebKey, KeyType
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap, aes_key_wrap_with_padding

from coffer_harness import remote_crypto, uniq
from localcrypto import (
    CURVES,
    ES_CURVE,
    b64url,
    digest_for,
    ec_verify,
    new_ec,
    new_rsa,
    random_bytes,
    rsa_enc_padding,
    rsa_public_from_jwk,
    rsa_sign,
)
from cryptography.hazmat.primitives.asymmetric import ec

UNWRAP_FAILED = "The key could not be unwrapped with the key exchange key."
OAEP_SHA1 = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def pkcs8(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def byok_file(kek, plaintext: bytes, *, kid: str | None = None, enc: str = "CKM_RSA_AES_KEY_WRAP",
              tamper_at: int | None = None) -> bytes:
    """The `.byok` file for `plaintext` under the KEK (a KeyVaultKey), as the vendor tool writes it."""
    transport = os.urandom(32)
    c1 = rsa_public_from_jwk(kek.key).encrypt(transport, OAEP_SHA1)
    ciphertext = bytearray(c1 + aes_key_wrap_with_padding(transport, plaintext))
    if tamper_at is not None:
        ciphertext[tamper_at] ^= 0x01
    doc = {
        "schema_version": "1.0.0",
        "header": {"kid": kid or kek.id, "alg": "dir", "enc": enc},
        "ciphertext": b64url(bytes(ciphertext)),
        "generator": "coffer conformance test_byok.py; cryptography",
    }
    return json.dumps(doc).encode()


class BodyRecorder:
    """raw_response_hook that keeps the JSON body of the last response."""

    def __init__(self) -> None:
        self.body: dict | None = None

    def __call__(self, pipeline_response) -> None:
        self.body = json.loads(pipeline_response.http_response.text())


@pytest.fixture(scope="module")
def kek(key_client):
    key = key_client.create_rsa_key(uniq("kek"), size=4096, key_operations=["import"], hardware_protected=True)
    assert key.key_operations == ["import"], key.key_operations
    assert len(key.key.n) == 512
    return key


@pytest.mark.parametrize("bits", [2048, 3072])
def test_byok_rsa(server, key_client, kek, bits):
    priv = new_rsa(bits)
    ops = ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"]
    rec = BodyRecorder()
    key = key_client.import_key(uniq("byokrsa"), JsonWebKey(kty="RSA-HSM", t=byok_file(kek, pkcs8(priv)), key_ops=ops),
                                raw_response_hook=rec)
    assert key.key_type == KeyType.rsa_hsm
    assert sorted(key.key_operations) == sorted(ops)
    pub = priv.public_key().public_numbers()
    assert int.from_bytes(key.key.n, "big") == pub.n and int.from_bytes(key.key.e, "big") == pub.e
    assert "key_hsm" not in rec.body["key"] and "d" not in rec.body["key"], rec.body

    crypto, calls = remote_crypto(server, key.id)
    digest = digest_for("RS256")
    sig = crypto.sign(SignatureAlgorithm.rs256, digest)
    calls.assert_remote("sign")
    assert sig.signature == rsa_sign(priv, "RS256", digest), "server RS256 differs from the BYOK key's"
    ct = priv.public_key().encrypt(b"byok rsa secret", rsa_enc_padding("RSA-OAEP-256"))
    assert crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext == b"byok rsa secret"
    calls.assert_remote("decrypt")
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep, b"k" * 32)
    calls.assert_remote("wrapkey")
    assert priv.decrypt(wrapped.encrypted_key, rsa_enc_padding("RSA-OAEP")) == b"k" * 32


@pytest.mark.parametrize("crv", ["P-256", "P-256K", "P-384", "P-521"])
def test_byok_ec(server, key_client, kek, crv):
    priv = new_ec(crv)
    key = key_client.import_key(
        uniq("byokec"), JsonWebKey(kty="EC-HSM", crv=crv, t=byok_file(kek, pkcs8(priv)), key_ops=["sign", "verify"]))
    assert key.key_type == KeyType.ec_hsm and key.key.crv == crv
    size = CURVES[crv][1]
    pn = priv.public_key().public_numbers()
    assert key.key.x == pn.x.to_bytes(size, "big") and key.key.y == pn.y.to_bytes(size, "big")
    alg = {v: k for k, v in ES_CURVE.items()}[crv]
    crypto, calls = remote_crypto(server, key.id)
    digest = digest_for(alg)
    sig = crypto.sign(SignatureAlgorithm(alg), digest)
    calls.assert_remote("sign")
    ec_verify(priv.public_key(), alg, digest, sig.signature, crv)


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_byok_oct(server, key_client, kek, bits):
    k = random_bytes(bits // 8)
    key = key_client.import_key(uniq("byokoct"), JsonWebKey(kty="oct-HSM", t=byok_file(kek, k)))
    assert key.key_type == KeyType.oct_hsm
    crypto, calls = remote_crypto(server, key.id)
    cek = random_bytes(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm(f"A{bits}KW"), cek)
    calls.assert_remote("wrapkey")
    assert wrapped.encrypted_key == aes_key_wrap(k, cek), "server A%dKW differs from RFC 3394 with the BYOK key" % bits
    local = aes_key_wrap(k, b"x" * 16)
    assert crypto.unwrap_key(KeyWrapAlgorithm(f"A{bits}KW"), local).key == aes_key_unwrap(k, local)


def test_get_of_a_byok_key_has_no_key_hsm(key_client, kek):
    name = uniq("byokget")
    key_client.import_key(name, JsonWebKey(kty="oct-HSM", t=byok_file(kek, random_bytes(32))))
    rec = BodyRecorder()
    key_client.get_key(name, raw_response_hook=rec)
    assert set(rec.body["key"]) <= {"kid", "kty", "key_ops"}, rec.body


def test_kek_with_other_operations_is_refused_at_creation(key_client):
    with pytest.raises(HttpResponseError) as ei:
        key_client.create_rsa_key(uniq("kekmix"), size=2048, key_operations=["import", "decrypt"])
    assert ei.value.status_code == 400
    assert "mutually exclusive" in ei.value.message


def test_kek_cannot_decrypt_or_sign(server, kek):
    crypto, _ = remote_crypto(server, kek.id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.decrypt(EncryptionAlgorithm.rsa_oaep, b"\0" * 512)
    assert ei.value.status_code == 403
    with pytest.raises(HttpResponseError) as ei:
        crypto.sign(SignatureAlgorithm.rs256, digest_for("RS256"))
    assert ei.value.status_code == 403


def test_byok_refusals(key_client, kek):
    priv = new_ec("P-256")
    pt = pkcs8(priv)
    cases = [
        ("tampered key wrap", byok_file(kek, pt, tamper_at=600), "EC-HSM", UNWRAP_FAILED),
        ("tampered RSA block", byok_file(kek, pt, tamper_at=5), "EC-HSM", UNWRAP_FAILED),
        ("SHA-256 release enc", byok_file(kek, pt, enc="RSA_AES_KEY_WRAP_256"), "EC-HSM", "header.enc"),
        ("kty mismatch", byok_file(kek, pt), "RSA-HSM", "holds an EC-HSM key"),
        ("another HSM", byok_file(kek, pt, kid="https://contoso.managedhsm.azure.net/keys/kek/" + "0" * 32), "EC-HSM",
         "does not belong to this HSM"),
        ("20-byte AES key", byok_file(kek, b"\1" * 20), "oct-HSM", "16, 24 or 32 bytes"),
    ]
    for what, blob, kty, message in cases:
        with pytest.raises(HttpResponseError) as ei:
            key_client.import_key(uniq("byokbad"), JsonWebKey(kty=kty, t=blob))
        assert ei.value.status_code == 400, what
        assert message in ei.value.message, f"{what}: {ei.value.message}"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_byok_blob_made_with_the_openssl_recipe_of_docs_byok(server, key_client, kek, tmp_path):
    """The command-line recipe in docs/BYOK.md, run as written, gives a blob the server imports."""
    (tmp_path / "kek.pem").write_bytes(rsa_public_from_jwk(kek.key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def run(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "target.pem")
    # `genpkey -outform DER` would write SEC1/PKCS#1, not PKCS#8: convert explicitly.
    run("pkcs8", "-topk8", "-nocrypt", "-in", "target.pem", "-outform", "DER", "-out", "target.p8")
    run("rand", "-out", "transport.key", "32")
    run("pkeyutl", "-encrypt", "-pubin", "-inkey", "kek.pem", "-in", "transport.key", "-out", "c1.bin",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1")
    transport_hex = (tmp_path / "transport.key").read_bytes().hex()
    run("enc", "-id-aes256-wrap-pad", "-iv", "A65959A6", "-K", transport_hex, "-in", "target.p8", "-out", "c2.bin")
    ciphertext = (tmp_path / "c1.bin").read_bytes() + (tmp_path / "c2.bin").read_bytes()
    blob = json.dumps({"schema_version": "1.0.0", "header": {"kid": kek.id, "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"},
                       "ciphertext": b64url(ciphertext), "generator": "openssl"}).encode()
    key = key_client.import_key(uniq("byokossl"), JsonWebKey(kty="EC-HSM", crv="P-384", t=blob))
    priv = serialization.load_der_private_key((tmp_path / "target.p8").read_bytes(), None)
    assert isinstance(priv, ec.EllipticCurvePrivateKey)
    assert key.key.x == priv.public_key().public_numbers().x.to_bytes(48, "big")
    crypto, calls = remote_crypto(server, key.id)
    digest = digest_for("ES384")
    sig = crypto.sign(SignatureAlgorithm.es384, digest)
    calls.assert_remote("sign")
    ec_verify(priv.public_key(), "ES384", digest, sig.signature, "P-384")
