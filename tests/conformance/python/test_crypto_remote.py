"""Every crypto algorithm, done BY THE SERVER (CryptographyClient with its local provider disabled,
sdk-requirements.md section 6), each result checked independently with Python `cryptography`."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    aes_key_unwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap,
    aes_key_wrap_with_padding,
)

from coffer_harness import Recorder, remote_crypto, uniq
from localcrypto import (
    ES_CURVE,
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    digest_for,
    ec_private_jwk,
    ec_public_from_jwk,
    ec_sign_raw,
    ec_verify,
    new_ec,
    new_rsa,
    oct_jwk,
    random_bytes,
    rsa_enc_padding,
    rsa_private_jwk,
    rsa_public_from_jwk,
    rsa_sign,
    rsa_verify,
)

RSA_ENC = ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256"]
RSA_SIG = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
AES_BITS = [128, 192, 256]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def rsa_imported(key_client):
    priv = new_rsa(2048)
    key = key_client.import_key(uniq("crsa"), rsa_private_jwk(priv), hardware_protected=True)
    return priv, key


@pytest.fixture(scope="module")
def rsa_generated(key_client):
    return key_client.create_rsa_key(uniq("grsa"), size=2048, hardware_protected=True)


@pytest.fixture(scope="module")
def ec_imported(key_client):
    out = {}
    for crv in ES_CURVE.values():
        priv = new_ec(crv)
        out[crv] = (priv, key_client.import_key(uniq("cec"), ec_private_jwk(priv, crv), hardware_protected=True))
    return out


@pytest.fixture(scope="module")
def oct_imported(key_client):
    out = {}
    for bits in AES_BITS:
        k = random_bytes(bits // 8)
        out[bits] = (k, key_client.import_key(uniq(f"coct{bits}"), oct_jwk(k), hardware_protected=True))
    return out


# ------------------------------------------------------------------------------------------------ RSA encryption
@pytest.mark.parametrize("alg", RSA_ENC)
def test_rsa_decrypt_of_local_encryption(server, rsa_imported, rsa_generated, alg):
    for pub, kid in ((rsa_imported[0].public_key(), rsa_imported[1].id),
                     (rsa_public_from_jwk(rsa_generated.key), rsa_generated.id)):
        crypto, rec = remote_crypto(server, kid)
        msg = random_bytes(32)
        ct = pub.encrypt(msg, rsa_enc_padding(alg))
        res = crypto.decrypt(EncryptionAlgorithm(alg), ct)
        rec.assert_remote("decrypt")
        assert res.plaintext == msg, f"{alg}: server decrypted to a different plaintext"
        assert res.key_id == kid


@pytest.mark.parametrize("alg", RSA_ENC)
def test_rsa_remote_encrypt_local_decrypt(server, rsa_imported, alg):
    priv, key = rsa_imported
    crypto, rec = remote_crypto(server, key.id)
    msg = random_bytes(48)
    enc = crypto.encrypt(EncryptionAlgorithm(alg), msg)
    rec.assert_remote("encrypt")
    assert len(enc.ciphertext) == 256
    assert priv.decrypt(enc.ciphertext, rsa_enc_padding(alg)) == msg
    # and the server decrypts its own output
    assert crypto.decrypt(EncryptionAlgorithm(alg), enc.ciphertext).plaintext == msg
    rec.assert_remote("decrypt")


@pytest.mark.parametrize("alg", RSA_ENC)
def test_rsa_wrap_unwrap(server, rsa_imported, alg):
    priv, key = rsa_imported
    crypto, rec = remote_crypto(server, key.id)
    cek = random_bytes(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm(alg), cek)
    rec.assert_remote("wrapkey")
    assert priv.decrypt(wrapped.encrypted_key, rsa_enc_padding(alg)) == cek
    local_wrapped = priv.public_key().encrypt(cek, rsa_enc_padding(alg))
    assert crypto.unwrap_key(KeyWrapAlgorithm(alg), local_wrapped).key == cek
    rec.assert_remote("unwrapkey")


def test_rsa_decrypt_garbage_is_4xx(server, rsa_imported):
    crypto, _ = remote_crypto(server, rsa_imported[1].id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.decrypt(EncryptionAlgorithm.rsa_oaep_256, random_bytes(256))
    assert 400 <= ei.value.status_code < 500, (ei.value.status_code, ei.value.message)


# ------------------------------------------------------------------------------------------------ RSA signatures
@pytest.mark.parametrize("alg", RSA_SIG)
def test_rsa_sign_verified_locally(server, rsa_imported, rsa_generated, alg):
    priv, key = rsa_imported
    digest = digest_for(alg)
    crypto, rec = remote_crypto(server, key.id)
    sig = crypto.sign(SignatureAlgorithm(alg), digest)
    rec.assert_remote("sign")
    assert sig.algorithm == alg and sig.key_id == key.id
    assert len(sig.signature) == 256
    rsa_verify(priv.public_key(), alg, digest, sig.signature)
    if alg.startswith("RS"):
        assert sig.signature == rsa_sign(priv, alg, digest), f"{alg} is deterministic: must equal the local signature"
    # server-generated key, checked against its public JWK
    gcrypto, grec = remote_crypto(server, rsa_generated.id)
    gsig = gcrypto.sign(SignatureAlgorithm(alg), digest)
    grec.assert_remote("sign")
    rsa_verify(rsa_public_from_jwk(rsa_generated.key), alg, digest, gsig.signature)


@pytest.mark.parametrize("alg", RSA_SIG)
def test_rsa_remote_verify(server, rsa_imported, alg):
    priv, key = rsa_imported
    digest = digest_for(alg)
    local_sig = rsa_sign(priv, alg, digest)
    crypto, rec = remote_crypto(server, key.id)
    assert crypto.verify(SignatureAlgorithm(alg), digest, local_sig).is_valid is True
    rec.assert_remote("verify")
    bad = bytearray(local_sig)
    bad[10] ^= 0x01
    assert crypto.verify(SignatureAlgorithm(alg), digest, bytes(bad)).is_valid is False
    rec.assert_remote("verify")  # 200 with value=false, not an error
    other_digest = digest_for(alg, b"another message")
    assert crypto.verify(SignatureAlgorithm(alg), other_digest, local_sig).is_valid is False


# ------------------------------------------------------------------------------------------------ EC signatures
@pytest.mark.parametrize("alg", ["ES256", "ES256K", "ES384", "ES512"])
def test_ec_sign_verified_locally(server, ec_imported, alg):
    crv = ES_CURVE[alg]
    priv, key = ec_imported[crv]
    digest = digest_for(alg)
    crypto, rec = remote_crypto(server, key.id)
    sig = crypto.sign(SignatureAlgorithm(alg), digest)
    rec.assert_remote("sign")
    ec_verify(priv.public_key(), alg, digest, sig.signature, crv)
    ec_verify(ec_public_from_jwk(key.key), alg, digest, sig.signature, crv)
    with pytest.raises(InvalidSignature):
        ec_verify(priv.public_key(), alg, digest_for(alg, b"other"), sig.signature, crv)
    # the server verifies its own signature and a locally made one
    assert crypto.verify(SignatureAlgorithm(alg), digest, sig.signature).is_valid is True
    rec.assert_remote("verify")
    local = ec_sign_raw(priv, alg, digest, crv)
    assert crypto.verify(SignatureAlgorithm(alg), digest, local).is_valid is True
    bad = bytearray(local)
    bad[-1] ^= 0x01
    assert crypto.verify(SignatureAlgorithm(alg), digest, bytes(bad)).is_valid is False
    rec.assert_remote("verify")


@pytest.mark.parametrize("crv,alg", [("P-256", "ES256"), ("P-256K", "ES256K"), ("P-384", "ES384"), ("P-521", "ES512")])
def test_ec_sign_with_generated_key(server, key_client, crv, alg):
    key = key_client.create_ec_key(uniq("gec"), curve=crv, hardware_protected=True)
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for(alg)
    sig = crypto.sign(SignatureAlgorithm(alg), digest)
    rec.assert_remote("sign")
    ec_verify(ec_public_from_jwk(key.key), alg, digest, sig.signature, crv)


def test_ec_alg_curve_mismatch_is_400(server, ec_imported):
    crypto, _ = remote_crypto(server, ec_imported["P-256"][1].id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.sign(SignatureAlgorithm.es384, digest_for("ES384"))
    assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)


# ------------------------------------------------------------------------------------------------ AES-GCM
@pytest.mark.parametrize("bits", AES_BITS)
def test_aes_gcm(server, oct_imported, bits):
    k, key = oct_imported[bits]
    alg = EncryptionAlgorithm(f"A{bits}GCM")
    crypto, rec = remote_crypto(server, key.id)
    msg, aad = random_bytes(45), b"header-data"
    enc = crypto.encrypt(alg, msg, additional_authenticated_data=aad)
    rec.assert_remote("encrypt")
    assert enc.iv is not None and len(enc.iv) == 12, f"GCM iv from the server: {enc.iv!r}"
    assert enc.tag is not None and len(enc.tag) == 16, f"GCM tag from the server: {enc.tag!r}"
    assert len(enc.ciphertext) == len(msg)
    assert AESGCM(k).decrypt(enc.iv, enc.ciphertext + enc.tag, aad) == msg, "local AES-GCM cannot open the server's output"
    # server decrypts locally made ciphertext
    iv = random_bytes(12)
    local = AESGCM(k).encrypt(iv, msg, aad)
    dec = crypto.decrypt(alg, local[:-16], iv=iv, authentication_tag=local[-16:], additional_authenticated_data=aad)
    rec.assert_remote("decrypt")
    assert dec.plaintext == msg
    # without aad (none given on either side)
    enc2 = crypto.encrypt(alg, msg)
    assert AESGCM(k).decrypt(enc2.iv, enc2.ciphertext + enc2.tag, None) == msg
    # a wrong tag or wrong aad is refused, never "decrypted"
    bad_tag = bytes([enc.tag[0] ^ 1]) + enc.tag[1:]
    with pytest.raises(HttpResponseError) as ei:
        crypto.decrypt(alg, enc.ciphertext, iv=enc.iv, authentication_tag=bad_tag, additional_authenticated_data=aad)
    assert 400 <= ei.value.status_code < 500, (ei.value.status_code, ei.value.message)
    with pytest.raises(HttpResponseError) as ei:
        crypto.decrypt(alg, enc.ciphertext, iv=enc.iv, authentication_tag=enc.tag, additional_authenticated_data=b"x")
    assert 400 <= ei.value.status_code < 500, (ei.value.status_code, ei.value.message)


# ------------------------------------------------------------------------------------------------ AES-CBC / CBCPAD
@pytest.mark.parametrize("bits", AES_BITS)
@pytest.mark.parametrize("pad", [False, True], ids=["CBC", "CBCPAD"])
def test_aes_cbc(server, oct_imported, bits, pad):
    k, key = oct_imported[bits]
    alg = EncryptionAlgorithm(f"A{bits}CBC{'PAD' if pad else ''}")
    crypto, rec = remote_crypto(server, key.id)
    iv = random_bytes(16)
    msg = random_bytes(37 if pad else 48)
    enc = crypto.encrypt(alg, msg, iv=iv)
    rec.assert_remote("encrypt")
    assert enc.ciphertext == aes_cbc_encrypt(k, iv, msg, pad), f"{alg}: differs from local AES-CBC"
    assert enc.iv in (None, iv), "server must echo the client IV (or none)"
    local = aes_cbc_encrypt(k, iv, msg, pad)
    dec = crypto.decrypt(alg, local, iv=iv)
    rec.assert_remote("decrypt")
    assert dec.plaintext == msg
    if pad:
        # exactly one block of padding when the length is a multiple of 16
        msg16 = random_bytes(32)
        enc16 = crypto.encrypt(alg, msg16, iv=iv)
        assert len(enc16.ciphertext) == 48 and aes_cbc_decrypt(k, iv, enc16.ciphertext, True) == msg16
    else:
        with pytest.raises(HttpResponseError) as ei:
            crypto.encrypt(alg, random_bytes(20), iv=iv)  # not a multiple of the block size
        assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)


# ------------------------------------------------------------------------------------------------ AES key wrap
@pytest.mark.parametrize("bits", AES_BITS)
def test_aes_kw(server, oct_imported, bits):
    k, key = oct_imported[bits]
    alg = KeyWrapAlgorithm(f"A{bits}KW")
    crypto, rec = remote_crypto(server, key.id)
    cek = random_bytes(32)
    wrapped = crypto.wrap_key(alg, cek)
    rec.assert_remote("wrapkey")
    assert wrapped.encrypted_key == aes_key_wrap(k, cek), f"{alg} differs from RFC 3394"
    other = random_bytes(24)
    assert crypto.unwrap_key(alg, aes_key_wrap(k, other)).key == other
    rec.assert_remote("unwrapkey")
    corrupt = bytearray(aes_key_wrap(k, other))
    corrupt[3] ^= 0x80
    with pytest.raises(HttpResponseError) as ei:
        crypto.unwrap_key(alg, bytes(corrupt))
    assert 400 <= ei.value.status_code < 500, (ei.value.status_code, ei.value.message)


@pytest.mark.parametrize("bits", AES_BITS)
def test_ckm_aes_key_wrap(server, oct_imported, bits):
    k, key = oct_imported[bits]
    crypto, rec = remote_crypto(server, key.id)
    cek = random_bytes(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap, cek)
    rec.assert_remote("wrapkey")
    assert wrapped.encrypted_key == aes_key_wrap(k, cek), "CKM_AES_KEY_WRAP differs from RFC 3394"
    assert aes_key_unwrap(k, wrapped.encrypted_key) == cek
    assert crypto.unwrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap, aes_key_wrap(k, cek)).key == cek
    rec.assert_remote("unwrapkey")


@pytest.mark.parametrize("bits", AES_BITS)
def test_ckm_aes_key_wrap_pad(server, oct_imported, bits):
    k, key = oct_imported[bits]
    crypto, rec = remote_crypto(server, key.id)
    for n in (20, 32, 1):  # not a multiple of 8, a multiple of 8, a single byte
        data = random_bytes(n)
        wrapped = crypto.wrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap_pad, data)
        rec.assert_remote("wrapkey")
        assert wrapped.encrypted_key == aes_key_wrap_with_padding(k, data), f"CKM_AES_KEY_WRAP_PAD({n}) != RFC 5649"
        assert aes_key_unwrap_with_padding(k, wrapped.encrypted_key) == data
        assert crypto.unwrap_key(KeyWrapAlgorithm.ckm_aes_key_wrap_pad, aes_key_wrap_with_padding(k, data)).key == data
        rec.assert_remote("unwrapkey")


def test_aes_alg_size_mismatch_is_400(server, oct_imported):
    _, key = oct_imported[128]
    crypto, _ = remote_crypto(server, key.id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.encrypt(EncryptionAlgorithm.a256_gcm, b"data")
    assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)
    with pytest.raises(HttpResponseError) as ei:
        crypto.wrap_key(KeyWrapAlgorithm.aes_256, random_bytes(32))
    assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)


def test_wrong_key_type_is_400(server, oct_imported, rsa_imported, ec_imported):
    """An algorithm of another key type, for an operation the key's key_ops allow -> 400 (not 403)."""
    cases = [
        (oct_imported[256][1].id, lambda c: c.encrypt(EncryptionAlgorithm.rsa_oaep, b"data")),
        (oct_imported[256][1].id, lambda c: c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, random_bytes(32))),
        (rsa_imported[1].id, lambda c: c.encrypt(EncryptionAlgorithm.a256_gcm, b"data")),
        (rsa_imported[1].id, lambda c: c.wrap_key(KeyWrapAlgorithm.aes_256, random_bytes(32))),
        (rsa_imported[1].id, lambda c: c.sign(SignatureAlgorithm.es256, digest_for("ES256"))),
        (ec_imported["P-256"][1].id, lambda c: c.sign(SignatureAlgorithm.rs256, digest_for("RS256"))),
        (ec_imported["P-256"][1].id, lambda c: c.verify(SignatureAlgorithm.ps256, digest_for("PS256"), bytes(256))),
    ]
    for i, (kid, call) in enumerate(cases):
        crypto, _ = remote_crypto(server, kid)
        with pytest.raises(HttpResponseError) as ei:
            call(crypto)
        assert ei.value.status_code == 400, (i, kid, ei.value.status_code, ei.value.message)


