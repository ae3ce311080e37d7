"""The SDK pinned to each api-version the server must accept."""

from __future__ import annotations

import pytest

from coffer_harness import Recorder, uniq

VERSIONS = ["7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"]


@pytest.mark.parametrize("version", VERSIONS)
def test_api_version_create_get_list(server, credential, version):
    rec = Recorder()
    kc = server.key_client(credential, api_version=version, raw_response_hook=rec)
    name = uniq("apiv")
    key = kc.create_ec_key(name, curve="P-256", hardware_protected=True)
    got = kc.get_key(name)
    assert got.id == key.id and got.key.x == key.key.x
    assert kc.get_key(name, key.properties.version).id == key.id
    assert any(p.name == name for p in kc.list_properties_of_key_versions(name))
    sent = [c for c in rec.take() if c[2] == 200]
    assert sent, "no successful request recorded"


def test_api_version_sent_on_the_wire(server, credential):
    """Guard: the client really sends the pinned version (so the matrix above tests what it claims)."""
    seen = []

    def hook(resp):
        seen.append(resp.http_request.url)

    kc = server.key_client(credential, api_version="7.3", raw_response_hook=hook)
    kc.get_random_bytes(4)
    assert seen and all("api-version=7.3" in u for u in seen), seen
