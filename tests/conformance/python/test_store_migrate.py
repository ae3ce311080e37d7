"""`coffer store migrate`: an instance on SQLite (keys with versions, a deleted key, principals, a group, role
assignments, a key policy) moves to PostgreSQL with the same security domain; afterwards every key signs as before
(verified with the public key read before the move), every principal authenticates, the deleted key is still
deleted and recoverable, and the old SQLite file can no longer be started by mistake.

Needs the cluster of `scripts/postgres start` (COFFER_TEST_PG_URL, COFFER_TEST_PG_PASSWORD_FILE, COFFER_TEST_PG_CA);
`./scripts/test` starts one and sets COFFER_REQUIRE_POSTGRES=1, so there the test fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.keys.crypto import SignatureAlgorithm

from coffer_harness import CofferServer, database_args, remote_crypto, uniq
from localcrypto import digest_for, ec_public_from_jwk, ec_verify, rsa_public_from_jwk, rsa_verify
from sdtools import run_coffer

API = "7.6"
CRYPTO_USER_ROLE = "21dbd100-6940-42c2-9190-5d6cb909625b"
POLICY_ADMINISTRATOR = "4bd23610-cdcf-4971-bdee-bdc562cc28e4"
EXPIRATION_SET = "1d478a74-21ba-4b9f-9d8f-8e6fced0eec5"

pytestmark = pytest.mark.skipif(
    not os.environ.get("COFFER_TEST_PG_URL") and os.environ.get("COFFER_REQUIRE_POSTGRES") != "1",
    reason="no PostgreSQL cluster (run scripts/postgres start and export its lines)",
)


def call(srv, token, method, path, body=None):
    return requests.request(method, f"{srv.url}{path}?api-version={API}", json=body, verify=srv.ca, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})


def token_of(srv, principal) -> requests.Response:
    return requests.post(f"{srv.url}/{srv.tenant}/oauth2/v2.0/token", verify=srv.ca, timeout=30, data={
        "grant_type": "client_credentials", "client_id": principal["clientId"],
        "client_secret": principal["clientSecret"], "scope": srv.scope})


def test_an_instance_moves_from_sqlite_to_postgres_with_its_keys_and_identities(tmp_path):
    assert os.environ.get("COFFER_TEST_PG_URL"), "COFFER_REQUIRE_POSTGRES=1 but no cluster: run scripts/postgres start"
    data = tmp_path / "data"
    srv = CofferServer(data, name="python-store-migrate", database="sqlite")
    srv.start()
    try:
        kc = srv.key_client()
        admin = srv.token()
        rsa = kc.create_rsa_key(uniq("mig-rsa"), size=2048, hardware_protected=True)
        ec = kc.create_ec_key(uniq("mig-ec"), curve="P-256", hardware_protected=True)
        rotated = kc.create_ec_key(ec.name, curve="P-256", hardware_protected=True)  # a second version
        gone = kc.create_oct_key(uniq("mig-gone"), size=256, hardware_protected=True)
        kc.begin_delete_key(gone.name).wait()
        principals = []
        for i in range(2):
            r = call(srv, admin, "POST", "/coffer/v1/principals", {"displayName": uniq(f"mig-app{i}")})
            assert r.status_code == 201, r.text
            principals.append(r.json())
        r = call(srv, admin, "POST", "/coffer/v1/groups", {"displayName": uniq("mig-group")})
        assert r.status_code == 201, r.text
        group = r.json()
        r = call(srv, admin, "PUT", f"/coffer/v1/groups/{group['objectId']}/members/{principals[0]['objectId']}")
        assert r.status_code in (200, 201, 204), r.text
        assignment = str(uuid.uuid4())
        r = call(srv, admin, "PUT", f"/keys/providers/Microsoft.Authorization/roleAssignments/{assignment}", {
            "properties": {"principalId": principals[1]["objectId"],
                           "roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
                                               + CRYPTO_USER_ROLE}})
        assert r.status_code == 201, r.text
        r = call(srv, admin, "PUT", f"/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", {
            "properties": {"principalId": principals[0]["objectId"],
                           "roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
                                               + POLICY_ADMINISTRATOR}})
        assert r.status_code == 201, r.text
        policy_admin = token_of(srv, principals[0]).json()["access_token"]
        r = call(srv, policy_admin, "PUT", "/coffer/v1/policies/mig-expiry",
                 {"definitionId": EXPIRATION_SET, "effect": "Audit"})
        assert r.status_code == 201, r.text
        sig_before = remote_crypto(srv, rsa.id)[0].sign(SignatureAlgorithm.rs256, digest_for("RS256")).signature
        rc = srv.stop()
        assert rc == 0, srv.log_tail()

        pg = database_args(data, postgres=True)
        url, password_file = pg[1], pg[3]
        out = run_coffer("store", "migrate", "--from", data, "--to", url, "--database-password-file", password_file)
        counts = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines() if line.endswith(" rows")}
        assert counts["instance"] == 1 and counts["keys"] == 3 and counts["key_versions"] == 4, out.stdout
        assert counts["principals"] >= 3 and counts["groups"] == 1 and counts["group_members"] == 1, out.stdout
        assert (password_file not in out.stdout) and ("password" not in out.stdout.lower()), out.stdout
        assert not (data / "coffer.db").exists() and (data / "coffer.db.migrated-to-postgres").exists()

        # A second migration into the same (now populated) database is refused, and nothing changes.
        again = run_coffer("store", "migrate", "--from", data, "--to", url, "--database-password-file", password_file,
                           ok=False)
        assert "holds no SQLite database" in again.stderr or "already holds an instance" in again.stderr, again.stderr

        # Started without --database-url, the data directory refuses instead of making a new empty instance.
        srv.database = "sqlite"
        rc, log = srv.start_expecting_failure()
        assert rc != 0 and "moved to PostgreSQL" in log, log
        assert not (data / "coffer.db").exists(), "a refused start must not create a new SQLite database"

        srv.database = "postgres"
        srv.start()
        kc = srv.key_client()
        # Every key is there, with its versions, and signs as before (verified with the public keys read before).
        got = kc.get_key(rsa.name)
        assert got.id == rsa.id and got.key.n == rsa.key.n
        rsa_c, rec = remote_crypto(srv, rsa.id)
        digest = digest_for("RS256")
        sig = rsa_c.sign(SignatureAlgorithm.rs256, digest).signature
        rec.assert_remote("sign")
        rsa_verify(rsa_public_from_jwk(rsa.key), "RS256", digest, sig)
        rsa_verify(rsa_public_from_jwk(rsa.key), "RS256", digest, sig_before)
        assert kc.get_key(ec.name).id == rotated.id
        versions = {p.version for p in kc.list_properties_of_key_versions(ec.name)}
        assert versions == {ec.properties.version, rotated.properties.version}, versions
        ec_c, rec = remote_crypto(srv, ec.id)
        ec_digest = digest_for("ES256")
        ec_sig = ec_c.sign(SignatureAlgorithm.es256, ec_digest).signature
        ec_verify(ec_public_from_jwk(ec.key), "ES256", ec_digest, ec_sig, "P-256")  # ec.id names the first version
        # The deleted key is still deleted, and recovers.
        with pytest.raises(ResourceNotFoundError):
            kc.get_key(gone.name)
        assert gone.name in {d.name for d in kc.list_deleted_keys()}
        kc.begin_recover_deleted_key(gone.name).wait()
        assert kc.get_key(gone.name).id == gone.id
        # New keys get new version rows after the copied ones.
        fresh = kc.create_ec_key(uniq("mig-after"), curve="P-256", hardware_protected=True)
        assert kc.get_key(fresh.name).id == fresh.id
        # Every principal authenticates; the key-scoped assignment and the group membership came along.
        for p in principals:
            r = token_of(srv, p)
            assert r.status_code == 200, r.text
        user = r.json()["access_token"]
        r = call(srv, user, "GET", f"/keys/{rsa.name}")
        assert r.status_code == 200, r.text
        r = call(srv, srv.token(), "GET", f"/coffer/v1/groups/{group['objectId']}")
        assert r.status_code == 200 and principals[0]["objectId"] in r.json()["members"], r.text
        r = call(srv, srv.token(), "GET", f"/keys/providers/Microsoft.Authorization/roleAssignments/{assignment}")
        assert r.status_code == 200, r.text
        r = call(srv, token_of(srv, principals[0]).json()["access_token"], "GET", "/coffer/v1/policies/mig-expiry")
        assert r.status_code == 200 and r.json()["effect"] == "Audit", r.text
        # The audit chain (files in the data directory, checkpoint now in PostgreSQL) verifies.
        rc = srv.stop()
        assert rc == 0, srv.log_tail()
        run_coffer("audit", "verify", data / "audit", "--data-dir", data, *pg)
    finally:
        srv.kill()
