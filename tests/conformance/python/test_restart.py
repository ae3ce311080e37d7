"""A server of its own: keys created before a SIGTERM + restart on the same data dir keep working after it."""

from __future__ import annotations

import pytest
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from coffer_harness import CofferServer, check_admin_credentials_file, remote_crypto, uniq
from localcrypto import (
    digest_for,
    ec_public_from_jwk,
    ec_verify,
    oct_jwk,
    random_bytes,
    rsa_enc_padding,
    rsa_public_from_jwk,
    rsa_verify,
)


@pytest.fixture
def own_server(tmp_path):
    srv = CofferServer(tmp_path / "data", name="python-restart")
    yield srv
    srv.kill()  # only if a test left it running


def test_keys_survive_restart(own_server):
    srv = own_server
    srv.start()
    creds_before = check_admin_credentials_file(srv.data_dir, srv.port)
    creds_bytes = (srv.data_dir / "admin-credentials.json").read_bytes()
    ca_bytes = (srv.data_dir / "ca.pem").read_bytes()

    old_cred = srv.credential()
    kc = srv.key_client(old_cred)
    rsa_key = kc.create_rsa_key(uniq("rrsa"), size=2048, hardware_protected=True)
    ec_key = kc.create_ec_key(uniq("rec"), curve="P-384", hardware_protected=True)
    oct_key = kc.create_oct_key(uniq("roct"), size=256, hardware_protected=True)
    k_known = random_bytes(32)
    imp_key = kc.import_key(uniq("rimp"), oct_jwk(k_known), hardware_protected=True)

    # work done before the restart
    rsa_c, rec = remote_crypto(srv, rsa_key.id, old_cred)
    digest = digest_for("RS256")
    rsa_sig = rsa_c.sign(SignatureAlgorithm.rs256, digest).signature
    rec.assert_remote("sign")
    rsa_ct = rsa_public_from_jwk(rsa_key.key).encrypt(b"rsa before restart", rsa_enc_padding("RSA-OAEP-256"))
    ec_c, rec = remote_crypto(srv, ec_key.id, old_cred)
    ec_digest = digest_for("ES384")
    ec_sig = ec_c.sign(SignatureAlgorithm.es384, ec_digest).signature
    rec.assert_remote("sign")
    oct_c, rec = remote_crypto(srv, oct_key.id, old_cred)
    gcm = oct_c.encrypt(EncryptionAlgorithm.a256_gcm, b"oct before restart", additional_authenticated_data=b"aad")
    rec.assert_remote("encrypt")
    cek = random_bytes(32)
    wrapped = oct_c.wrap_key(KeyWrapAlgorithm.aes_256, cek).encrypted_key
    rec.assert_remote("wrapkey")

    rc = srv.stop()
    assert rc == 0, f"SIGTERM must shut down gracefully with status 0, got {rc}\n{srv.log_tail()}"

    # same dir, same port
    srv.start()
    assert (srv.data_dir / "admin-credentials.json").read_bytes() == creds_bytes, "admin-credentials.json was rewritten"
    assert (srv.data_dir / "ca.pem").read_bytes() == ca_bytes, "ca.pem changed across a restart"
    assert srv.creds == creds_before

    # the admin credentials still work (fresh credential = fresh token)
    new_cred = srv.credential()
    kc2 = srv.key_client(new_cred)
    for k in (rsa_key, ec_key, oct_key, imp_key):
        got = kc2.get_key(k.name)
        assert got.id == k.id, f"{k.name}: id changed across restart ({got.id} != {k.id})"
    assert kc2.get_key(rsa_key.name).key.n == rsa_key.key.n
    assert kc2.get_key(ec_key.name).key.x == ec_key.key.x
    listed = {p.name for p in kc2.list_properties_of_keys()}
    assert {rsa_key.name, ec_key.name, oct_key.name, imp_key.name} <= listed

    rsa_c2, rec = remote_crypto(srv, rsa_key.id, new_cred)
    assert rsa_c2.decrypt(EncryptionAlgorithm.rsa_oaep_256, rsa_ct).plaintext == b"rsa before restart"
    rec.assert_remote("decrypt")
    assert rsa_c2.sign(SignatureAlgorithm.rs256, digest).signature == rsa_sig, "same RSA key must give the same RS256"
    assert rsa_c2.verify(SignatureAlgorithm.rs256, digest, rsa_sig).is_valid is True
    rec.take()
    rsa_verify(rsa_public_from_jwk(rsa_key.key), "RS256", digest, rsa_sig)

    ec_c2, rec = remote_crypto(srv, ec_key.id, new_cred)
    assert ec_c2.verify(SignatureAlgorithm.es384, ec_digest, ec_sig).is_valid is True
    rec.assert_remote("verify")
    new_ec_sig = ec_c2.sign(SignatureAlgorithm.es384, ec_digest).signature
    ec_verify(ec_public_from_jwk(ec_key.key), "ES384", ec_digest, new_ec_sig, "P-384")

    oct_c2, rec = remote_crypto(srv, oct_key.id, new_cred)
    assert oct_c2.decrypt(EncryptionAlgorithm.a256_gcm, gcm.ciphertext, iv=gcm.iv, authentication_tag=gcm.tag,
                          additional_authenticated_data=b"aad").plaintext == b"oct before restart"
    rec.assert_remote("decrypt")
    assert oct_c2.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped).key == cek
    rec.assert_remote("unwrapkey")

    imp_c2, rec = remote_crypto(srv, imp_key.id, new_cred)
    assert imp_c2.wrap_key(KeyWrapAlgorithm.aes_256, cek).encrypted_key == aes_key_wrap(k_known, cek)
    rec.assert_remote("wrapkey")

    # a client holding a token issued before the restart keeps working
    kc.get_key(rsa_key.name)

    rc = srv.stop()
    assert rc == 0, f"second SIGTERM: status {rc}"
