"""Key lifecycle through the unmodified azure-keyvault-keys KeyClient."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import KeyCurveName, KeyType
from azure.keyvault.keys.crypto import SignatureAlgorithm

from coffer_harness import Recorder, remote_crypto, uniq
from localcrypto import CURVES, digest_for, ec_public_from_jwk, oct_jwk, random_bytes, rsa_public_from_jwk, rsa_verify

NOW_SLACK = dt.timedelta(minutes=5)
RSA_DEFAULT_OPS = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def assert_fresh_attributes(key, server) -> None:
    p = key.properties
    assert p.enabled is True, f"enabled={p.enabled!r}"
    assert p.created_on is not None and abs(p.created_on - _now()) < NOW_SLACK, f"created={p.created_on!r}"
    assert p.updated_on is not None and p.updated_on >= p.created_on, f"updated={p.updated_on!r}"
    assert p.recoverable_days == 90, f"recoverableDays={p.recoverable_days!r}"
    assert p.recovery_level == "Recoverable+Purgeable", f"recoveryLevel={p.recovery_level!r}"
    assert p.not_before is None and p.expires_on is None
    # kid = {url}/keys/{name}/{version}, with the exact scheme://host:port the client used
    m = re.fullmatch(re.escape(server.url) + r"/keys/([0-9A-Za-z-]+)/([0-9A-Za-z]+)", key.id)
    assert m, f"unexpected kid {key.id!r} (server url {server.url})"
    assert m.group(1) == key.name and m.group(2) == key.properties.version


def assert_no_private_material(jwk) -> None:
    for f in ("d", "dp", "dq", "qi", "p", "q", "k"):
        assert getattr(jwk, f, None) in (None, b""), f"response JWK carries private member {f!r}"


# ---------------------------------------------------------------------------------------------------- create
@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_create_rsa_hsm(server, key_client, size):
    name = uniq(f"rsa{size}")
    key = key_client.create_rsa_key(name, size=size, hardware_protected=True)
    assert key.name == name
    assert key.key_type == KeyType.rsa_hsm, f"kty={key.key_type!r}"
    assert len(key.key.n) == size // 8, f"n is {len(key.key.n)} bytes for RSA-{size}"
    assert key.key.n[0] & 0x80, f"n must be the minimal big-endian encoding of a {size}-bit modulus"
    assert int.from_bytes(key.key.e, "big") == 65537, key.key.e
    rsa_public_from_jwk(key.key)  # a valid public key
    assert_no_private_material(key.key)
    assert RSA_DEFAULT_OPS <= set(key.key_operations), f"default key_ops {key.key_operations}"
    assert_fresh_attributes(key, server)


@pytest.mark.parametrize("crv", ["P-256", "P-256K", "P-384", "P-521"])
def test_create_ec_hsm(server, key_client, crv):
    name = uniq("ec")
    key = key_client.create_ec_key(name, curve=KeyCurveName(crv), hardware_protected=True)
    assert key.key_type == KeyType.ec_hsm, f"kty={key.key_type!r}"
    assert key.key.crv == crv, f"crv={key.key.crv!r}"
    size = CURVES[crv][1]
    assert len(key.key.x) == size and len(key.key.y) == size, (len(key.key.x), len(key.key.y))
    ec_public_from_jwk(key.key)  # raises if the point is not on the curve
    assert_no_private_material(key.key)
    assert {"sign", "verify"} <= set(key.key_operations), f"default key_ops {key.key_operations}"
    assert_fresh_attributes(key, server)


@pytest.mark.parametrize("size", [128, 192, 256])
def test_create_oct_hsm(server, key_client, size):
    name = uniq(f"oct{size}")
    key = key_client.create_oct_key(name, size=size, hardware_protected=True)
    assert key.key_type == KeyType.oct_hsm, f"kty={key.key_type!r}"
    for f in ("k", "n", "e", "x", "y", "d"):
        assert getattr(key.key, f, None) in (None, b""), f"oct-HSM key response carries {f!r}"
    assert_fresh_attributes(key, server)
    # The key really has `size` bits: the matching AES-GCM algorithm works on the server.
    crypto, rec = remote_crypto(server, key.id)
    alg = f"A{size}GCM"
    enc = crypto.encrypt(alg, b"sixteen byte msg")
    rec.assert_remote("encrypt")
    dec = crypto.decrypt(alg, enc.ciphertext, iv=enc.iv, authentication_tag=enc.tag)
    rec.assert_remote("decrypt")
    assert dec.plaintext == b"sixteen byte msg"


@pytest.mark.parametrize(
    "kty,kwargs,want",
    [("RSA", {"size": 2048}, KeyType.rsa_hsm), ("EC", {"curve": "P-256"}, KeyType.ec_hsm),
     ("oct", {"size": 256}, KeyType.oct_hsm)],
)
def test_plain_kty_is_normalised_to_hsm(key_client, kty, kwargs, want):
    key = key_client.create_key(uniq("plain"), kty, **kwargs)
    assert key.key_type == want, f"create with kty={kty} returned kty={key.key_type!r}"


def test_create_with_options(server, key_client):
    name = uniq("opts")
    nbf = (_now() - dt.timedelta(hours=1)).replace(microsecond=0)
    exp = (_now() + dt.timedelta(days=30)).replace(microsecond=0)
    key = key_client.create_ec_key(
        name, curve="P-256", hardware_protected=True, key_operations=["sign"], tags={"team": "a", "env": "test"},
        not_before=nbf, expires_on=exp, enabled=True,
    )
    assert key.key_operations == ["sign"], key.key_operations
    assert key.properties.tags == {"team": "a", "env": "test"}
    assert key.properties.not_before == nbf and key.properties.expires_on == exp
    got = key_client.get_key(name)
    assert got.key_operations == ["sign"] and got.properties.tags == {"team": "a", "env": "test"}
    assert got.properties.not_before == nbf and got.properties.expires_on == exp


# ---------------------------------------------------------------------------------------------------- get
def test_get_latest_and_by_version(key_client):
    name = uniq("ver")
    v1 = key_client.create_ec_key(name, curve="P-256", hardware_protected=True)
    v2 = key_client.create_ec_key(name, curve="P-256", hardware_protected=True)
    assert v1.properties.version != v2.properties.version
    latest = key_client.get_key(name)
    assert latest.id == v2.id and latest.key.x == v2.key.x
    old = key_client.get_key(name, v1.properties.version)
    assert old.id == v1.id and old.key.x == v1.key.x and old.key.y == v1.key.y
    newer = key_client.get_key(name, v2.properties.version)
    assert newer.id == v2.id


def test_get_missing_key_and_version(key_client):
    with pytest.raises(ResourceNotFoundError) as ei:
        key_client.get_key(uniq("missing"))
    assert ei.value.status_code == 404 and ei.value.error.code == "KeyNotFound", ei.value
    key = key_client.create_oct_key(uniq("v"), size=128, hardware_protected=True)
    with pytest.raises(ResourceNotFoundError) as ei:
        key_client.get_key(key.name, "0" * 32)
    assert ei.value.status_code == 404, ei.value


# ---------------------------------------------------------------------------------------------------- update
def test_update_properties_and_effect(server, key_client):
    name = uniq("upd")
    key = key_client.create_rsa_key(name, size=2048, hardware_protected=True)
    created = key.properties.created_on
    exp = (_now() + dt.timedelta(days=7)).replace(microsecond=0)
    nbf = (_now() - dt.timedelta(days=1)).replace(microsecond=0)
    time.sleep(1.1)
    upd = key_client.update_key_properties(
        name, tags={"a": "1"}, expires_on=exp, not_before=nbf, key_operations=["sign", "verify"]
    )
    assert upd.id == key.id, "update without a version must update the latest version"
    assert upd.properties.tags == {"a": "1"}
    assert upd.properties.expires_on == exp and upd.properties.not_before == nbf
    assert sorted(upd.key_operations) == ["sign", "verify"]
    assert upd.properties.created_on == created
    assert upd.properties.updated_on > created, (upd.properties.updated_on, created)
    assert upd.key.n == key.key.n, "update must not change key material"

    got = key_client.get_key(name)
    assert got.properties.tags == {"a": "1"} and sorted(got.key_operations) == ["sign", "verify"]
    assert got.properties.expires_on == exp and got.properties.not_before == nbf and got.properties.enabled is True

    # patch semantics: an update that only disables leaves tags and key_ops alone
    dis = key_client.update_key_properties(name, key.properties.version, enabled=False)
    assert dis.properties.enabled is False
    assert dis.properties.tags == {"a": "1"} and sorted(dis.key_operations) == ["sign", "verify"]
    assert key_client.get_key(name).properties.enabled is False

    # effect of enabled=False: sign is refused; re-enabling makes it work again
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for("RS256")
    with pytest.raises(HttpResponseError) as ei:
        crypto.sign(SignatureAlgorithm.rs256, digest)
    assert ei.value.status_code == 403, f"sign on a disabled key: {ei.value.status_code} {ei.value.message}"
    key_client.update_key_properties(name, enabled=True)
    sig = crypto.sign(SignatureAlgorithm.rs256, digest)
    rec.take()
    rsa_verify(rsa_public_from_jwk(key.key), "RS256", digest, sig.signature)

    # effect of key_ops: encrypt is no longer allowed
    with pytest.raises(HttpResponseError) as ei:
        crypto.encrypt("RSA-OAEP", b"x")
    assert ei.value.status_code in (400, 403), f"encrypt outside key_ops: {ei.value.status_code} {ei.value.message}"


def test_update_missing_key_is_404(key_client):
    with pytest.raises(ResourceNotFoundError):
        key_client.update_key_properties(uniq("nope"), enabled=False)


# ---------------------------------------------------------------------------------------------------- list
def test_list_versions_paged(server, key_client):
    name = uniq("pages")
    versions = [key_client.create_oct_key(name, size=128, hardware_protected=True).properties.version for _ in range(5)]
    rec = Recorder()
    seen = [p for p in key_client.list_properties_of_key_versions(name, max_page_size=2, raw_response_hook=rec)]
    ids = [p.id for p in seen]
    assert sorted(p.version for p in seen) == sorted(versions), ids
    assert len(ids) == len(set(ids)) == 5, f"duplicates across pages: {ids}"
    for p in seen:
        assert p.name == name and p.id == f"{server.url}/keys/{name}/{p.version}", p.id
        assert p.enabled is True and p.created_on is not None
    pages = [c for c in rec.take() if c[0] == "GET" and c[2] == 200]
    assert len(pages) >= 3, f"5 versions with maxresults=2 must take >= 3 pages, saw {pages}"


# ---------------------------------------------------------------------------------------------------- delete / recover / purge
def _delete(key_client, name):
    poller = key_client.begin_delete_key(name)
    deleted = poller.result()
    poller.wait(timeout=30)
    assert poller.done(), "delete poller did not finish within 30 s (GET /deletedkeys/{name} kept failing)"
    return deleted


def test_soft_delete_get_list_recover(server, key_client):
    name = uniq("del")
    key = key_client.create_rsa_key(name, size=2048, hardware_protected=True)
    before = _now()
    deleted = _delete(key_client, name)
    assert deleted.name == name and deleted.id == key.id
    assert deleted.recovery_id == f"{server.url}/deletedkeys/{name}", deleted.recovery_id
    assert deleted.deleted_date is not None and abs(deleted.deleted_date - before) < NOW_SLACK
    purge_in = deleted.scheduled_purge_date - deleted.deleted_date
    assert dt.timedelta(days=89) < purge_in <= dt.timedelta(days=90, minutes=1), f"scheduledPurgeDate - deletedDate = {purge_in}"
    assert deleted.key.n == key.key.n

    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name, key.properties.version)
    # a soft-deleted key cannot be used or changed
    dcrypto, _ = remote_crypto(server, key.id)
    with pytest.raises(ResourceNotFoundError):
        dcrypto.sign(SignatureAlgorithm.rs256, digest_for("RS256"))
    with pytest.raises(ResourceNotFoundError):
        key_client.update_key_properties(name, enabled=False)
    with pytest.raises(ResourceNotFoundError):
        key_client.backup_key(name)
    got = key_client.get_deleted_key(name)
    assert got.id == key.id and got.recovery_id == deleted.recovery_id
    assert got.scheduled_purge_date == deleted.scheduled_purge_date
    assert name not in {p.name for p in key_client.list_properties_of_keys()}, "deleted key still listed in /keys"
    listed = {d.name: d for d in key_client.list_deleted_keys()}
    assert name in listed, "deleted key missing from list_deleted_keys"
    assert listed[name].recovery_id == deleted.recovery_id and listed[name].deleted_date is not None

    poller = key_client.begin_recover_deleted_key(name)
    recovered = poller.result()
    poller.wait(timeout=30)
    assert poller.done(), "recover poller did not finish within 30 s"
    assert recovered.id == key.id
    again = key_client.get_key(name)
    assert again.id == key.id and again.key.n == key.key.n and again.properties.enabled is True
    with pytest.raises(ResourceNotFoundError):
        key_client.get_deleted_key(name)

    # still usable after recovery
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for("PS256")
    sig = crypto.sign(SignatureAlgorithm.ps256, digest)
    rec.assert_remote("sign")
    rsa_verify(rsa_public_from_jwk(key.key), "PS256", digest, sig.signature)


def test_delete_purge_recreate(key_client):
    name = uniq("purge")
    first = key_client.create_ec_key(name, curve="P-384", hardware_protected=True)
    _delete(key_client, name)
    key_client.purge_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_deleted_key(name)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_key(name)
    assert name not in {d.name for d in key_client.list_deleted_keys()}
    second = key_client.create_ec_key(name, curve="P-384", hardware_protected=True)
    assert second.properties.version != first.properties.version
    assert second.key.x != first.key.x
    assert len(list(key_client.list_properties_of_key_versions(name))) == 1, "purge must remove every old version"


def test_create_and_import_onto_soft_deleted_name_conflict(key_client):
    name = uniq("conf")
    key_client.create_oct_key(name, size=256, hardware_protected=True)
    _delete(key_client, name)
    with pytest.raises(ResourceExistsError) as ei:
        key_client.create_oct_key(name, size=256, hardware_protected=True)
    assert ei.value.status_code == 409, ei.value
    with pytest.raises(ResourceExistsError) as ei:
        key_client.import_key(name, oct_jwk(random_bytes(32)), hardware_protected=True)
    assert ei.value.status_code == 409, ei.value
    # nothing changed: still soft-deleted, then purge and the name is free again
    assert key_client.get_deleted_key(name).name == name
    key_client.purge_deleted_key(name)
    key_client.create_oct_key(name, size=256, hardware_protected=True)


def test_delete_missing_and_purge_missing_are_404(key_client):
    with pytest.raises(ResourceNotFoundError):
        key_client.begin_delete_key(uniq("nokey"))
    with pytest.raises(ResourceNotFoundError):
        key_client.get_deleted_key(uniq("nokey"))
    with pytest.raises(ResourceNotFoundError):
        key_client.purge_deleted_key(uniq("nokey"))
    with pytest.raises(ResourceNotFoundError):
        key_client.begin_recover_deleted_key(uniq("nokey"))
