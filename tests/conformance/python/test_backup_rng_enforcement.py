"""Key backup/restore, random bytes, and enforcement of key_ops / enabled / nbf / exp."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys.crypto import EncryptionAlgorithm, SignatureAlgorithm

from coffer_harness import remote_crypto, uniq
from localcrypto import digest_for, ec_public_from_jwk, ec_verify, rsa_public_from_jwk, rsa_verify


def _delete_and_wait(key_client, name):
    poller = key_client.begin_delete_key(name)
    poller.wait(timeout=30)
    assert poller.done(), "delete poller did not finish"


def _error_code(exc: HttpResponseError):
    return exc.error.code if exc.error is not None else None


# ------------------------------------------------------------------------------------------------ backup / restore
def test_backup_purge_restore_same_key(server, key_client):
    name = uniq("bak")
    key = key_client.create_rsa_key(name, size=2048, hardware_protected=True, tags={"k": "v"})
    v2 = key_client.create_rsa_key(name, size=2048, hardware_protected=True)
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for("RS256")
    sig_before = crypto.sign(SignatureAlgorithm.rs256, digest).signature
    rec.assert_remote("sign")

    blob = key_client.backup_key(name)
    assert isinstance(blob, bytes) and len(blob) > 64

    # restore while the key exists -> 409
    with pytest.raises(ResourceExistsError) as ei:
        key_client.restore_key_backup(blob)
    assert ei.value.status_code == 409, ei.value

    # restore while the name is soft-deleted -> 409
    _delete_and_wait(key_client, name)
    with pytest.raises(ResourceExistsError) as ei:
        key_client.restore_key_backup(blob)
    assert ei.value.status_code == 409, ei.value

    key_client.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name)

    restored = key_client.restore_key_backup(blob)
    assert restored.name == name
    assert restored.id == v2.id, "restore brings back the latest version with the same id"
    assert restored.key.n == v2.key.n
    assert {p.version for p in key_client.list_properties_of_key_versions(name)} == {
        key.properties.version, v2.properties.version}, "every version is restored"
    old = key_client.get_key(name, key.properties.version)
    assert old.id == key.id and old.key.n == key.key.n and old.properties.tags == {"k": "v"}

    # the restored key signs: RS256 is deterministic, so the signature is identical to the one before
    crypto2, rec2 = remote_crypto(server, key.id)
    sig_after = crypto2.sign(SignatureAlgorithm.rs256, digest).signature
    rec2.assert_remote("sign")
    assert sig_after == sig_before
    rsa_verify(rsa_public_from_jwk(key.key), "RS256", digest, sig_after)


def test_backup_restore_ec_and_oct(server, key_client):
    ec_name, oct_name = uniq("bakec"), uniq("bakoct")
    ec_key = key_client.create_ec_key(ec_name, curve="P-256", hardware_protected=True)
    oct_key = key_client.create_oct_key(oct_name, size=256, hardware_protected=True)
    oct_crypto, rec = remote_crypto(server, oct_key.id)
    enc = oct_crypto.encrypt(EncryptionAlgorithm.a256_gcm, b"before backup")
    blobs = {ec_name: key_client.backup_key(ec_name), oct_name: key_client.backup_key(oct_name)}
    for n in blobs:
        _delete_and_wait(key_client, n)
        key_client.purge_deleted_key(n)
    for n, b in blobs.items():
        key_client.restore_key_backup(b)
    oct_crypto2, rec2 = remote_crypto(server, oct_key.id)
    assert oct_crypto2.decrypt(EncryptionAlgorithm.a256_gcm, enc.ciphertext, iv=enc.iv,
                               authentication_tag=enc.tag).plaintext == b"before backup"
    rec2.assert_remote("decrypt")
    ec_crypto, rec3 = remote_crypto(server, ec_key.id)
    digest = digest_for("ES256")
    sig = ec_crypto.sign(SignatureAlgorithm.es256, digest)
    rec3.assert_remote("sign")
    ec_verify(ec_public_from_jwk(ec_key.key), "ES256", digest, sig.signature, "P-256")


def test_restore_tampered_or_garbage_blob_is_400(key_client):
    name = uniq("baktamper")
    key_client.create_oct_key(name, size=128, hardware_protected=True)
    blob = bytearray(key_client.backup_key(name))
    _delete_and_wait(key_client, name)
    key_client.purge_deleted_key(name)
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(HttpResponseError) as ei:
        key_client.restore_key_backup(bytes(blob))
    assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)
    with pytest.raises(HttpResponseError) as ei:
        key_client.restore_key_backup(b"definitely not a coffer backup")
    assert ei.value.status_code == 400, (ei.value.status_code, ei.value.message)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name)  # nothing was restored


def test_backup_missing_key_is_404(key_client):
    with pytest.raises(ResourceNotFoundError):
        key_client.backup_key(uniq("nokey"))


# ------------------------------------------------------------------------------------------------ random bytes
@pytest.mark.parametrize("count", [1, 32, 128])
def test_random_bytes(key_client, count):
    data = key_client.get_random_bytes(count)
    assert isinstance(data, bytes) and len(data) == count


def test_random_bytes_differ(key_client):
    a, b = key_client.get_random_bytes(32), key_client.get_random_bytes(32)
    assert a != b and a != bytes(32)


def test_random_bytes_out_of_range(key_client):
    with pytest.raises(HttpResponseError) as ei:
        key_client.get_random_bytes(129)
    assert ei.value.status_code == 400 and _error_code(ei.value) == "BadParameter", (ei.value.status_code, ei.value.message)
    # count 0 is refused by the SDK itself before any request (ValueError); the raw HTTP suite checks the server.
    with pytest.raises(ValueError):
        key_client.get_random_bytes(0)


# ------------------------------------------------------------------------------------------------ enforcement
def test_key_ops_enforced(server, key_client):
    key = key_client.create_rsa_key(uniq("opsign"), size=2048, hardware_protected=True, key_operations=["sign"])
    assert key.key_operations == ["sign"]
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for("RS256")
    sig = crypto.sign(SignatureAlgorithm.rs256, digest)
    rec.assert_remote("sign")
    rsa_verify(rsa_public_from_jwk(key.key), "RS256", digest, sig.signature)
    for op, call in [
        ("encrypt", lambda: crypto.encrypt(EncryptionAlgorithm.rsa_oaep, b"x")),
        ("decrypt", lambda: crypto.decrypt(EncryptionAlgorithm.rsa_oaep, bytes(256))),
        ("wrapKey", lambda: crypto.wrap_key("RSA-OAEP", bytes(32))),
        ("unwrapKey", lambda: crypto.unwrap_key("RSA-OAEP", bytes(256))),
        ("verify", lambda: crypto.verify(SignatureAlgorithm.rs256, digest, sig.signature)),
    ]:
        with pytest.raises(HttpResponseError) as ei:
            call()
        e = ei.value
        assert e.status_code in (400, 403), f"{op} outside key_ops=['sign']: HTTP {e.status_code} {e.message}"
        assert e.error is not None and e.error.code and e.error.message, f"{op}: no Azure error body: {e.response.text()}"


def test_disabled_key_refuses_sign(server, key_client):
    key = key_client.create_ec_key(uniq("disabled"), curve="P-256", hardware_protected=True, enabled=False)
    assert key.properties.enabled is False
    crypto, _ = remote_crypto(server, key.id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.sign(SignatureAlgorithm.es256, digest_for("ES256"))
    assert ei.value.status_code == 403, (ei.value.status_code, ei.value.message)
    assert _error_code(ei.value) is not None, ei.value.response.text()
    # the key itself is still readable
    assert key_client.get_key(key.name).properties.enabled is False


def test_expired_key_refuses_sign(server, key_client):
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    key = key_client.create_ec_key(uniq("expired"), curve="P-256", hardware_protected=True, expires_on=past)
    crypto, _ = remote_crypto(server, key.id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.sign(SignatureAlgorithm.es256, digest_for("ES256"))
    assert ei.value.status_code == 403, (ei.value.status_code, ei.value.message)
    # extending exp makes it usable again
    key_client.update_key_properties(key.name, expires_on=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    crypto.sign(SignatureAlgorithm.es256, digest_for("ES256"))


def test_not_yet_valid_key_refuses_sign(server, key_client):
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    key = key_client.create_rsa_key(uniq("nbf"), size=2048, hardware_protected=True, not_before=future)
    crypto, _ = remote_crypto(server, key.id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.sign(SignatureAlgorithm.rs256, digest_for("RS256"))
    assert ei.value.status_code == 403, (ei.value.status_code, ei.value.message)
    key_client.update_key_properties(key.name, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    crypto.sign(SignatureAlgorithm.rs256, digest_for("RS256"))


def test_disabled_oct_key_refuses_wrap(server, key_client):
    key = key_client.create_oct_key(uniq("disoct"), size=256, hardware_protected=True)
    key_client.update_key_properties(key.name, enabled=False)
    crypto, _ = remote_crypto(server, key.id)
    with pytest.raises(HttpResponseError) as ei:
        crypto.wrap_key("A256KW", bytes(32))
    assert ei.value.status_code == 403, (ei.value.status_code, ei.value.message)
