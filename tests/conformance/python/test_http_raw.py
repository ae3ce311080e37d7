"""Raw HTTP (requests, trusting the instance CA): challenge, token service, validation errors, TLS."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from urllib.parse import urlparse

import jwt  # PyJWT, installed with msal
import pytest
import requests

from coffer_harness import uniq
from localcrypto import b64url

API = "2025-07-01"


def _challenge(server) -> str:
    return f'Bearer authorization="{server.url}/{server.tenant}", resource="{server.url}"'


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _assert_error_body(r: requests.Response, status: int | tuple, code: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, f"expected HTTP {status}, got {r.status_code}: {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers.get("content-type")
    body = r.json()
    assert isinstance(body.get("error"), dict), f"no error object: {body}"
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, f"error code {body['error']['code']!r}, expected {code!r}: {body}"
    return body


# ------------------------------------------------------------------------------------------------ challenge
UNAUTH_REQUESTS = [
    ("GET", f"/keys?api-version={API}", None),
    ("GET", f"/keys/somekey/?api-version={API}", None),
    ("POST", f"/keys/somekey/create?api-version={API}", b""),  # the SDK's bodiless first request
    ("POST", f"/keys/somekey/create?api-version={API}", b'{"kty":"EC-HSM","crv":"P-256"}'),
    ("PUT", f"/keys/somekey?api-version={API}", b""),
    ("PATCH", f"/keys/somekey/?api-version={API}", b""),
    ("DELETE", f"/keys/somekey?api-version={API}", None),
    ("POST", f"/rng?api-version={API}", b""),
    ("GET", f"/deletedkeys?api-version={API}", None),
    ("POST", f"/keys/restore?api-version={API}", b""),
    ("GET", "/keys?api-version=1999-01-01", None),  # unknown api-version: still 401 first
    ("GET", "/keys", None),  # no api-version at all
    ("POST", f"/keys/somekey/create?api-version={API}", b"{not json"),  # malformed body: still 401 first
    ("GET", f"/no/such/route?api-version={API}", None),
]


@pytest.mark.parametrize("method,path,body", UNAUTH_REQUESTS, ids=[f"{m} {p}" for m, p, _ in UNAUTH_REQUESTS])
@pytest.mark.parametrize("auth", [None, "Bearer not-a-token"], ids=["no-token", "bad-token"])
def test_unauthenticated_gets_challenge(server, method, path, body, auth):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    r = requests.request(method, server.url + path, data=body, headers=headers, verify=server.ca, timeout=30)
    assert r.status_code == 401, f"{method} {path}: expected 401, got {r.status_code} {r.text[:300]}"
    assert r.headers.get("WWW-Authenticate") == _challenge(server), (
        f"WWW-Authenticate {r.headers.get('WWW-Authenticate')!r} != {_challenge(server)!r}")


def test_challenge_parses_like_the_sdks(server):
    r = requests.get(f"{server.url}/keys?api-version={API}", verify=server.ca, timeout=30)
    h = r.headers["WWW-Authenticate"]
    assert h.startswith("Bearer ")
    # Python's parser: split on ",", then on "=" into exactly 2 parts
    pairs = dict(p.strip().split("=") for p in h[len("Bearer "):].split(","))
    assert set(pairs) == {"authorization", "resource"}, pairs
    auth_url = urlparse(pairs["authorization"].strip('"'))
    assert auth_url.scheme == "https" and auth_url.path.strip("/").count("/") == 0 and not auth_url.path.endswith("/")
    assert auth_url.path[1:] == server.tenant
    # JS's parser: items split on /,? +/ each must match \w="
    assert all(re.match(r'\w+="[^", =]*"$', item) for item in re.split(r",? +", h)[1:]), h


def test_tampered_token_gets_challenge(server, token):
    head, payload, sig = token.split(".")
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    for bad in (f"{head}.{payload}.{flipped}", f"{head}.{payload}.", token + "x"):
        r = requests.get(f"{server.url}/keys?api-version={API}", headers=_auth(bad), verify=server.ca, timeout=30)
        assert r.status_code == 401 and r.headers.get("WWW-Authenticate") == _challenge(server), (r.status_code, r.text)
    # the untampered token works
    r = requests.get(f"{server.url}/keys?api-version={API}", headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200, r.text


def test_healthz_needs_no_auth(server):
    r = requests.get(f"{server.url}/healthz", verify=server.ca, timeout=30)
    assert r.status_code == 200


# ------------------------------------------------------------------------------------------------ token service
def _discovery(server) -> dict:
    r = requests.get(f"{server.creds['authority']}/{server.tenant}/v2.0/.well-known/openid-configuration",
                     verify=server.ca, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_oidc_discovery(server):
    doc = _discovery(server)
    for member in ("token_endpoint", "authorization_endpoint", "issuer", "jwks_uri"):
        assert isinstance(doc.get(member), str) and doc[member], f"discovery lacks {member}: {doc}"
    te = urlparse(doc["token_endpoint"])
    assert te.scheme == "https" and te.netloc == urlparse(server.creds["authority"]).netloc, doc["token_endpoint"]
    assert te.path.split("/")[1] == server.tenant, "first path segment of token_endpoint must be the tenant"
    assert doc["token_endpoint"] == f"{server.creds['authority']}/{server.tenant}/oauth2/v2.0/token"
    jwks = requests.get(doc["jwks_uri"], verify=server.ca, timeout=30)
    assert jwks.status_code == 200, jwks.text
    keys = jwks.json().get("keys")
    assert isinstance(keys, list) and keys and all("kid" in k and "kty" in k for k in keys), jwks.text
    assert not any(k.get(p) for k in keys for p in ("d", "p", "q", "dp", "dq", "qi", "k")), "JWKS leaks private key parts"


def _token_request(server, **overrides) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": server.creds["client_id"],
        "client_secret": server.creds["client_secret"],
        "scope": f"{server.url}/.default",
    }
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(_discovery(server)["token_endpoint"], data=data, verify=server.ca, timeout=30)


def test_token_endpoint_success_and_claims(server):
    r = _token_request(server)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.get("token_type") == "Bearer" and isinstance(body.get("access_token"), str), body
    assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 600, body
    tok = body["access_token"]
    doc = _discovery(server)
    header = jwt.get_unverified_header(tok)
    jwks = requests.get(doc["jwks_uri"], verify=server.ca, timeout=30).json()["keys"]
    match = [k for k in jwks if k.get("kid") == header.get("kid")]
    assert match, f"token kid {header.get('kid')!r} not in JWKS"
    claims = jwt.decode(tok, jwt.PyJWK(match[0]).key, algorithms=[header["alg"]], audience=server.url,
                        issuer=doc["issuer"])
    assert claims["tid"] == server.tenant
    assert claims["oid"] == server.creds["object_id"]
    assert server.creds["client_id"] in (claims.get("appid"), claims.get("azp")), claims
    now = time.time()
    for c in ("iat", "nbf", "exp"):
        assert isinstance(claims.get(c), int), f"claim {c}: {claims.get(c)!r}"
    assert claims["nbf"] <= now + 5 and claims["exp"] > now + 600


def test_token_endpoint_wrong_secret(server):
    r = _token_request(server, client_secret="wrong-" + server.creds["client_secret"])
    assert r.status_code in (400, 401), r.text
    assert r.json().get("error") == "invalid_client", r.text


def test_token_endpoint_unknown_client(server):
    r = _token_request(server, client_id="00000000-0000-0000-0000-000000000000")
    assert r.status_code in (400, 401), r.text
    assert r.json().get("error") == "invalid_client", r.text


def test_token_endpoint_refuses_other_grants(server):
    r = _token_request(server, grant_type="password", username="admin", password="admin")
    assert r.status_code in (400, 401), r.text
    assert "access_token" not in r.json()


def test_sdk_wrong_secret_raises(server):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential(server.tenant, server.creds["client_id"], "not-the-secret",
                                  authority=server.creds["authority"], disable_instance_discovery=True,
                                  connection_verify=server.ca)
    with pytest.raises(ClientAuthenticationError):
        cred.get_token(server.scope)


# ------------------------------------------------------------------------------------------------ validation (with a token)
def test_unknown_api_version_is_400(server, token):
    r = requests.get(f"{server.url}/keys?api-version=1999-01-01", headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400)


def test_missing_api_version_is_400(server, token):
    r = requests.get(f"{server.url}/keys", headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400)


@pytest.mark.parametrize("v", ["7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"])
def test_known_api_versions_accepted(server, token, v):
    r = requests.get(f"{server.url}/keys?api-version={v}", headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200, (v, r.status_code, r.text)


def test_percent_encoded_api_version(server, token):
    r = requests.get(f"{server.url}/keys?api%2Dversion=7.4", headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200, r.text
    assert isinstance(r.json().get("value"), list)
    name = uniq("pct")
    r = requests.post(f"{server.url}/keys/{name}/create?api%2Dversion=2025-07-01", headers=_auth(token),
                      json={"kty": "EC-HSM", "crv": "P-256"}, verify=server.ca, timeout=30)
    assert r.status_code == 200, r.text


def test_malformed_json_is_400_and_nothing_created(server, token):
    name = uniq("badjson")
    for body in (b'{"kty": "EC-HSM", "crv": ', b"[1,2,3]", b'{"kty": 5}', b"\xff\xfe"):
        r = requests.post(f"{server.url}/keys/{name}/create?api-version={API}", data=body,
                          headers={**_auth(token), "Content-Type": "application/json"}, verify=server.ca, timeout=30)
        _assert_error_body(r, 400, "BadParameter")
    r = requests.get(f"{server.url}/keys/{name}/?api-version={API}", headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 404, "KeyNotFound")


def test_create_invalid_parameters_are_400(server, token):
    for body in ({"kty": "RSA-HSM", "key_size": 1024}, {"kty": "EC-HSM", "crv": "P-192"}, {"kty": "oct-HSM", "key_size": 100},
                 {"kty": "DSA"}, {"crv": "P-256"}):
        r = requests.post(f"{server.url}/keys/{uniq('inv')}/create?api-version={API}", json=body, headers=_auth(token),
                          verify=server.ca, timeout=30)
        _assert_error_body(r, 400)


def test_invalid_key_name_is_400(server, token):
    r = requests.post(f"{server.url}/keys/bad_name!/create?api-version={API}", json={"kty": "EC-HSM", "crv": "P-256"},
                      headers=_auth(token), verify=server.ca, timeout=30)
    assert 400 <= r.status_code < 500 and r.status_code != 401, (r.status_code, r.text)


@pytest.fixture(scope="module")
def ec_kid(server, token) -> str:
    r = requests.post(f"{server.url}/keys/{uniq('rawec')}/create?api-version={API}",
                      json={"kty": "EC-HSM", "crv": "P-256"}, headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["key"]["kty"] == "EC-HSM", body  # exact string on the wire
    assert "d" not in body["key"], body
    return body["key"]["kid"]


def test_sign_bad_base64url_is_400(server, token, ec_kid):
    for value in ("!!!not base64!!!", "a b c", 12345):
        r = requests.post(f"{ec_kid}/sign?api-version={API}", json={"alg": "ES256", "value": value},
                          headers=_auth(token), verify=server.ca, timeout=30)
        _assert_error_body(r, 400, "BadParameter")


def test_sign_wire_shape(server, token, ec_kid):
    r = requests.post(f"{ec_kid}/sign?api-version={API}", json={"alg": "ES256", "value": b64url(bytes(range(32)))},
                      headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kid"] == ec_kid
    assert re.fullmatch(r"[A-Za-z0-9_-]+", body["value"]), "value must be unpadded base64url"
    assert len(body["value"]) == 86  # 64 bytes r||s
    r = requests.post(f"{ec_kid}/verify?api-version={API}",
                      json={"alg": "ES256", "digest": b64url(bytes(range(32))), "value": body["value"]},
                      headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200 and r.json() == {"value": True}, r.text


def test_unknown_algorithm_is_400(server, token, ec_kid):
    r = requests.post(f"{ec_kid}/sign?api-version={API}", json={"alg": "XS999", "value": b64url(bytes(32))},
                      headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400, "BadParameter")
    r = requests.post(f"{ec_kid}/encrypt?api-version={API}", json={"alg": "ROT13", "value": b64url(b"x")},
                      headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400)
    r = requests.post(f"{ec_kid}/sign?api-version={API}", json={"value": b64url(bytes(32))},
                      headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400)


def test_wrong_digest_length_is_400(server, token, ec_kid):
    r = requests.post(f"{ec_kid}/sign?api-version={API}", json={"alg": "ES256", "value": b64url(bytes(20))},
                      headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400)


def _raw_tls_request(server, head: bytes, body_chunks=(), timeout=30) -> bytes:
    """Send a request on a raw TLS socket; tolerate the server closing while the body is still being sent.
    Returns whatever the server answered (b"" if nothing)."""
    ctx = ssl.create_default_context(cafile=server.ca)
    data = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            try:
                s.sendall(head)
                for chunk in body_chunks:
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except (ConnectionResetError, ssl.SSLError, socket.timeout):
                pass
    return data


def test_oversize_body_is_rejected(server, token):
    name = uniq("big")
    big = json.dumps({"kty": "EC-HSM", "crv": "P-256", "tags": {"t": "x" * (1536 * 1024)}}).encode()
    path = f"/keys/{name}/create?api-version={API}"
    # 1. Content-Length + Expect: 100-continue: the server must answer 413 (or 400) without taking the body
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(big)}\r\nExpect: 100-continue\r\n"
            f"Connection: close\r\n\r\n").encode()
    answer = _raw_tls_request(server, head)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith((b"HTTP/1.1 413", b"HTTP/1.1 400")), f"oversize create answered {answer[:300]!r}"
    # 2. chunked, no Content-Length: the server must stop at its limit (4xx or closing the connection), never 2xx
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    chunks = [f"{len(big[i:i + 65536]):x}\r\n".encode() + big[i:i + 65536] + b"\r\n" for i in range(0, len(big), 65536)]
    answer = _raw_tls_request(server, head, chunks + [b"0\r\n\r\n"])
    status_line = answer.split(b"\r\n", 1)[0]
    assert answer == b"" or re.match(rb"HTTP/1\.1 4\d\d", status_line), f"oversize chunked create answered {answer[:300]!r}"
    # nothing was created and the server is fine
    r = requests.get(f"{server.url}/keys/{name}/?api-version={API}", headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 404, "an oversize create must not create the key"
    assert requests.get(f"{server.url}/healthz", verify=server.ca, timeout=30).status_code == 200


def test_missing_key_404_shape(server, token):
    r = requests.get(f"{server.url}/keys/nope/?api-version={API}", headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 404, "KeyNotFound")
    r = requests.get(f"{server.url}/deletedkeys/nope?api-version={API}", headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 404, "KeyNotFound")


def test_get_key_with_and_without_trailing_slash(server, token, ec_kid):
    name = urlparse(ec_kid).path.split("/")[2]
    for path in (f"/keys/{name}", f"/keys/{name}/"):
        r = requests.get(f"{server.url}{path}?api-version={API}", headers=_auth(token), verify=server.ca, timeout=30)
        assert r.status_code == 200 and r.json()["key"]["kid"] == ec_kid, (path, r.status_code, r.text)
    # empty version segment before a crypto verb = latest
    r = requests.post(f"{server.url}/keys/{name}//sign?api-version={API}",
                      json={"alg": "ES256", "value": b64url(bytes(32))}, headers=_auth(token), verify=server.ca, timeout=30)
    assert r.status_code == 200 and r.json()["kid"] == ec_kid, (r.status_code, r.text)


@pytest.mark.parametrize("body", [{"count": 0}, {"count": -1}, {"count": 129}, {}, {"count": "ten"}])
def test_rng_bad_count_is_400(server, token, body):
    r = requests.post(f"{server.url}/rng?api-version={API}", json=body, headers=_auth(token), verify=server.ca, timeout=30)
    _assert_error_body(r, 400, "BadParameter")


def test_rng_wire_shape(server, token):
    r = requests.post(f"{server.url}/rng?api-version={API}", json={"count": 16}, headers=_auth(token), verify=server.ca,
                      timeout=30)
    assert r.status_code == 200, r.text
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", r.json()["value"]), r.text


def test_purge_returns_204(server, token):
    name = uniq("p204")
    h = _auth(token)
    assert requests.post(f"{server.url}/keys/{name}/create?api-version={API}", json={"kty": "oct-HSM", "key_size": 128},
                         headers=h, verify=server.ca, timeout=30).status_code == 200
    d = requests.delete(f"{server.url}/keys/{name}?api-version={API}", headers=h, verify=server.ca, timeout=30)
    assert d.status_code == 200, d.text
    db = d.json()
    assert db["recoveryId"] == f"{server.url}/deletedkeys/{name}"
    assert isinstance(db["deletedDate"], int) and isinstance(db["scheduledPurgeDate"], int)
    assert db["scheduledPurgeDate"] - db["deletedDate"] == 90 * 86400, db
    assert db["attributes"]["recoverableDays"] == 90 and db["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
    p = requests.delete(f"{server.url}/deletedkeys/{name}?api-version={API}", headers=h, verify=server.ca, timeout=30)
    assert p.status_code == 204, (p.status_code, p.text)
    assert p.content == b""


# ------------------------------------------------------------------------------------------------ TLS
@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_versions(server, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.minimum_version = v
    ctx.maximum_version = v
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() == version.replace("_", "."), s.version()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:200]


def test_certificate_names(server):
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:  # hostname check against the SAN
            assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_http_refused(server):
    try:
        r = requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=10)
    except requests.exceptions.ConnectionError:
        return
    assert r.status_code >= 400, f"plain http answered {r.status_code}: {r.text[:200]}"
    r2 = None
    try:
        r2 = requests.get(f"http://127.0.0.1:{server.port}/keys?api-version={API}", timeout=10)
    except requests.exceptions.ConnectionError:
        pass
    assert r2 is None or r2.status_code >= 400


# ------------------------------------------------------------------------------------------------ more wire checks
def _req(server, token, method, path, **kw):
    return requests.request(method, f"{server.url}{path}", headers=_auth(token), verify=server.ca, timeout=30, **kw)


def test_key_bundle_wire_shape(server, token):
    name = uniq("shape")
    r = _req(server, token, "POST", f"/keys/{name}/create?api-version={API}",
             json={"kty": "RSA", "key_size": 2048, "tags": {"a": "b"}})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["key"]["kty"] == "RSA-HSM"
    assert re.fullmatch(re.escape(server.url) + rf"/keys/{name}/[0-9a-zA-Z]+", b["key"]["kid"]), b["key"]["kid"]
    for f in ("n", "e"):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", b["key"][f]), f"{f} must be unpadded base64url"
    assert not set(b["key"]) & {"d", "p", "q", "dp", "dq", "qi", "k"}, b["key"].keys()
    a = b["attributes"]
    for f in ("created", "updated"):
        assert isinstance(a[f], int) and not isinstance(a[f], bool), f"{f} must be unix seconds: {a[f]!r}"
    assert a["enabled"] is True and a["recoverableDays"] == 90 and a["recoveryLevel"] == "Recoverable+Purgeable"
    assert b["tags"] == {"a": "b"}
    # list rows: versionless kid, attributes, no key material
    r = _req(server, token, "GET", f"/keys?api-version={API}&maxresults=25")
    assert r.status_code == 200
    page = r.json()
    assert isinstance(page["value"], list)
    for item in page["value"]:
        assert "key" not in item and re.fullmatch(re.escape(server.url) + r"/keys/[0-9A-Za-z-]+", item["kid"]), item
    # versions rows: versioned kid
    r = _req(server, token, "GET", f"/keys/{name}/versions?api-version={API}")
    assert [i["kid"] for i in r.json()["value"]] == [b["key"]["kid"]]
    # deleted rows
    assert _req(server, token, "DELETE", f"/keys/{name}?api-version={API}").status_code == 200
    r = _req(server, token, "GET", f"/deletedkeys?api-version={API}&maxresults=25")
    assert r.status_code == 200
    rows = []
    body = r.json()
    while True:
        rows += body["value"]
        if not body.get("nextLink"):
            break
        assert body["nextLink"].startswith(server.url + "/deletedkeys"), body["nextLink"]
        body = requests.get(body["nextLink"], headers=_auth(token), verify=server.ca, timeout=30).json()
    mine = [row for row in rows if row["kid"] == f"{server.url}/keys/{name}"]
    assert len(mine) == 1, rows
    assert "key" not in mine[0] and mine[0]["recoveryId"] == f"{server.url}/deletedkeys/{name}"
    assert isinstance(mine[0]["deletedDate"], int) and isinstance(mine[0]["scheduledPurgeDate"], int)


def test_unknown_request_members_are_ignored(server, token):
    r = _req(server, token, "POST", f"/keys/{uniq('fwd')}/create?api-version={API}",
             json={"kty": "EC-HSM", "crv": "P-256", "futureMember": {"x": 1}, "release_policy": None,
                   "attributes": {"enabled": True, "exportable": False}})
    assert r.status_code == 200, r.text


def test_double_delete_and_purge_active_are_404(server, token):
    name = uniq("dd")
    assert _req(server, token, "POST", f"/keys/{name}/create?api-version={API}",
                json={"kty": "oct-HSM", "key_size": 128}).status_code == 200
    r = _req(server, token, "DELETE", f"/deletedkeys/{name}?api-version={API}")
    _assert_error_body(r, 404)  # purge of a key that is not deleted
    assert _req(server, token, "GET", f"/keys/{name}/?api-version={API}").status_code == 200
    assert _req(server, token, "DELETE", f"/keys/{name}?api-version={API}").status_code == 200
    _assert_error_body(_req(server, token, "DELETE", f"/keys/{name}?api-version={API}"), 404)


def test_import_invalid_material_is_400_and_not_created(server, token):
    from localcrypto import int_bytes, new_ec, new_rsa

    rsa_key = new_rsa(2048).private_numbers()
    n = rsa_key.public_numbers.n
    good = {"kty": "RSA", "n": b64url(int_bytes(n, 256)), "e": b64url(int_bytes(65537)), "d": b64url(int_bytes(rsa_key.d, 256)),
            "p": b64url(int_bytes(rsa_key.p)), "q": b64url(int_bytes(rsa_key.q)), "dp": b64url(int_bytes(rsa_key.dmp1)),
            "dq": b64url(int_bytes(rsa_key.dmq1)), "qi": b64url(int_bytes(rsa_key.iqmp))}
    other = new_rsa(2048).private_numbers()
    ec_a, ec_b = new_ec("P-256").private_numbers(), new_ec("P-256").private_numbers()
    bad_jwks = {
        "rsa-public-only": {k: good[k] for k in ("kty", "n", "e")},
        "rsa-wrong-p": dict(good, p=b64url(int_bytes(other.p))),
        "ec-public-only": {"kty": "EC", "crv": "P-256", "x": b64url(int_bytes(ec_a.public_numbers.x, 32)),
                           "y": b64url(int_bytes(ec_a.public_numbers.y, 32))},
        "ec-d-not-matching-xy": {"kty": "EC", "crv": "P-256", "x": b64url(int_bytes(ec_a.public_numbers.x, 32)),
                                 "y": b64url(int_bytes(ec_a.public_numbers.y, 32)), "d": b64url(int_bytes(ec_b.private_value, 32))},
        "ec-bad-curve": {"kty": "EC", "crv": "P-192", "d": b64url(bytes(24)), "x": b64url(bytes(24)), "y": b64url(bytes(24))},
        "oct-bad-size": {"kty": "oct", "k": b64url(bytes(20))},
        "oct-no-k": {"kty": "oct"},
        "unknown-kty": {"kty": "DSA", "k": b64url(bytes(32))},
    }
    for label, jwk_body in bad_jwks.items():
        name = uniq("badimp")
        r = _req(server, token, "PUT", f"/keys/{name}?api-version={API}", json={"key": jwk_body, "Hsm": True})
        assert r.status_code == 400, f"{label}: import answered {r.status_code} {r.text[:300]}"
        assert _req(server, token, "GET", f"/keys/{name}/?api-version={API}").status_code == 404, f"{label} created a key"
    # control: the good one imports
    r = _req(server, token, "PUT", f"/keys/{uniq('goodimp')}?api-version={API}", json={"key": good, "Hsm": True})
    assert r.status_code == 200, r.text


def test_crypto_on_versionless_and_old_versions(server, token):
    name = uniq("vl")
    v1 = _req(server, token, "POST", f"/keys/{name}/create?api-version={API}", json={"kty": "EC-HSM", "crv": "P-256"}).json()
    v2 = _req(server, token, "POST", f"/keys/{name}/create?api-version={API}", json={"kty": "EC-HSM", "crv": "P-256"}).json()
    digest = b64url(bytes(32))
    r = _req(server, token, "POST", f"/keys/{name}//sign?api-version={API}", json={"alg": "ES256", "value": digest})
    assert r.status_code == 200 and r.json()["kid"] == v2["key"]["kid"], r.text
    r = _req(server, token, "POST", urlparse(v1["key"]["kid"]).path + f"/sign?api-version={API}",
             json={"alg": "ES256", "value": digest})
    assert r.status_code == 200 and r.json()["kid"] == v1["key"]["kid"], r.text
    sig_v1 = r.json()["value"]
    # v1's signature verifies under v1 and not under v2
    r = _req(server, token, "POST", urlparse(v1["key"]["kid"]).path + f"/verify?api-version={API}",
             json={"alg": "ES256", "digest": digest, "value": sig_v1})
    assert r.json() == {"value": True}, r.text
    r = _req(server, token, "POST", urlparse(v2["key"]["kid"]).path + f"/verify?api-version={API}",
             json={"alg": "ES256", "digest": digest, "value": sig_v1})
    assert r.json() == {"value": False}, r.text
    # disabling v1 does not disable v2
    r = _req(server, token, "PATCH", urlparse(v1["key"]["kid"]).path + f"?api-version={API}",
             json={"attributes": {"enabled": False}})
    assert r.status_code == 200 and r.json()["attributes"]["enabled"] is False
    r = _req(server, token, "POST", urlparse(v1["key"]["kid"]).path + f"/sign?api-version={API}",
             json={"alg": "ES256", "value": digest})
    assert r.status_code == 403, r.text
    r = _req(server, token, "POST", f"/keys/{name}//sign?api-version={API}", json={"alg": "ES256", "value": digest})
    assert r.status_code == 200, r.text
    # unknown version
    r = _req(server, token, "POST", f"/keys/{name}/{'f' * 32}/sign?api-version={API}", json={"alg": "ES256", "value": digest})
    _assert_error_body(r, 404, "KeyNotFound")


def test_forbidden_has_no_challenge(server, token):
    name = uniq("f403")
    _req(server, token, "POST", f"/keys/{name}/create?api-version={API}",
         json={"kty": "EC-HSM", "crv": "P-256", "attributes": {"enabled": False}})
    r = _req(server, token, "POST", f"/keys/{name}//sign?api-version={API}", json={"alg": "ES256", "value": b64url(bytes(32))})
    _assert_error_body(r, 403)
    assert "WWW-Authenticate" not in r.headers, "a 403 must not carry a challenge"