# ------------------------------------------------------------------------------------------------ guard the assumption
def test_unforced_sdk_client_encrypts_rsa_locally(server, credential, rsa_generated):
    """The official client does RSA public-key operations locally (only a GET of the key reaches the server);
    the forced-remote tests above therefore are what exercise the server."""
    rec = Recorder()
    crypto = CryptographyClient(rsa_generated.id, credential, verify_challenge_resource=False,
                                connection_verify=server.ca, raw_response_hook=rec)
    msg = b"encrypted by the SDK itself"
    enc = crypto.encrypt(EncryptionAlgorithm.rsa_oaep, msg)
    calls = rec.take()
    assert not [c for c in calls if c[0] == "POST"], f"unforced RSA encrypt reached the server: {calls}"
    assert [c for c in calls if c[0] == "GET" and "/keys/" in c[1] and c[2] == 200], f"expected a GET of the key: {calls}"
    # decrypt is not possible locally: it goes to the server, which must open the SDK's local encryption
    dec = crypto.decrypt(EncryptionAlgorithm.rsa_oaep, enc.ciphertext)
    assert [c for c in rec.take() if c[0] == "POST" and c[1].endswith("/decrypt") and c[2] == 200]
    assert dec.plaintext == msg


def test_invalid_crypto_inputs_are_400(server, rsa_imported, oct_imported):
    """Inputs the algorithm cannot take: a clear 400, never a 5xx or a silent success."""
    rsa_crypto, _ = remote_crypto(server, rsa_imported[1].id)
    k, oct_key = oct_imported[256]
    oct_crypto, _ = remote_crypto(server, oct_key.id)
    cases = {
        "RSA-OAEP plaintext longer than the key allows": lambda: rsa_crypto.encrypt(EncryptionAlgorithm.rsa_oaep, random_bytes(300)),
        "RSA decrypt of a short ciphertext": lambda: rsa_crypto.decrypt(EncryptionAlgorithm.rsa_oaep, random_bytes(16)),
        "A256KW of 20 bytes (not a multiple of 8)": lambda: oct_crypto.wrap_key(KeyWrapAlgorithm.aes_256, random_bytes(20)),
        "A256KW unwrap of 20 bytes": lambda: oct_crypto.unwrap_key(KeyWrapAlgorithm.aes_256, random_bytes(20)),
        "A256CBC with a 12-byte IV": lambda: oct_crypto.encrypt(EncryptionAlgorithm.a256_cbc, random_bytes(32), iv=random_bytes(12)),
        "A256CBCPAD decrypt with bad padding": lambda: oct_crypto.decrypt(
            EncryptionAlgorithm.a256_cbcpad, aes_cbc_encrypt(k, bytes(16), bytes(range(16)) + bytes([0] * 16), False), iv=bytes(16)),
        "A256GCM decrypt with a 5-byte IV": lambda: oct_crypto.decrypt(
            EncryptionAlgorithm.a256_gcm, random_bytes(16), iv=random_bytes(5), authentication_tag=random_bytes(16)),
    }
    for label, call in cases.items():
        with pytest.raises(HttpResponseError) as ei:
            call()
        assert ei.value.status_code == 400, f"{label}: HTTP {ei.value.status_code} {ei.value.message}"
