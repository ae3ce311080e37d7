"""External OIDC issuers and time-bound assignments, driven through the unmodified SDK clients.

A second Coffer instance plays the external identity provider (its token service and its JWKS over HTTPS under
its own CA). The HSM under test trusts it through coffer.toml. The workload's token reaches the SDK through a
plain TokenCredential, as a workload-identity token file would."""
import json
import time
import uuid

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.keyvault.keys import KeyClient

from coffer_harness import uniq

API = "7.6"
CRYPTO_USER = "21dbd100-6940-42c2-9190-5d6cb909625b"


class StaticTokenCredential:
    """A TokenCredential that hands out a token obtained elsewhere (e.g. a projected workload-identity token)."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo
        return AccessTokenInfo(self.token, int(time.time()) + 600)


def bearer(srv) -> dict:
    return {"Authorization": f"Bearer {srv.token()}"}


def new_principal(srv, name: str) -> dict:
    r = requests.post(f"{srv.url}/coffer/v1/principals?api-version={API}", json={"displayName": name},
                      headers=bearer(srv), verify=srv.ca, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def token_from(srv, principal: dict) -> str:
    r = requests.post(f"{srv.url}/{srv.tenant}/oauth2/v2.0/token", verify=srv.ca, timeout=30, data={
        "grant_type": "client_credentials", "client_id": principal["clientId"],
        "client_secret": principal["clientSecret"], "scope": f"{srv.url}/.default"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def assign(srv, role: str, scope: str, principal_id: str, **extra) -> str:
    name = str(uuid.uuid4())
    props = {"roleDefinitionId": f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}",
             "principalId": principal_id, **extra}
    r = requests.put(f"{srv.url}{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version={API}",
                     json={"properties": props}, headers=bearer(srv), verify=srv.ca, timeout=30)
    assert r.status_code == 201, r.text
    return name


@pytest.fixture
def idp_and_hsm(make_server, tmp_path):
    idp = make_server("idp")
    config = tmp_path / "coffer.toml"
    config.write_text(
        "[[issuers]]\n"
        f'issuer = "{idp.url}/{idp.tenant}/v2.0"\n'
        f'audiences = ["{idp.url}"]\n'
        f'jwks_url = "{idp.url}/{idp.tenant}/discovery/v2.0/keys"\n'
        f'ca_cert = "{idp.ca}"\n'
        'algorithms = ["ES256"]\n')
    hsm = make_server("hsm-trusting-idp", extra_args=("--config", str(config)))
    return idp, hsm


def test_token_from_trusted_external_issuer_is_accepted(idp_and_hsm):
    idp, hsm = idp_and_hsm
    workload = new_principal(idp, "workload")
    kc_admin = hsm.key_client()
    key = kc_admin.create_ec_key(uniq("ext"), curve="P-256")
    client = KeyClient(hsm.url, StaticTokenCredential(token_from(idp, workload)),
                       verify_challenge_resource=False, connection_verify=hsm.ca)
    with pytest.raises(HttpResponseError) as e:
        client.get_key(key.name)
    assert e.value.status_code == 403, "authenticated but not yet authorized"
    assign(hsm, CRYPTO_USER, f"/keys/{key.name}", workload["objectId"])
    got = client.get_key(key.name)
    assert got.id == key.id
    with pytest.raises(HttpResponseError) as e:
        client.create_ec_key(uniq("other"), curve="P-256")
    assert e.value.status_code == 403, "the grant covers one key only"


def test_token_from_untrusted_issuer_is_refused(idp_and_hsm, make_server):
    idp, hsm = idp_and_hsm
    stranger = make_server("untrusted-idp")
    p = new_principal(stranger, "intruder")
    assign(hsm, CRYPTO_USER, "/", p["objectId"])  # even an assignment naming its object id does not help
    client = KeyClient(hsm.url, StaticTokenCredential(token_from(stranger, p)),
                       verify_challenge_resource=False, connection_verify=hsm.ca)
    with pytest.raises(ClientAuthenticationError):
        client.create_ec_key(uniq("no"), curve="P-256")
    # The trusted IdP's token for another audience is refused too: the HSM expects aud = the IdP's url.
    r = requests.get(f"{hsm.url}/keys?api-version={API}", headers={"Authorization": f"Bearer {hsm.token()}x"},
                     verify=hsm.ca, timeout=30)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


def test_expired_assignment_no_longer_grants(server):
    p = new_principal(server, uniq("temp"))
    key = server.key_client().create_ec_key(uniq("tb"), curve="P-256")
    assign(server, "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3", "/", p["objectId"], expiresOn=int(time.time()) + 3)
    client = KeyClient(server.url, StaticTokenCredential(token_from(server, p)),
                       verify_challenge_resource=False, connection_verify=server.ca)
    assert client.get_key(key.name).id == key.id
    time.sleep(4)
    with pytest.raises(HttpResponseError) as e:
        client.get_key(key.name)
    assert e.value.status_code == 403
