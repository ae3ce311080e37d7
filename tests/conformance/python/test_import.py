"""Import (PUT /keys/{name}) of every key type, checked against the local private key."""

from __future__ import annotations

import pytest
from azure.keyvault.keys import KeyType
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from coffer_harness import remote_crypto, uniq
from localcrypto import (
    CURVES,
    ES_CURVE,
    digest_for,
    ec_private_jwk,
    ec_public_from_jwk,
    ec_verify,
    new_ec,
    new_rsa,
    oct_jwk,
    random_bytes,
    rsa_enc_padding,
    rsa_private_jwk,
    rsa_sign,
)


@pytest.mark.parametrize("bits", [2048, 3072])
def test_import_rsa(server, key_client, bits):
    priv = new_rsa(bits)
    name = uniq("imprsa")
    key = key_client.import_key(name, rsa_private_jwk(priv), hardware_protected=True)
    assert key.name == name
    assert key.key_type == KeyType.rsa_hsm, f"imported RSA with Hsm=true answered kty={key.key_type!r}"
    pub = priv.public_key().public_numbers()
    assert int.from_bytes(key.key.n, "big") == pub.n and int.from_bytes(key.key.e, "big") == pub.e
    for f in ("d", "p", "q", "dp", "dq", "qi"):
        assert getattr(key.key, f) in (None, b""), f"import response leaks {f}"
    assert key.properties.enabled is True and key.properties.recoverable_days == 90
    assert key_client.get_key(name).id == key.id

    crypto, rec = remote_crypto(server, key.id)
    # RS256 is deterministic: the server's signature must equal the local one byte for byte
    digest = digest_for("RS256")
    sig = crypto.sign(SignatureAlgorithm.rs256, digest)
    rec.assert_remote("sign")
    assert sig.signature == rsa_sign(priv, "RS256", digest), "server RS256 signature differs from the imported key's"
    # decrypt what the local public key encrypted
    ct = priv.public_key().encrypt(b"imported rsa secret", rsa_enc_padding("RSA-OAEP-256"))
    assert crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext == b"imported rsa secret"
    rec.assert_remote("decrypt")
    # the server's encryption opens with the local private key
    enc = crypto.encrypt(EncryptionAlgorithm.rsa_oaep, b"to the local key")
    rec.assert_remote("encrypt")
    assert priv.decrypt(enc.ciphertext, rsa_enc_padding("RSA-OAEP")) == b"to the local key"


@pytest.mark.parametrize("crv", ["P-256", "P-256K", "P-384", "P-521"])
def test_import_ec(server, key_client, crv):
    priv = new_ec(crv)
    key = key_client.import_key(uniq("impec"), ec_private_jwk(priv, crv), hardware_protected=True)
    assert key.key_type == KeyType.ec_hsm, f"kty={key.key_type!r}"
    assert key.key.crv == crv
    size = CURVES[crv][1]
    pn = priv.public_key().public_numbers()
    assert key.key.x == pn.x.to_bytes(size, "big") and key.key.y == pn.y.to_bytes(size, "big")
    assert key.key.d in (None, b""), "import response leaks d"
    ec_public_from_jwk(key.key)

    alg = {v: k for k, v in ES_CURVE.items()}[crv]
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for(alg)
    sig = crypto.sign(SignatureAlgorithm(alg), digest)
    rec.assert_remote("sign")
    ec_verify(priv.public_key(), alg, digest, sig.signature, crv)


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_import_oct(server, key_client, bits):
    k = random_bytes(bits // 8)
    key = key_client.import_key(uniq("impoct"), oct_jwk(k), hardware_protected=True)
    assert key.key_type == KeyType.oct_hsm, f"kty={key.key_type!r}"
    assert key.key.k in (None, b""), "import response leaks k"
    assert sorted(key.key_operations) == sorted(["encrypt", "decrypt", "wrapKey", "unwrapKey"]), key.key_operations
    crypto, rec = remote_crypto(server, key.id)
    cek = random_bytes(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm(f"A{bits}KW"), cek)
    rec.assert_remote("wrapkey")
    assert wrapped.encrypted_key == aes_key_wrap(k, cek), "server A%dKW differs from RFC 3394 with the imported key" % bits


def test_import_with_attributes_and_tags(key_client):
    import datetime as dt

    exp = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10)).replace(microsecond=0)
    key = key_client.import_key(
        uniq("impattr"), oct_jwk(random_bytes(16)), hardware_protected=True, enabled=False, expires_on=exp,
        tags={"origin": "import"},
    )
    assert key.properties.enabled is False and key.properties.expires_on == exp
    assert key.properties.tags == {"origin": "import"}


def test_import_new_version_of_existing_name(key_client):
    name = uniq("impver")
    a = key_client.import_key(name, oct_jwk(random_bytes(32)), hardware_protected=True)
    b = key_client.import_key(name, oct_jwk(random_bytes(32)), hardware_protected=True)
    assert a.properties.version != b.properties.version
    assert key_client.get_key(name).id == b.id
    assert {p.version for p in key_client.list_properties_of_key_versions(name)} == {
        a.properties.version, b.properties.version}
