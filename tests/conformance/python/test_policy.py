"""Key policies (issue 7) with the unmodified `azure-keyvault-keys` KeyClient: a Policy Administrator assigns the
built-in "[Preview]: Azure Key Vault Managed HSM keys should have an expiration date" definition through Coffer's
own API (/coffer/v1/policies, raw HTTPS), and the SDK sees what an Azure Policy Deny does to it: creating a key
without `expires_on` fails with an HttpResponseError naming the policy, with `expires_on` it works. Under Audit the
key is created and GET /coffer/v1/compliance lists it. docs/POLICY.md describes the API.

The test runs its own server, so its Deny assignments cannot disturb the session server's other tests.
"""

from __future__ import annotations

import datetime
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from coffer_harness import uniq

API = "7.6"
POLICY_ADMINISTRATOR = "4bd23610-cdcf-4971-bdee-bdc562cc28e4"
ADMINISTRATOR = "a290e904-7015-4bba-90c8-60543313cdb4"
EXPIRATION_SET = "1d478a74-21ba-4b9f-9d8f-8e6fced0eec5"
EXPIRATION_SET_NAME = "[Preview]: Azure Key Vault Managed HSM keys should have an expiration date"


class Coffer:
    """Raw calls to the Coffer API of one server with one bearer token."""

    def __init__(self, srv, token: str):
        self.srv = srv
        self.token = token

    def request(self, method: str, path: str, json=None) -> requests.Response:
        return requests.request(method, f"{self.srv.url}{path}?api-version={API}", json=json,
                                headers={"Authorization": f"Bearer {self.token}"}, verify=self.srv.ca, timeout=30)


def policy_administrator(srv) -> Coffer:
    """A new principal holding Managed HSM Policy Administrator at '/', created by the bootstrap principal."""
    return principal_with_role(srv, POLICY_ADMINISTRATOR, "policy-admin")


def principal_with_role(srv, role: str, name: str) -> Coffer:
    """A new principal holding `role` at '/' (and nothing else), created by the bootstrap principal."""
    boot = Coffer(srv, srv.token())
    r = boot.request("POST", "/coffer/v1/principals", json={"displayName": uniq(name)})
    assert r.status_code == 201, r.text
    p = r.json()
    r = boot.request("PUT", f"/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", json={
        "properties": {"principalId": p["objectId"],
                       "roleDefinitionId": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"
                                           + role}})
    assert r.status_code == 201, r.text
    r = requests.post(f"{srv.url}/{srv.tenant}/oauth2/v2.0/token", verify=srv.ca, timeout=30, data={
        "grant_type": "client_credentials", "client_id": p["clientId"], "client_secret": p["clientSecret"],
        "scope": srv.scope})
    assert r.status_code == 200, r.text
    return Coffer(srv, r.json()["access_token"])


@pytest.fixture
def policy_server(make_server):
    srv = make_server("policy")
    return srv, srv.key_client(), policy_administrator(srv)


def put_policy(admin: Coffer, name: str, effect: str) -> requests.Response:
    return admin.request("PUT", f"/coffer/v1/policies/{name}", json={"definitionId": EXPIRATION_SET, "effect": effect})


def test_deny_expiration_policy_refuses_sdk_create_without_expiry_and_audit_reports_it(policy_server):
    srv, kc, admin = policy_server
    # The HSM Administrator role does not manage key policies: Policy Administrator does.
    r = put_policy(principal_with_role(srv, ADMINISTRATOR, "admin-only"), "require-expiry", "Deny")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Forbidden", r.text

    r = admin.request("GET", "/coffer/v1/policy-definitions")
    assert r.status_code == 200, r.text
    defs = {d["id"]: d for d in r.json()["value"]}
    assert defs[EXPIRATION_SET]["displayName"] == EXPIRATION_SET_NAME, defs[EXPIRATION_SET]
    assert defs[EXPIRATION_SET]["parameters"]["effect"]["allowedValues"] == ["Audit", "Deny", "Disabled"]

    r = put_policy(admin, "require-expiry", "Deny")
    assert r.status_code == 201, r.text
    assert (r.json()["effect"], r.json()["displayName"]) == ("Deny", EXPIRATION_SET_NAME), r.text

    # Deny: no expiry -> HttpResponseError naming the assignment and the definition; nothing is created.
    denied = uniq("no-expiry")
    with pytest.raises(HttpResponseError) as exc:
        kc.create_ec_key(denied)
    assert exc.value.status_code == 403, exc.value
    text = str(exc.value)
    assert "ForbiddenByPolicy" in text and "require-expiry" in text and EXPIRATION_SET_NAME in text, text
    with pytest.raises(ResourceNotFoundError):
        kc.get_key(denied)

    # With an expiry it is created.
    expires = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=30)
    ok = kc.create_ec_key(uniq("with-expiry"), expires_on=expires)
    assert ok.properties.expires_on == expires, ok.properties.expires_on

    # Audit: creation without expiry succeeds, and the compliance report lists the key.
    r = put_policy(admin, "require-expiry", "Audit")
    assert r.status_code == 200 and r.json()["effect"] == "Audit", r.text
    audited = kc.create_ec_key(uniq("audited"))
    assert audited.properties.expires_on is None
    r = admin.request("GET", "/coffer/v1/compliance")
    assert r.status_code == 200, r.text
    report = r.json()
    [entry] = [e for e in report["value"] if e["assignment"] == "require-expiry"]
    assert (entry["definitionId"], entry["displayName"], entry["effect"]) == (EXPIRATION_SET, EXPIRATION_SET_NAME,
                                                                            "Audit"), entry
    assert [(k["key"], k["version"]) for k in entry["nonCompliant"]] == [(audited.name, audited.properties.version)], \
        entry
    assert report["summary"]["nonCompliantKeys"] == 1 and report["summary"]["keysEvaluated"] == 2, report

    # Back to Deny: an SDK update that leaves the key without expiry is refused, one that sets it is not.
    assert put_policy(admin, "require-expiry", "Deny").status_code == 200
    with pytest.raises(HttpResponseError) as exc:
        kc.update_key_properties(audited.name, tags={"team": "a"})
    assert exc.value.status_code == 403 and "require-expiry" in str(exc.value), exc.value
    fixed = kc.update_key_properties(audited.name, expires_on=expires)
    assert fixed.properties.expires_on == expires
    r = admin.request("GET", "/coffer/v1/compliance")
    assert r.json()["value"][0]["nonCompliant"] == [], r.text

    assert admin.request("DELETE", "/coffer/v1/policies/require-expiry").status_code == 204
    kc.create_ec_key(uniq("free-again"))
