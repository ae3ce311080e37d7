"""Independent local crypto (Python `cryptography`) used to check what the server returns."""

from __future__ import annotations

import base64
import hashlib
import os

from azure.keyvault.keys import JsonWebKey
from cryptography.hazmat.primitives import hashes, padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CURVES = {
    "P-256": (ec.SECP256R1(), 32),
    "P-256K": (ec.SECP256K1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}

# signature alg -> (hash object factory, hashlib name)
HASHES = {
    "256": (hashes.SHA256, "sha256"),
    "384": (hashes.SHA384, "sha384"),
    "512": (hashes.SHA512, "sha512"),
}

# The curve each ES algorithm is used with.
ES_CURVE = {"ES256": "P-256", "ES256K": "P-256K", "ES384": "P-384", "ES512": "P-521"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_bytes(n: int, length: int | None = None) -> bytes:
    length = length or max(1, (n.bit_length() + 7) // 8)
    return n.to_bytes(length, "big")


def hash_for(alg: str):
    """(cryptography hash instance, digest function) for RS256/PS384/ES256K/..."""
    bits = alg[2:5]
    h, name = HASHES[bits]
    return h(), (lambda data: hashlib.new(name, data).digest())


def digest_for(alg: str, message: bytes = b"coffer conformance message") -> bytes:
    return hash_for(alg)[1](message)


# ------------------------------------------------------------------------------------------------- RSA
def new_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def rsa_private_jwk(key: rsa.RSAPrivateKey, key_ops=None) -> JsonWebKey:
    priv = key.private_numbers()
    pub = priv.public_numbers
    size = (pub.n.bit_length() + 7) // 8
    return JsonWebKey(
        kty="RSA",
        key_ops=key_ops or ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
        n=int_bytes(pub.n, size),
        e=int_bytes(pub.e),
        d=int_bytes(priv.d, size),
        p=int_bytes(priv.p),
        q=int_bytes(priv.q),
        dp=int_bytes(priv.dmp1),
        dq=int_bytes(priv.dmq1),
        qi=int_bytes(priv.iqmp),
    )


def rsa_public_from_jwk(jwk) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()


def rsa_enc_padding(alg: str):
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    if alg == "RSA-OAEP":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if alg == "RSA-OAEP-256":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    raise ValueError(alg)


def rsa_sig_padding(alg: str):
    h, _ = hash_for(alg)
    if alg.startswith("RS"):
        return padding.PKCS1v15()
    if alg.startswith("PS"):
        return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    raise ValueError(alg)


def rsa_verify(pub: rsa.RSAPublicKey, alg: str, digest: bytes, signature: bytes) -> None:
    """Raises cryptography.exceptions.InvalidSignature when the signature is wrong."""
    h, _ = hash_for(alg)
    pub.verify(signature, digest, rsa_sig_padding(alg), utils.Prehashed(h))


def rsa_sign(key: rsa.RSAPrivateKey, alg: str, digest: bytes) -> bytes:
    h, _ = hash_for(alg)
    return key.sign(digest, rsa_sig_padding(alg), utils.Prehashed(h))


# ------------------------------------------------------------------------------------------------- EC
def new_ec(crv: str) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVES[crv][0])


def ec_private_jwk(key: ec.EllipticCurvePrivateKey, crv: str, key_ops=None) -> JsonWebKey:
    size = CURVES[crv][1]
    priv = key.private_numbers()
    return JsonWebKey(
        kty="EC",
        crv=crv,
        key_ops=key_ops or ["sign", "verify"],
        x=int_bytes(priv.public_numbers.x, size),
        y=int_bytes(priv.public_numbers.y, size),
        d=int_bytes(priv.private_value, size),
    )


def ec_public_from_jwk(jwk) -> ec.EllipticCurvePublicKey:
    """Raises ValueError if the point is not on the curve."""
    curve = CURVES[jwk.crv][0]
    return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"), curve).public_key()


def ec_raw_to_der(raw: bytes, crv: str) -> bytes:
    size = CURVES[crv][1]
    assert len(raw) == 2 * size, f"EC signature for {crv} must be raw r||s of {2 * size} bytes, got {len(raw)}"
    return utils.encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))


def ec_der_to_raw(der: bytes, crv: str) -> bytes:
    size = CURVES[crv][1]
    r, s = utils.decode_dss_signature(der)
    return int_bytes(r, size) + int_bytes(s, size)


def ec_verify(pub: ec.EllipticCurvePublicKey, alg: str, digest: bytes, raw_sig: bytes, crv: str) -> None:
    h, _ = hash_for(alg)
    pub.verify(ec_raw_to_der(raw_sig, crv), digest, ec.ECDSA(utils.Prehashed(h)))


def ec_sign_raw(key: ec.EllipticCurvePrivateKey, alg: str, digest: bytes, crv: str) -> bytes:
    h, _ = hash_for(alg)
    return ec_der_to_raw(key.sign(digest, ec.ECDSA(utils.Prehashed(h))), crv)


# ------------------------------------------------------------------------------------------------- AES
def oct_jwk(k: bytes, key_ops=None) -> JsonWebKey:
    return JsonWebKey(
        kty="oct",
        k=k,
        key_ops=key_ops or ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
    )


def aes_cbc_encrypt(k: bytes, iv: bytes, data: bytes, pad: bool) -> bytes:
    if pad:
        p = sym_padding.PKCS7(128).padder()
        data = p.update(data) + p.finalize()
    enc = Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(k: bytes, iv: bytes, data: bytes, pad: bool) -> bytes:
    dec = Cipher(algorithms.AES(k), modes.CBC(iv)).decryptor()
    out = dec.update(data) + dec.finalize()
    if pad:
        u = sym_padding.PKCS7(128).unpadder()
        out = u.update(out) + u.finalize()
    return out


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
