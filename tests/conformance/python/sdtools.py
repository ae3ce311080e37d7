"""Helpers for the security-domain tests: the `coffer` CLI, officer JWKs for the SDK, and an independent
(test-side) reader of security-domain files (security-domain.md sections 5 and 6), written from the document and
not from Coffer's code, so the tests can check the file format and the quorum arithmetic by themselves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Optional

import requests
from azure.core.exceptions import HttpResponseError
from azure.keyvault.securitydomain import SecurityDomainClient
from azure.keyvault.securitydomain.models import SecurityDomainJsonWebKey
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from coffer_harness import CofferServer, coffer_bin
from localcrypto import b64url, b64url_decode, int_bytes


# ------------------------------------------------------------------------------------------------ the coffer CLI
def run_coffer(*args: str, env: Optional[dict] = None, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs `coffer ARGS...`; with ok=True asserts exit 0, with ok=False asserts a non-zero exit."""
    full_env = dict(os.environ)
    full_env["RUST_BACKTRACE"] = "0"  # error messages without a backtrace
    full_env.setdefault("NO_COLOR", "1")
    full_env.update(env or {})
    cmd = [str(coffer_bin()), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)
    if ok:
        assert p.returncode == 0, f"{' '.join(cmd)} -> exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    else:
        assert p.returncode != 0, f"{' '.join(cmd)} should have failed\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


# ------------------------------------------------------------------------------------------------ certificates
def load_cert(path: Path) -> x509.Certificate:
    data = Path(path).read_bytes()
    return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)


def cert_der(path_or_cert) -> bytes:
    cert = path_or_cert if isinstance(path_or_cert, x509.Certificate) else load_cert(path_or_cert)
    return cert.public_bytes(serialization.Encoding.DER)


def x5t_s256(der: bytes) -> str:
    """base64url (unpadded) SHA-256 of a certificate DER: `x5t#S256` / `x5t_256`."""
    return b64url(hashlib.sha256(der).digest())


def officer_jwk(cert_path: Path, der: Optional[bytes] = None) -> SecurityDomainJsonWebKey:
    """The JWK the Azure CLI builds for a wrapping certificate (security-domain.md section 3): RSA, n/e, x5c with the
    standard-base64 DER, x5t / x5t#S256 of the DER."""
    der = der if der is not None else cert_der(cert_path)
    cert = x509.load_der_x509_certificate(der)
    nums = cert.public_key().public_numbers()
    return SecurityDomainJsonWebKey(
        kid=cert.subject.rfc4514_string(),
        kty="RSA",
        key_ops=["verify", "encrypt", "wrapKey"],
        n=b64url(int_bytes(nums.n)),
        e=b64url(int_bytes(nums.e)),
        x5_c=[base64.b64encode(der).decode()],
        x5_t=b64url(hashlib.sha1(der).digest()),
        x5_t_s256=x5t_s256(der),
        alg="RSA-OAEP-256",
    )


# ------------------------------------------------------------------------------------------------ clients
def sd_client(server: CofferServer, **kwargs) -> SecurityDomainClient:
    """The unmodified SDK client (api-version 2025-07-01 by default)."""
    return SecurityDomainClient(server.url, server.credential(), verify_challenge_resource=False,
                                connection_verify=server.ca, **kwargs)


def error_body(e: HttpResponseError) -> dict:
    try:
        return json.loads(e.response.text())
    except Exception:  # noqa: BLE001 (report what there is)
        return {"unparsed": getattr(e.response, "text", lambda: "")()}


def error_code(e: HttpResponseError) -> Optional[str]:
    return (error_body(e).get("error") or {}).get("code")


def raw(server: CofferServer, method: str, path: str, token: Optional[str] = None, **kwargs) -> requests.Response:
    """A raw data-plane request with the bootstrap principal's token (api-version 7.6 unless the path has one)."""
    sep = "&" if "?" in path else "?"
    url = f"{server.url}{path}" if "api-version" in path else f"{server.url}{path}{sep}api-version=7.6"
    headers = {"Authorization": f"Bearer {token or server.token()}"}
    return requests.request(method, url, headers=headers, verify=server.ca, timeout=30, **kwargs)


def describe(r: requests.Response) -> str:
    return f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:500]}"


# ------------------------------------------------------------------------------------------------ the file, read independently
def _aes_cbc_hs512_decrypt(compact: str, cek_of) -> bytes:
    """JWE compact, enc A256CBC-HS512 (RFC 7518 5.2.5): MAC key = CEK[:32], AES key = CEK[32:], tag = first 32 bytes
    of HMAC-SHA-512 over header || IV || ciphertext || AL. Raises ValueError on a bad tag."""
    parts = compact.split(".")
    if len(parts) != 5:
        raise ValueError(f"not a compact JWE ({len(parts)} parts)")
    h, ek, iv, ct, tag = parts
    header = json.loads(b64url_decode(h))
    if header.get("enc") != "A256CBC-HS512":
        raise ValueError(f"unexpected enc {header.get('enc')}")
    cek = cek_of(header, b64url_decode(ek))
    if len(cek) != 64:
        raise ValueError(f"CEK of {len(cek)} bytes")
    mac_key, aes_key = cek[:32], cek[32:]
    al = struct.pack(">Q", len(h.encode()) * 8)
    want = hmac.new(mac_key, h.encode() + b64url_decode(iv) + b64url_decode(ct) + al, hashlib.sha512).digest()[:32]
    if not hmac.compare_digest(want, b64url_decode(tag)):
        raise ValueError("JWE authentication tag mismatch")
    d = Cipher(algorithms.AES(aes_key), modes.CBC(b64url_decode(iv))).decryptor()
    padded = d.update(b64url_decode(ct)) + d.finalize()
    n = padded[-1]
    if not 1 <= n <= 16 or padded[-n:] != bytes([n]) * n:
        raise ValueError("bad PKCS#7 padding")
    return padded[:-n]


