"""Local RBAC driven by the unmodified `azure-keyvault-administration` KeyVaultAccessControlClient (issue 3,
"How it is proven"): built-in and custom role definitions, role assignments at '/', '/keys' and '/keys/{name}',
enforcement on the keys API (403 Forbidden), groups, separation of duties, identity administration, bad input.

Every test acts with principals it creates itself through the Coffer API (/coffer/v1/principals) with the session
server's bootstrap principal (Managed HSM Administrator + Coffer Identity Administrator, plus the Crypto User/Officer
roles the harness gives it); principals, groups and assignments are removed again at teardown.
Expected names, GUIDs and dataActions: ../shared/docs/builtin-roles.md; wire facts: api-surface.md §3,
sdk-requirements.md §7.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Optional

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import ClientSecretCredential
from azure.keyvault.administration import (
    KeyVaultAccessControlClient,
    KeyVaultDataAction,
    KeyVaultPermission,
    KeyVaultRoleScope,
)
from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm

import coffer_harness
from coffer_harness import CRYPTO_OFFICER, CRYPTO_USER, CofferServer, Recorder, remote_crypto, uniq
from localcrypto import digest_for, ec_public_from_jwk, ec_verify, random_bytes

API = "7.6"
DEF_PREFIX = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
MHSM = "Microsoft.KeyVault/managedHsm"

ADMINISTRATOR = "a290e904-7015-4bba-90c8-60543313cdb4"
POLICY_ADMINISTRATOR = "4bd23610-cdcf-4971-bdee-bdc562cc28e4"
CRYPTO_AUDITOR = "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3"
IDENTITY_ADMINISTRATOR = "c0ffe700-1d00-4a00-8000-00000000a001"

# builtin-roles.md §1: role definition id -> (service roleName, dataActions in service order, without the prefix)
BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    ADMINISTRATOR: ("Managed HSM Administrator", [
        "/roleAssignments/delete/action", "/roleAssignments/read/action", "/roleAssignments/write/action",
        "/roleDefinitions/read/action", "/roleDefinitions/write/action", "/roleDefinitions/delete/action",
        "/securitydomain/download/action", "/securitydomain/download/read", "/securitydomain/upload/action",
        "/securitydomain/upload/read", "/securitydomain/transferkey/read", "/backup/start/action",
        "/restore/start/action", "/backup/status/action", "/restore/status/action"]),
    CRYPTO_OFFICER: ("Managed HSM Crypto Officer", [
        "/roleAssignments/delete/action", "/roleAssignments/read/action", "/roleAssignments/write/action",
        "/roleDefinitions/read/action", "/roleDefinitions/write/action", "/roleDefinitions/delete/action",
        "/keys/deletedKeys/read/action", "/keys/deletedKeys/delete", "/keys/deletedKeys/recover/action",
        "/keys/export/action"]),
    CRYPTO_USER: ("Managed HSM Crypto User", [
        "/roleDefinitions/read/action", "/roleAssignments/read/action", "/keys/read/action", "/keys/write/action",
        "/keys/delete", "/keys/create", "/keys/rotate/action", "/keys/import/action", "/keys/release/action",
        "/keys/backup/action", "/keys/restore/action", "/keys/encrypt/action", "/keys/decrypt/action",
        "/keys/wrap/action", "/keys/unwrap/action", "/keys/sign/action", "/keys/verify/action",
        "/keys/derive/action", "/rng/action"]),
    POLICY_ADMINISTRATOR: ("Managed HSM Policy Administrator", [
        "/roleDefinitions/read/action", "/roleDefinitions/write/action", "/roleDefinitions/delete/action",
        "/roleAssignments/read/action", "/roleAssignments/write/action", "/roleAssignments/delete/action"]),
    CRYPTO_AUDITOR: ("Managed HSM Crypto Auditor", [
        "/roleAssignments/read/action", "/roleDefinitions/read/action", "/keys/read/action",
        "/keys/deletedKeys/read/action"]),
    "33413926-3206-4cdd-b39a-83574fe37a17": ("Managed HSM Crypto Service Encryption User", [
        "/keys/read/action", "/keys/wrap/action", "/keys/unwrap/action"]),
    "21dbd100-6940-42c2-9190-5d6cb909625c": ("Managed HSM Crypto Service Release User", [
        "/keys/release/action"]),
    "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8": ("Managed HSM Backup User", [
        "/backup/start/action", "/backup/status/action", "/keys/backup/action"]),
    "6efe6056-5259-49d2-8b3d-d3d73544b20b": ("Managed HSM Restore", [
        "/restore/start/action", "/restore/status/action", "/keys/restore/action"]),
}


def def_id(guid: str) -> str:
    return DEF_PREFIX + guid


# ------------------------------------------------------------------------------------------------ helpers
def _body(e: HttpResponseError) -> Any:
    try:
        return e.response.json()
    except Exception:  # pylint: disable=broad-except
        return e.response.text() if e.response is not None else None


def expect_status(status: int, fn: Callable[[], Any], what: str) -> HttpResponseError:
    """Call fn and require an HttpResponseError with this status (anything else fails with the details)."""
    try:
        result = fn()
    except HttpResponseError as e:
        assert e.status_code == status, f"{what}: expected HTTP {status}, got {e.status_code} {_body(e)!r}"
        return e
    pytest.fail(f"{what}: expected HTTP {status}, but the call succeeded and returned {result!r}")


def expect_forbidden(fn: Callable[[], Any], what: str, action: Optional[str] = None) -> None:
    """403 with the Azure error body {"error": {"code": "Forbidden", ...}}; the message names the missing dataAction."""
    e = expect_status(403, fn, what)
    body = _body(e)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"{what}: 403 body not Azure-shaped: {body!r}"
    assert body["error"].get("code") == "Forbidden", f"{what}: 403 error code {body['error'].get('code')!r}: {body!r}"
    assert body["error"].get("message"), f"{what}: 403 without an error message: {body!r}"
    if action:
        assert MHSM + action in body["error"]["message"], f"{what}: 403 message does not name {MHSM + action}: {body!r}"


def statuses(rec: Recorder) -> list[int]:
    """Statuses the pipeline saw since the last call, without the bearer challenge (401) a new client starts with."""
    return [c[2] for c in rec.take() if c[2] != 401]


def azure_error(r: requests.Response) -> dict:
    try:
        body = r.json()
    except ValueError:
        pytest.fail(f"{r.request.method} {r.url}: {r.status_code} with a non-JSON body {r.text!r}")
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an Azure error body: {body!r}"
    assert body["error"].get("code") and body["error"].get("message"), f"error without code/message: {body!r}"
    return body["error"]


class Principal:
    """A principal created through POST /coffer/v1/principals; every credential() is a fresh token cache."""

    def __init__(self, server: CofferServer, info: dict):
        self.server = server
        self.info = info
        self.oid: str = info["objectId"]

    def credential(self, secret: Optional[str] = None) -> ClientSecretCredential:
        return ClientSecretCredential(
            self.info["tenantId"],
            self.info["clientId"],
            secret or self.info["clientSecret"],
            authority=self.server.creds["authority"],
            disable_instance_discovery=True,
            connection_verify=self.server.ca,
        )

    def key_client(self, credential=None):
        return self.server.key_client(credential or self.credential())

    def access_client(self, credential=None) -> KeyVaultAccessControlClient:
        return access_control_client(self.server, credential or self.credential())

    def token(self, credential=None) -> str:
        return (credential or self.credential()).get_token(self.server.scope).token


def access_control_client(server: CofferServer, credential) -> KeyVaultAccessControlClient:
    return KeyVaultAccessControlClient(server.url, credential, verify_challenge_resource=False,
                                       connection_verify=server.ca)


class Coffer:
    """The Coffer identity API (/coffer/v1) and raw RBAC requests, as some principal (default: bootstrap)."""

    def __init__(self, server: CofferServer, credential):
        self.server = server
        self.credential = credential

    def request(self, method: str, path: str, token: Optional[str] = None, **kw) -> requests.Response:
        tok = token or self.credential.get_token(self.server.scope).token
        sep = "&" if "?" in path else "?"
        return requests.request(method, f"{self.server.url}{path}{sep}api-version={API}", verify=self.server.ca,
                                headers={"Authorization": f"Bearer {tok}", **kw.pop("headers", {})}, timeout=30, **kw)


@pytest.fixture(scope="module")
def admin_ac(server, credential) -> KeyVaultAccessControlClient:
    """KeyVaultAccessControlClient of the bootstrap principal."""
    return access_control_client(server, credential)


@pytest.fixture(scope="module")
def coffer(server, credential) -> Coffer:
    return Coffer(server, credential)


class Identities:
    """Creates principals, groups and role assignments; removes all of them at teardown."""

    def __init__(self, server: CofferServer, coffer: Coffer, ac: KeyVaultAccessControlClient):
        self.server, self.coffer, self.ac = server, coffer, ac
        self.principals: list[str] = []
        self.groups: list[str] = []
        self.assignments: list[tuple[str, str]] = []

    def principal(self, display: str = "rbac-test") -> Principal:
        r = self.coffer.request("POST", "/coffer/v1/principals", json={"displayName": uniq(display)})
        assert r.status_code == 201, f"POST /coffer/v1/principals: {r.status_code} {r.text}"
        info = r.json()
        for f in ("objectId", "clientId", "clientSecret", "secretId", "tenantId", "displayName"):
            assert info.get(f), f"created principal lacks {f}: {info}"
        self.principals.append(info["objectId"])
        return Principal(self.server, info)

    def group(self, display: str = "rbac-group") -> dict:
        r = self.coffer.request("POST", "/coffer/v1/groups", json={"displayName": uniq(display)})
        assert r.status_code == 201, f"POST /coffer/v1/groups: {r.status_code} {r.text}"
        g = r.json()
        assert g.get("objectId") and g.get("members") == [], g
        self.groups.append(g["objectId"])
        return g

    def assign(self, scope: str, role: str, principal_id: str, name: Optional[str] = None):
        name = name or str(uuid.uuid4())
        self.assignments.append((scope, name))
        a = self.ac.create_role_assignment(scope, def_id(role), principal_id, name=name)
        assert a.name == name and a.properties.principal_id == principal_id, vars(a)
        return a

    def cleanup(self) -> None:
        problems = []
        for scope, name in self.assignments:
            self.ac.delete_role_assignment(scope, name)  # the SDK ignores 404 here
        for gid in self.groups:
            r = self.coffer.request("DELETE", f"/coffer/v1/groups/{gid}")
            if r.status_code not in (200, 204, 404):
                problems.append(f"DELETE group {gid}: {r.status_code} {r.text}")
        for oid in self.principals:
            r = self.coffer.request("DELETE", f"/coffer/v1/principals/{oid}")
            if r.status_code not in (204, 404):
                problems.append(f"DELETE principal {oid}: {r.status_code} {r.text}")
        assert not problems, problems


@pytest.fixture
def ids(server, coffer, admin_ac):
    ids = Identities(server, coffer, admin_ac)
    yield ids
    ids.cleanup()


@pytest.fixture
def ec_key(key_client):
    """A key made by the bootstrap principal (Crypto User at '/')."""
    return key_client.create_ec_key(uniq("rbac"), curve="P-256", hardware_protected=True)


def sign_remote(server, key, credential) -> None:
    crypto, rec = remote_crypto(server, key.id, credential)
    digest = digest_for("ES256")
    sig = crypto.sign(SignatureAlgorithm.es256, digest)
    rec.assert_remote("sign")
    ec_verify(ec_public_from_jwk(key.key), "ES256", digest, sig.signature, "P-256")


# ------------------------------------------------------------------------------------------------ role definitions
COFFER_EXTRAS = {
    ADMINISTRATOR: [  # network ACLs, posture report
        "Coffer/network/read/action", "Coffer/network/write/action", "Coffer/posture/read/action"],
    POLICY_ADMINISTRATOR: ["Coffer/policies/read/action", "Coffer/policies/write/action"],  # key policies
    CRYPTO_AUDITOR: ["Coffer/audit/read/action", "Coffer/posture/read/action", "Coffer/policies/read/action"],
}


def test_builtin_role_definitions_listed(admin_ac):
    rec = Recorder()
    defs = list(admin_ac.list_role_definitions(KeyVaultRoleScope.GLOBAL, raw_response_hook=rec))
    assert statuses(rec) == [200]
    by_name = {d.name: d for d in defs}
    for guid, (role_name, actions) in BUILTIN_ROLES.items():
        assert guid in by_name, f"built-in role {role_name} ({guid}) missing; listed: " \
                                f"{sorted((d.role_name, d.name) for d in defs)}"
        d = by_name[guid]
        assert d.role_name == role_name, f"{guid}: roleName {d.role_name!r}, expected {role_name!r}"
        assert d.id == def_id(guid), f"{role_name}: id {d.id!r}"
        assert d.type == "Microsoft.Authorization/roleDefinitions", (role_name, d.type)
        assert d.role_type == "AKVBuiltInRole", (role_name, d.role_type)
        assert d.assignable_scopes == ["/"], (role_name, d.assignable_scopes)
        assert len(d.permissions) == 1, (role_name, [vars(p) for p in d.permissions])
        p = d.permissions[0]
        # Coffer's additions to Managed HSM roles, after Azure's own dataActions (docs/ACCESS.md).
        extra = COFFER_EXTRAS.get(guid, [])
        assert p.data_actions == [MHSM + a for a in actions] + extra, f"{role_name}: dataActions {p.data_actions}"
        assert p.actions == [] and p.not_actions == [] and p.not_data_actions == [], (role_name, vars(p))
    # the Coffer identity administrator role sits beside them
    ident = by_name.get(IDENTITY_ADMINISTRATOR)
    assert ident is not None and ident.role_name == "Coffer Identity Administrator", \
        f"Coffer Identity Administrator missing: {sorted((d.role_name, d.name) for d in defs)}"
    assert {a for p in ident.permissions for a in p.data_actions} == {
        "Coffer/identities/read/action", "Coffer/identities/write/action"}, [vars(p) for p in ident.permissions]
    names = [d.role_name for d in defs]
    assert len(names) == len(set(names)), f"duplicate role names: {names}"


def test_get_builtin_role_definition(admin_ac):
    d = admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR)
    assert (d.name, d.role_name, d.role_type, d.id) == (
        CRYPTO_AUDITOR, "Managed HSM Crypto Auditor", "AKVBuiltInRole", def_id(CRYPTO_AUDITOR))
    assert d.permissions[0].data_actions == [MHSM + a for a in BUILTIN_ROLES[CRYPTO_AUDITOR][1]] + \
        COFFER_EXTRAS[CRYPTO_AUDITOR]
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, uuid.uuid4())
    # callers resolve a role by its roleName (api-surface.md §3: $filter with RoleDefinitionFilter{roleName})
    by_name = list(admin_ac.list_role_definitions(KeyVaultRoleScope.GLOBAL,
                                                  filter="roleName eq 'Managed HSM Crypto User'"))
    assert [(d.name, d.role_name) for d in by_name] == [(CRYPTO_USER, "Managed HSM Crypto User")], \
        [(d.name, d.role_name) for d in by_name]


def test_custom_role_lifecycle(server, admin_ac, ids, ec_key):
    name = str(uuid.uuid4())
    role_name = uniq("coffer-reader")
    rec = Recorder()
    created = admin_ac.set_role_definition(
        KeyVaultRoleScope.GLOBAL, name=name, role_name=role_name, description="reads keys",
        permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY])], raw_response_hook=rec)
    try:
        assert statuses(rec) == [201], "role definition PUT must answer 201"
        assert (created.name, created.role_name, created.role_type, created.id) == (
            name, role_name, "CustomRole", def_id(name)), vars(created)
        assert created.description == "reads keys"
        assert created.permissions[0].data_actions == [KeyVaultDataAction.READ_HSM_KEY.value]
        listed = {d.name: d for d in admin_ac.list_role_definitions(KeyVaultRoleScope.GLOBAL)}
        assert name in listed and listed[name].role_name == role_name, "custom role not listed"
        got = admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, name)
        assert (got.role_name, got.role_type) == (role_name, "CustomRole")

        # it grants what it says, at once
        p = ids.principal()
        kc = p.key_client()
        expect_forbidden(lambda: kc.get_key(ec_key.name),
                         "get_key before the custom role is assigned", "/keys/read/action")
        a = ids.assign(KeyVaultRoleScope.GLOBAL, name, p.oid)
        assert kc.get_key(ec_key.name).id == ec_key.id
        expect_forbidden(lambda: sign_remote(server, ec_key, p.credential()),
                         "sign with a read-only custom role", "/keys/sign/action")
        expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256"),
                         "create with a read-only custom role", "/keys/create")

        # update (same name): adds sign; takes effect immediately
        updated = admin_ac.set_role_definition(
            KeyVaultRoleScope.GLOBAL, name=name, role_name=role_name + "-v2", description="reads and signs",
            permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY,
                                                          KeyVaultDataAction.SIGN_HSM_KEY])])
        assert (updated.name, updated.role_name) == (name, role_name + "-v2")
        got = admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, name)
        assert got.role_name == role_name + "-v2" and got.description == "reads and signs"
        assert set(got.permissions[0].data_actions) == {KeyVaultDataAction.READ_HSM_KEY.value,
                                                        KeyVaultDataAction.SIGN_HSM_KEY.value}
        sign_remote(server, ec_key, p.credential())

        # still assigned: 409, and nothing deleted
        e = expect_status(409, lambda: admin_ac.delete_role_definition(KeyVaultRoleScope.GLOBAL, name),
                          "delete of a custom role that is still assigned")
        assert isinstance(e, ResourceExistsError)
        assert admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, name).name == name
        admin_ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
        expect_forbidden(lambda: kc.get_key(ec_key.name),
                         "get_key after the custom role assignment is deleted", "/keys/read/action")
    finally:
        admin_ac.delete_role_definition(KeyVaultRoleScope.GLOBAL, name, raw_response_hook=rec)
    assert statuses(rec) == [200], "role definition DELETE must answer 200 (with the deleted object)"
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, name)
    assert name not in {d.name for d in admin_ac.list_role_definitions(KeyVaultRoleScope.GLOBAL)}


def test_custom_role_not_data_actions(server, admin_ac, ids, ec_key):
    """notDataActions removes an action from its own role only ("excluded but not denied")."""
    name = str(uuid.uuid4())
    admin_ac.set_role_definition(
        KeyVaultRoleScope.GLOBAL, name=name, role_name=uniq("coffer-nosign"),
        permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY, KeyVaultDataAction.SIGN_HSM_KEY],
                                        not_data_actions=[KeyVaultDataAction.SIGN_HSM_KEY])])
    try:
        p = ids.principal()
        a = ids.assign(KeyVaultRoleScope.GLOBAL, name, p.oid)
        assert p.key_client().get_key(ec_key.name).id == ec_key.id
        expect_forbidden(lambda: sign_remote(server, ec_key, p.credential()),
                         "sign removed by notDataActions", "/keys/sign/action")
        ids.assign(f"/keys/{ec_key.name}", CRYPTO_USER, p.oid)
        sign_remote(server, ec_key, p.credential())  # another role grants it
        admin_ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
    finally:
        admin_ac.delete_role_definition(KeyVaultRoleScope.GLOBAL, name)


def test_custom_role_with_builtin_guid_is_400(admin_ac):
    e = expect_status(400, lambda: admin_ac.set_role_definition(
        KeyVaultRoleScope.GLOBAL, name=CRYPTO_USER, role_name="hijack",
        permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY])]),
        "custom role definition reusing the Crypto User GUID")
    assert _body(e)["error"]["code"], _body(e)
    d = admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, CRYPTO_USER)
    assert d.role_name == "Managed HSM Crypto User" and d.role_type == "AKVBuiltInRole", vars(d)
    assert d.permissions[0].data_actions == [MHSM + a for a in BUILTIN_ROLES[CRYPTO_USER][1]]


def test_delete_builtin_role_is_400(admin_ac):
    expect_status(400, lambda: admin_ac.delete_role_definition(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR),
                  "delete of the built-in Crypto Auditor role")
    d = admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR)
    assert (d.role_name, d.role_type) == ("Managed HSM Crypto Auditor", "AKVBuiltInRole"), vars(d)


def test_custom_role_with_unknown_data_action_is_400(admin_ac):
    name = str(uuid.uuid4())
    expect_status(400, lambda: admin_ac.set_role_definition(
        KeyVaultRoleScope.GLOBAL, name=name, role_name=uniq("bogus"),
        permissions=[KeyVaultPermission(data_actions=[f"{MHSM}/keys/teleport/action"])]),
        "custom role with an unknown dataAction")
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, name)


# ------------------------------------------------------------------------------------------------ enforcement
def test_second_principal_denied_until_assigned_and_after_revocation(ids, admin_ac, ec_key):
    p = ids.principal()
    kc = p.key_client()
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256", hardware_protected=True),
                     "create_ec_key without any assignment", "/keys/create")
    expect_forbidden(lambda: kc.get_key(ec_key.name), "get_key without any assignment", "/keys/read/action")
    # authorization before existence: no 404 leaks which names exist
    expect_forbidden(lambda: kc.get_key(uniq("missing")),
                     "get_key of a missing key without any assignment", "/keys/read/action")

    a = ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_USER, p.oid)
    assert a.properties.scope == "/" and a.properties.role_definition_id == def_id(CRYPTO_USER), vars(a.properties)
    # same client, same token: the assignment applies at once
    made = kc.create_ec_key(uniq("rbac"), curve="P-256", hardware_protected=True)
    assert kc.get_key(made.name).id == made.id
    assert kc.get_key(ec_key.name).id == ec_key.id
    with pytest.raises(ResourceNotFoundError):
        kc.get_key(uniq("missing"))
    assert len(kc.get_random_bytes(16)) == 16
    # Crypto User may read role assignments and definitions, but not manage them
    ac = p.access_client()
    assert a.name in {x.name for x in ac.list_role_assignments(KeyVaultRoleScope.GLOBAL)}
    assert CRYPTO_USER in {d.name for d in ac.list_role_definitions(KeyVaultRoleScope.GLOBAL)}
    expect_forbidden(lambda: ac.create_role_assignment(KeyVaultRoleScope.GLOBAL, def_id(CRYPTO_OFFICER), p.oid),
                     "Crypto User grants itself Crypto Officer", "/roleAssignments/write/action")

    admin_ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256", hardware_protected=True),
                     "create_ec_key after revocation", "/keys/create")
    expect_forbidden(lambda: kc.get_key(made.name), "get_key after revocation", "/keys/read/action")


def test_key_scoped_grant_reaches_only_that_key(server, key_client, ids, admin_ac, ec_key):
    other = key_client.create_ec_key(uniq("rbac-other"), curve="P-256", hardware_protected=True)
    p = ids.principal()
    scope = f"/keys/{ec_key.name}"
    a = ids.assign(scope, CRYPTO_USER, p.oid)
    assert a.properties.scope == scope, vars(a.properties)
    assert admin_ac.get_role_assignment(scope, a.name).properties.scope == scope

    cred = p.credential()
    kc = p.key_client(cred)
    assert kc.get_key(ec_key.name).id == ec_key.id
    sign_remote(server, ec_key, cred)
    expect_forbidden(lambda: kc.get_key(other.name),
                     "get_key of another key with a /keys/{name} grant", "/keys/read/action")
    expect_forbidden(lambda: sign_remote(server, other, cred),
                     "sign with another key with a /keys/{name} grant", "/keys/sign/action")
    expect_forbidden(lambda: list(kc.list_properties_of_keys()), "list keys with a /keys/{name} grant",
                     "/keys/read/action")
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256"),
                     "create another key with a /keys/{name} grant", "/keys/create")

    admin_ac.delete_role_assignment(scope, a.name)
    expect_forbidden(lambda: kc.get_key(ec_key.name),
                     "get_key after the key-scoped assignment is deleted", "/keys/read/action")


def test_keys_scope_grant_reaches_every_key_but_not_role_management(server, key_client, ids, ec_key):
    other = key_client.create_ec_key(uniq("rbac-other"), curve="P-256", hardware_protected=True)
    p = ids.principal()
    a = ids.assign(KeyVaultRoleScope.KEYS, CRYPTO_USER, p.oid)
    assert a.properties.scope == "/keys", vars(a.properties)
    cred = p.credential()
    kc = p.key_client(cred)
    made = kc.create_ec_key(uniq("rbac"), curve="P-256", hardware_protected=True)
    for k in (ec_key, other, made):
        assert kc.get_key(k.name).id == k.id
        sign_remote(server, k, cred)
    names = {k.name for k in kc.list_properties_of_keys()}
    assert {ec_key.name, other.name, made.name} <= names

    ac = p.access_client(cred)
    victim = ids.principal()
    expect_forbidden(lambda: ac.create_role_assignment(KeyVaultRoleScope.GLOBAL, def_id(CRYPTO_USER), victim.oid),
                     "create_role_assignment by a Crypto User at /keys", "/roleAssignments/write/action")
    expect_forbidden(lambda: ac.create_role_assignment(KeyVaultRoleScope.KEYS, def_id(CRYPTO_USER), victim.oid),
                     "create_role_assignment at /keys by a Crypto User at /keys", "/roleAssignments/write/action")
    expect_forbidden(lambda: ac.delete_role_assignment(KeyVaultRoleScope.KEYS, a.name),
                     "delete of its own assignment by a Crypto User at /keys", "/roleAssignments/delete/action")
    expect_forbidden(lambda: ac.set_role_definition(
        KeyVaultRoleScope.GLOBAL, role_name=uniq("x"),
        permissions=[KeyVaultPermission(data_actions=[KeyVaultDataAction.READ_HSM_KEY])]),
        "set_role_definition by a Crypto User at /keys", "/roleDefinitions/write/action")


def test_list_and_get_role_assignments(server, ids, admin_ac, ec_key):
    p = ids.principal()
    at_root = ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR, p.oid)
    at_keys = ids.assign(KeyVaultRoleScope.KEYS, CRYPTO_USER, p.oid)
    at_key = ids.assign(f"/keys/{ec_key.name}", CRYPTO_USER, p.oid)
    assert at_root.role_assignment_id == f"/providers/Microsoft.Authorization/roleAssignments/{at_root.name}"
    assert at_keys.role_assignment_id == f"/providers/Microsoft.Authorization/roleAssignments/{at_keys.name}", \
        "the service leaves the scope out of a role assignment id (api-surface.md §3)"
    assert at_root.type == "Microsoft.Authorization/roleAssignments"

    listed = {a.name: a for a in admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL)}
    assert at_root.name in listed, f"assignment at / not listed at /: {sorted(listed)}"
    got = listed[at_root.name]
    assert (got.properties.role_definition_id, got.properties.principal_id, got.properties.scope) == (
        def_id(CRYPTO_AUDITOR), p.oid, "/"), vars(got.properties)
    assert at_keys.name in listed, "listing at / must include assignments at /keys (api-surface.md §3)"
    assert listed[at_keys.name].properties.scope == "/keys"
    # the bootstrap principal's own assignments are there too
    assert any(a.properties.principal_id == server.creds["object_id"] and
               a.properties.role_definition_id == def_id(ADMINISTRATOR) for a in listed.values())

    keys_listed = {a.name: a for a in admin_ac.list_role_assignments(KeyVaultRoleScope.KEYS)}
    assert at_keys.name in keys_listed and keys_listed[at_keys.name].properties.scope == "/keys"
    key_listed = {a.name: a for a in admin_ac.list_role_assignments(f"/keys/{ec_key.name}")}
    assert at_key.name in key_listed and key_listed[at_key.name].properties.scope == f"/keys/{ec_key.name}"

    # $filter (spec): principalId eq {id} = that principal's assignments at, above or below the scope;
    # atScope() = assignments at or above the scope
    mine = list(admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL, filter=f"principalId eq '{p.oid}'"))
    assert {a.name for a in mine} == {at_root.name, at_keys.name, at_key.name}, [vars(a.properties) for a in mine]
    assert all(a.properties.principal_id == p.oid for a in mine)
    at_scope = list(admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL, filter="atScope()"))
    assert at_root.name in {a.name for a in at_scope}
    assert all(a.properties.scope == "/" for a in at_scope), sorted({a.properties.scope for a in at_scope})
    at_keys_scope = {a.name for a in admin_ac.list_role_assignments(KeyVaultRoleScope.KEYS, filter="atScope()")}
    assert {at_root.name, at_keys.name} <= at_keys_scope and at_key.name not in at_keys_scope

    g = admin_ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, at_root.name)
    assert (g.name, g.role_assignment_id, g.properties.scope, g.properties.principal_id,
            g.properties.role_definition_id) == (at_root.name, at_root.role_assignment_id, "/", p.oid,
                                                 def_id(CRYPTO_AUDITOR))

    rec = Recorder()
    admin_ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, at_root.name, raw_response_hook=rec)
    assert statuses(rec) == [200], "role assignment DELETE must answer 200"
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, at_root.name)
    assert at_root.name not in {a.name for a in admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL)}
    # The public delete_role_assignment swallows 404 (the SDK treats delete as idempotent), so look at the wire:
    admin_ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, at_root.name, raw_response_hook=rec)
    assert statuses(rec) == [404], "DELETE of a missing assignment must be 404"
    with pytest.raises(ResourceNotFoundError) as ei:
        admin_ac._client.role_assignments.delete(  # pylint: disable=protected-access
            scope=KeyVaultRoleScope.GLOBAL, role_assignment_name=at_root.name)
    assert _body(ei.value)["error"]["code"] == "RoleAssignmentNotFound", _body(ei.value)


def test_group_assignment_grants_its_members(ids, coffer, ec_key):
    p = ids.principal()
    g = ids.group()
    gid = g["objectId"]
    r = coffer.request("PUT", f"/coffer/v1/groups/{gid}/members/{p.oid}")
    assert r.status_code == 204, f"add member: {r.status_code} {r.text}"
    r = coffer.request("GET", f"/coffer/v1/groups/{gid}")
    assert r.status_code == 200 and p.oid in json.dumps(r.json()["members"]), (r.status_code, r.text)
    ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR, gid)

    kc = p.key_client()  # a new credential: its token carries the group
    assert kc.get_key(ec_key.name).id == ec_key.id
    assert ec_key.name in {k.name for k in kc.list_properties_of_keys()}
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256"),
                     "create by a Crypto Auditor group member", "/keys/create")

    r = coffer.request("DELETE", f"/coffer/v1/groups/{gid}/members/{p.oid}")
    assert r.status_code == 204, f"remove member: {r.status_code} {r.text}"
    r = coffer.request("GET", f"/coffer/v1/groups/{gid}")
    assert r.status_code == 200 and r.json()["members"] == [], r.text
    fresh = p.key_client()
    expect_forbidden(lambda: fresh.get_key(ec_key.name),
                     "get_key by a former group member (fresh token)", "/keys/read/action")


# ------------------------------------------------------------------------------------------------ separation of duties
def test_fresh_instance_bootstrap_holds_the_administrative_roles_only(make_server, monkeypatch):
    """A new instance's bootstrap principal holds Managed HSM Administrator, Policy Administrator, Crypto Auditor and
    Coffer Identity Administrator at '/' (together every protected dataAction, so that it can hand out every role:
    docs/ACCESS.md, "No escalation") and nothing else: it cannot create or use keys until it assigns itself a crypto
    role."""
    monkeypatch.setattr(coffer_harness, "grant_crypto_roles", lambda *a, **k: None)
    srv = make_server("rbac-bootstrap")
    oid = srv.creds["object_id"]
    cred = srv.credential()
    ac = access_control_client(srv, cred)
    own = [a for a in ac.list_role_assignments(KeyVaultRoleScope.GLOBAL) if a.properties.principal_id == oid]
    assert sorted((a.properties.role_definition_id, a.properties.scope) for a in own) == sorted(
        [(def_id(r), "/") for r in (ADMINISTRATOR, POLICY_ADMINISTRATOR, CRYPTO_AUDITOR, IDENTITY_ADMINISTRATOR)]), \
        [vars(a.properties) for a in own]
    kc = srv.key_client(cred)
    expect_forbidden(lambda: kc.create_ec_key(uniq("boot"), curve="P-256", hardware_protected=True),
                     "create_ec_key by the bootstrap Administrator", "/keys/create")
    a = ac.create_role_assignment(KeyVaultRoleScope.GLOBAL, def_id(CRYPTO_USER), oid)
    key = kc.create_ec_key(uniq("boot"), curve="P-256", hardware_protected=True)
    assert kc.get_key(key.name).id == key.id
    ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
    expect_forbidden(lambda: kc.create_ec_key(uniq("boot"), curve="P-256", hardware_protected=True),
                     "create_ec_key after the bootstrap drops Crypto User again", "/keys/create")


def test_administrator_manages_roles_but_cannot_use_keys(ids, coffer, ec_key):
    admin = ids.principal("hsm-admin")
    ids.assign(KeyVaultRoleScope.GLOBAL, ADMINISTRATOR, admin.oid)
    cred = admin.credential()
    kc = admin.key_client(cred)
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256"),
                     "create_ec_key by an Administrator", "/keys/create")
    expect_forbidden(lambda: kc.get_key(ec_key.name), "get_key by an Administrator", "/keys/read/action")
    expect_forbidden(lambda: list(kc.list_properties_of_keys()), "list keys by an Administrator", "/keys/read/action")

    ac = admin.access_client(cred)
    user = ids.principal()
    a = ac.create_role_assignment(KeyVaultRoleScope.GLOBAL, def_id(CRYPTO_USER), user.oid)
    ids.assignments.append(("/", a.name))
    assert ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, a.name).properties.principal_id == user.oid
    assert user.key_client().get_key(ec_key.name).id == ec_key.id
    ac.delete_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
    with pytest.raises(ResourceNotFoundError):
        ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
    # HSM Administrator is not identity administrator
    r = coffer.request("POST", "/coffer/v1/principals", token=admin.token(cred), json={"displayName": uniq("nope")})
    assert r.status_code == 403 and azure_error(r)["code"] == "Forbidden", (r.status_code, r.text)


def test_crypto_officer_purges_and_recovers_but_cannot_create(ids, key_client):
    officer = ids.principal("officer")
    ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_OFFICER, officer.oid)
    kc = officer.key_client()
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256"),
                     "create_ec_key by a Crypto Officer", "/keys/create")

    to_recover = key_client.create_ec_key(uniq("rbac-rec"), curve="P-256", hardware_protected=True)
    to_purge = key_client.create_ec_key(uniq("rbac-purge"), curve="P-256", hardware_protected=True)
    expect_forbidden(lambda: kc.begin_delete_key(to_recover.name), "soft delete by a Crypto Officer", "/keys/delete")
    for k in (to_recover, to_purge):
        key_client.begin_delete_key(k.name).wait(timeout=30)

    assert kc.get_deleted_key(to_recover.name).name == to_recover.name
    assert {to_recover.name, to_purge.name} <= {d.name for d in kc.list_deleted_keys()}
    rec = Recorder()
    kc.begin_recover_deleted_key(to_recover.name, raw_response_hook=rec)  # the poller's GET /keys is 403: done
    assert any(c[0] == "POST" and c[1].endswith("/recover") and c[2] == 200 for c in rec.calls), rec.calls
    assert key_client.get_key(to_recover.name).id == to_recover.id
    expect_forbidden(lambda: kc.get_key(to_recover.name), "get_key by a Crypto Officer", "/keys/read/action")

    kc.purge_deleted_key(to_purge.name)
    with pytest.raises(ResourceNotFoundError):
        kc.get_deleted_key(to_purge.name)
    with pytest.raises(ResourceNotFoundError):
        key_client.get_deleted_key(to_purge.name)


def test_crypto_auditor_reads_but_cannot_sign(server, ids, key_client, ec_key):
    auditor = ids.principal("auditor")
    ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR, auditor.oid)
    cred = auditor.credential()
    kc = auditor.key_client(cred)
    got = kc.get_key(ec_key.name)
    assert got.id == ec_key.id and got.key.x == ec_key.key.x
    assert ec_key.name in {k.name for k in kc.list_properties_of_keys()}
    assert len(list(kc.list_properties_of_key_versions(ec_key.name))) >= 1
    list(kc.list_deleted_keys())
    expect_forbidden(lambda: kc.get_random_bytes(16), "rng by a Crypto Auditor", "/rng/action")
    expect_forbidden(lambda: sign_remote(server, ec_key, cred), "sign by a Crypto Auditor", "/keys/sign/action")
    expect_forbidden(lambda: kc.create_ec_key(uniq("rbac"), curve="P-256"),
                     "create by a Crypto Auditor", "/keys/create")
    expect_forbidden(lambda: kc.update_key_properties(ec_key.name, enabled=False), "update by a Crypto Auditor",
                     "/keys/write/action")
    expect_forbidden(lambda: kc.begin_delete_key(ec_key.name), "delete by a Crypto Auditor", "/keys/delete")
    assert key_client.get_key(ec_key.name).properties.enabled is True


def test_policy_administrator_assigns_roles_only(ids, coffer, ec_key):
    pa = ids.principal("policy-admin")
    ids.assign(KeyVaultRoleScope.GLOBAL, POLICY_ADMINISTRATOR, pa.oid)
    cred = pa.credential()
    expect_forbidden(lambda: pa.key_client(cred).get_key(ec_key.name), "get_key by a Policy Administrator",
                     "/keys/read/action")
    user = ids.principal()
    ac = pa.access_client(cred)
    a = ac.create_role_assignment(f"/keys/{ec_key.name}", def_id(CRYPTO_USER), user.oid)
    ids.assignments.append((f"/keys/{ec_key.name}", a.name))
    assert user.key_client().get_key(ec_key.name).id == ec_key.id
    ac.delete_role_assignment(f"/keys/{ec_key.name}", a.name)
    expect_forbidden(lambda: user.key_client().get_key(ec_key.name), "get_key after the Policy Administrator revoked",
                     "/keys/read/action")
    r = coffer.request("POST", "/coffer/v1/groups", token=pa.token(cred), json={"displayName": uniq("nope")})
    assert r.status_code == 403 and azure_error(r)["code"] == "Forbidden", (r.status_code, r.text)


def test_service_encryption_user_wraps_but_cannot_sign(server, ids, key_client, ec_key):
    oct_key = key_client.create_oct_key(uniq("rbac-oct"), size=256, hardware_protected=True)
    svc = ids.principal("storage-service")
    ids.assign(KeyVaultRoleScope.GLOBAL, "33413926-3206-4cdd-b39a-83574fe37a17", svc.oid)
    cred = svc.credential()
    crypto, rec = remote_crypto(server, oct_key.id, cred)
    cek = random_bytes(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.aes_256, cek)
    rec.assert_remote("wrapkey")
    assert crypto.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped.encrypted_key).key == cek
    rec.assert_remote("unwrapkey")
    assert svc.key_client(cred).get_key(oct_key.name).id == oct_key.id
    expect_forbidden(lambda: crypto.encrypt(EncryptionAlgorithm.a256_gcm, b"data"),
                     "encrypt by a Service Encryption User", "/keys/encrypt/action")
    expect_forbidden(lambda: sign_remote(server, ec_key, cred),
                     "sign by a Service Encryption User", "/keys/sign/action")
    expect_forbidden(lambda: svc.key_client(cred).create_ec_key(uniq("rbac"), curve="P-256"),
                     "create by a Service Encryption User", "/keys/create")


def test_backup_and_restore_roles(ids, key_client):
    key = key_client.create_ec_key(uniq("rbac-bk"), curve="P-256", hardware_protected=True)
    backup_user, restorer = ids.principal("backup"), ids.principal("restore")
    ids.assign(KeyVaultRoleScope.GLOBAL, "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8", backup_user.oid)
    ids.assign(KeyVaultRoleScope.GLOBAL, "6efe6056-5259-49d2-8b3d-d3d73544b20b", restorer.oid)
    bkc, rkc = backup_user.key_client(), restorer.key_client()
    expect_forbidden(lambda: rkc.backup_key(key.name), "backup by the Restore role", "/keys/backup/action")
    blob = bkc.backup_key(key.name)
    assert isinstance(blob, bytes) and blob
    expect_forbidden(lambda: bkc.get_key(key.name), "get_key by the Backup role", "/keys/read/action")
    key_client.begin_delete_key(key.name).wait(timeout=30)
    key_client.purge_deleted_key(key.name)
    expect_forbidden(lambda: bkc.restore_key_backup(blob), "restore by the Backup role", "/keys/restore/action")
    restored = rkc.restore_key_backup(blob)
    assert restored.name == key.name and restored.key.x == key.key.x
    assert key_client.get_key(key.name).id == key.id


# ---------------------------------------------------------------------------------------------- identity administration
def test_identity_api_needs_identity_administrator(ids, coffer):
    p = ids.principal()
    ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_USER, p.oid)
    cred = p.credential()
    tok = p.token(cred)
    for method, path, body in (("POST", "/coffer/v1/principals", {"displayName": uniq("nope")}),
                               ("GET", "/coffer/v1/principals", None),
                               ("POST", "/coffer/v1/groups", {"displayName": uniq("nope")}),
                               ("DELETE", f"/coffer/v1/principals/{p.oid}", None)):
        r = coffer.request(method, path, token=tok, json=body)
        assert r.status_code == 403, f"{method} {path} by a principal without Identity Administrator: " \
                                     f"{r.status_code} {r.text}"
        assert azure_error(r)["code"] == "Forbidden", r.text
    # the bootstrap principal (Identity Administrator) may
    q = ids.principal("made-by-bootstrap")
    r = coffer.request("GET", f"/coffer/v1/principals/{q.oid}")
    assert r.status_code == 200 and r.json()["objectId"] == q.oid, r.text
    assert "clientSecret" not in r.json(), "GET of a principal must not return a client secret"
    # granting the role makes a principal an identity administrator, at once
    ids.assign(KeyVaultRoleScope.GLOBAL, IDENTITY_ADMINISTRATOR, p.oid)
    r = coffer.request("POST", "/coffer/v1/principals", token=tok, json={"displayName": uniq("delegated")})
    assert r.status_code == 201, f"POST principals by a new Identity Administrator: {r.status_code} {r.text}"
    ids.principals.append(r.json()["objectId"])


def test_client_secret_rotation(ids, coffer):
    p = ids.principal("rotate")
    old_secret, old_id = p.info["clientSecret"], p.info["secretId"]
    assert p.token(p.credential(old_secret))
    r = coffer.request("POST", f"/coffer/v1/principals/{p.oid}/secrets")
    assert r.status_code == 201, f"add secret: {r.status_code} {r.text}"
    new = r.json()
    assert new.get("secretId") and new.get("clientSecret") and new["clientSecret"] != old_secret, new
    # both work during the overlap
    assert p.token(p.credential(new["clientSecret"]))
    assert p.token(p.credential(old_secret))
    r = coffer.request("DELETE", f"/coffer/v1/principals/{p.oid}/secrets/{old_id}")
    assert r.status_code == 204, f"delete secret: {r.status_code} {r.text}"
    with pytest.raises(ClientAuthenticationError):
        p.credential(old_secret).get_token(p.server.scope)
    assert p.token(p.credential(new["clientSecret"]))
    r = coffer.request("GET", f"/coffer/v1/principals/{p.oid}")
    assert r.status_code == 200, r.text
    assert [s["secretId"] for s in r.json()["secrets"]] == [new["secretId"]], r.json()


def test_deleting_a_principal_removes_its_assignments(ids, admin_ac, coffer, ec_key):
    p = ids.principal("short-lived")
    a = ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_USER, p.oid)
    b = ids.assign(f"/keys/{ec_key.name}", CRYPTO_USER, p.oid)
    cred = p.credential()
    assert p.key_client(cred).get_key(ec_key.name).id == ec_key.id
    r = coffer.request("DELETE", f"/coffer/v1/principals/{p.oid}")
    assert r.status_code == 204, f"DELETE principal: {r.status_code} {r.text}"
    for scope, name in (("/", a.name), (f"/keys/{ec_key.name}", b.name)):
        with pytest.raises(ResourceNotFoundError):
            admin_ac.get_role_assignment(scope, name)
    assert not [x for x in admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL)
                if x.properties.principal_id == p.oid]
    with pytest.raises(ClientAuthenticationError):
        p.credential().get_token(p.server.scope)
    r = coffer.request("GET", f"/coffer/v1/principals/{p.oid}")
    assert r.status_code == 404, (r.status_code, r.text)


# ------------------------------------------------------------------------------------------------ bad input
def test_assignment_with_unknown_role_definition_is_400(ids, admin_ac):
    p = ids.principal()
    name = str(uuid.uuid4())
    expect_status(400, lambda: admin_ac.create_role_assignment(
        KeyVaultRoleScope.GLOBAL, def_id(str(uuid.uuid4())), p.oid, name=name), "assignment of an unknown role")
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, name)


@pytest.mark.parametrize("body", [
    "this is not json",
    {},
    {"properties": {}},
    {"properties": {"roleDefinitionId": def_id(CRYPTO_USER)}},
    {"properties": {"principalId": "PRINCIPAL"}},
    {"properties": {"roleDefinitionId": 42, "principalId": "PRINCIPAL"}},
    {"properties": {"roleDefinitionId": "not-a-role-id", "principalId": "PRINCIPAL"}},
], ids=["not-json", "empty", "empty-properties", "no-principal", "no-role", "role-not-string", "role-garbage"])
def test_malformed_assignment_body_is_400(ids, coffer, admin_ac, body):
    p = ids.principal()
    name = str(uuid.uuid4())
    path = f"/providers/Microsoft.Authorization/roleAssignments/{name}"
    if isinstance(body, dict):
        body = json.loads(json.dumps(body).replace("PRINCIPAL", p.oid))
        r = coffer.request("PUT", path, json=body)
    else:
        r = coffer.request("PUT", path, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, f"PUT {path} {body!r}: {r.status_code} {r.text}"
    azure_error(r)
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, name)


def test_duplicate_assignment_name_is_409(ids, admin_ac):
    p, q = ids.principal(), ids.principal()
    a = ids.assign(KeyVaultRoleScope.GLOBAL, CRYPTO_AUDITOR, p.oid)
    with pytest.raises(ResourceExistsError) as ei:
        admin_ac.create_role_assignment(KeyVaultRoleScope.GLOBAL, def_id(CRYPTO_USER), q.oid, name=a.name)
    assert ei.value.status_code == 409
    with pytest.raises(ResourceExistsError):
        admin_ac.create_role_assignment(KeyVaultRoleScope.GLOBAL, def_id(CRYPTO_AUDITOR), p.oid, name=a.name)
    got = admin_ac.get_role_assignment(KeyVaultRoleScope.GLOBAL, a.name)
    assert (got.properties.principal_id, got.properties.role_definition_id) == (p.oid, def_id(CRYPTO_AUDITOR)), \
        "a rejected duplicate changed the existing assignment"


@pytest.mark.parametrize("scope", ["/secrets", "/keys/a/b", "/storage"])
def test_assignment_at_a_scope_that_does_not_exist_is_400(ids, admin_ac, scope):
    p = ids.principal()
    name = str(uuid.uuid4())
    e = expect_status(400, lambda: admin_ac.create_role_assignment(scope, def_id(CRYPTO_USER), p.oid, name=name),
                      f"assignment at scope {scope!r}")
    assert _body(e)["error"]["code"], _body(e)
    assert not [a for a in admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL)
                if a.properties.principal_id == p.oid], "a rejected assignment was stored"


def test_assignment_and_definition_names_must_be_guids(ids, coffer, admin_ac):
    p = ids.principal()
    r = coffer.request("PUT", "/providers/Microsoft.Authorization/roleAssignments/not-a-guid",
                       json={"properties": {"principalId": p.oid, "roleDefinitionId": def_id(CRYPTO_USER)}})
    assert r.status_code == 400, (r.status_code, r.text)
    azure_error(r)
    r = coffer.request("PUT", "/providers/Microsoft.Authorization/roleDefinitions/not-a-guid",
                       json={"properties": {"roleName": uniq("x"), "permissions": []}})
    assert r.status_code == 400, (r.status_code, r.text)
    azure_error(r)
    assert not [a for a in admin_ac.list_role_assignments(KeyVaultRoleScope.GLOBAL)
                if a.properties.principal_id == p.oid]


@pytest.mark.parametrize("body", [
    "this is not json",
    {},
    {"properties": {"roleName": "x", "permissions": "not a list"}},
    {"properties": {"roleName": "x", "permissions": [{"dataActions": "not a list"}]}},
    {"properties": {"roleName": "Managed HSM Crypto User", "permissions": []}},
], ids=["not-json", "no-properties", "permissions-not-list", "dataActions-not-list", "built-in-role-name"])
def test_malformed_role_definition_is_400(coffer, admin_ac, body):
    name = str(uuid.uuid4())
    path = f"/providers/Microsoft.Authorization/roleDefinitions/{name}"
    if isinstance(body, dict):
        r = coffer.request("PUT", path, json=body)
    else:
        r = coffer.request("PUT", path, data=body, headers={"Content-Type": "application/json"})
    if r.status_code in (200, 201):
        admin_ac.delete_role_definition(KeyVaultRoleScope.GLOBAL, name)
    assert r.status_code == 400, f"PUT {path} {body!r}: {r.status_code} {r.text}"
    azure_error(r)
    with pytest.raises(ResourceNotFoundError):
        admin_ac.get_role_definition(KeyVaultRoleScope.GLOBAL, name)


def test_older_clients_triple_slash_paths(server, coffer, ids):
    """Older SDKs splice the scope '/' after the base URL's '/' (api-surface.md §3): ///providers/...."""
    r = coffer.request("GET", "///providers/Microsoft.Authorization/roleDefinitions")
    assert r.status_code == 200, (r.status_code, r.text)
    assert CRYPTO_USER in {d["name"] for d in r.json()["value"]}
    p = ids.principal()
    name = str(uuid.uuid4())
    ids.assignments.append(("/", name))
    r = coffer.request("PUT", f"///providers/Microsoft.Authorization/roleAssignments/{name}",
                       json={"properties": {"principalId": p.oid, "roleDefinitionId": "/" + def_id(CRYPTO_AUDITOR)}})
    assert r.status_code == 201, (r.status_code, r.text)
    got = r.json()
    assert got["id"] == f"/providers/Microsoft.Authorization/roleAssignments/{name}", got
    assert got["properties"]["scope"] == "/" and got["properties"]["roleDefinitionId"] == def_id(CRYPTO_AUDITOR), got
    r = coffer.request("DELETE", f"///providers/Microsoft.Authorization/roleAssignments/{name}")
    assert r.status_code == 200 and r.json()["name"] == name, (r.status_code, r.text)