def decrypt_share(enc_key: str, private_key) -> bytes:
    """An `enc_shares[].enc_key`: RSA-OAEP-256 (SHA-256, MGF1-SHA-256) wrapped CEK, A256CBC-HS512 content."""
    def cek_of(header, encrypted_key):
        assert header.get("alg") == "RSA-OAEP-256", header
        return private_key.decrypt(encrypted_key, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    return _aes_cbc_hs512_decrypt(enc_key, cek_of)


def share_points(share: bytes) -> tuple[int, list[int]]:
    """A share is little-endian 16-bit words (x << 9) | v, one per master-key byte; returns (x, [v...])."""
    assert len(share) % 2 == 0, f"share of odd length {len(share)}"
    words = struct.unpack(f"<{len(share) // 2}H", share)
    xs = {w >> 9 for w in words}
    assert len(xs) == 1, f"a share mixes x values {sorted(xs)} (words {[hex(w) for w in words[:6]]}...)"
    values = [w & 0x1FF for w in words]
    assert all(v <= 256 for v in values), f"value outside GF(257): {max(values)}"
    return xs.pop(), values


def lagrange_at_zero(points: list[tuple[int, list[int]]]) -> bytes:
    """Rebuilds the secret bytes from (x, values) shares over GF(257)."""
    p = 257
    out = []
    for i in range(len(points[0][1])):
        acc = 0
        for j, (xj, vj) in enumerate(points):
            num, den = 1, 1
            for k, (xk, _) in enumerate(points):
                if k != j:
                    num = num * (-xk) % p
                    den = den * (xj - xk) % p
            acc = (acc + vj[i] * num * pow(den, p - 2, p)) % p
        out.append(acc)
    assert all(b <= 255 for b in out), "the shares do not rebuild a byte string"
    return bytes(out)


def kdf_sp800_108(master: bytes, tag: str) -> bytes:
    """K_tag = HMAC-SHA512(master, BE32(1) || tag || 0x00 || "" || BE32(512)): the 64-byte CEK of an EncData item."""
    return hmac.new(master, struct.pack(">I", 1) + tag.encode() + b"\x00" + struct.pack(">I", 512),
                    hashlib.sha512).digest()


def open_enc_data(doc: dict, master: bytes) -> dict[str, bytes]:
    """Decrypts every `EncData.data[]` item with the master key (raises ValueError on a wrong key)."""
    out = {}
    for item in doc["EncData"]["data"]:
        tag = item["tag"]

        def cek_of(header, encrypted_key, tag=tag):
            assert header.get("alg") == "dir" and header.get("kid") == tag, header
            assert encrypted_key == b"", "alg dir has an empty encrypted-key part"
            return kdf_sp800_108(master, tag)
        out[tag] = _aes_cbc_hs512_decrypt(item["compact_jwe"], cek_of)
    return out


def officer_private_key(pem: Path):
    return serialization.load_pem_private_key(Path(pem).read_bytes(), None)


def dev_domain_secret(data_dir: Path) -> bytes:
    """The domain secret of a --dev instance, recovered the way officers would (officers 1 and 2 of
    <data-dir>/dev-security-domain/) and read from the `hsm_backup` item: a JSON object whose `domain_secret` is
    base64url (Coffer's item format; the clients never look inside)."""
    d = Path(data_dir) / "dev-security-domain"
    doc = json.loads((d / "security-domain.json").read_text())
    points = [share_points(decrypt_share(e["enc_key"], officer_private_key(d / f"officer{i}.pem")))
              for i, e in zip((1, 2), doc["SharedKeys"]["enc_shares"])]
    items = open_enc_data(doc, lagrange_at_zero(points))
    secret = b64url_decode(json.loads(items["hsm_backup"])["domain_secret"])
    assert len(secret) == 32, f"a 256-bit domain secret, got {len(secret)} bytes"
    return secret


def assert_not_on_disk(secret: bytes, *roots: Path, skip: tuple[str, ...] = ("dev-security-domain",)) -> None:
    """No file under `roots` (except the `skip` folders) holds `secret` raw, hex, base64 or base64url."""
    forms = {"raw": secret, "hex": secret.hex().encode(), "base64": base64.b64encode(secret).rstrip(b"="),
             "base64url": b64url(secret).encode()}
    for root in roots:
        for path in Path(root).rglob("*"):
            if not path.is_file() or any(part in skip for part in path.relative_to(root).parts):
                continue
            data = path.read_bytes()
            for name, form in forms.items():
                assert form not in data, f"{path} holds the domain secret in the clear ({name})"
