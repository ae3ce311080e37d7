"""Listing with paging on a server of its own, so that the exact contents of every list are known."""

from __future__ import annotations

import pytest

from coffer_harness import CofferServer, Recorder, uniq


@pytest.fixture(scope="module")
def list_server(tmp_path_factory):
    srv = CofferServer(tmp_path_factory.mktemp("coffer-list"), name="python-list")
    srv.start()
    yield srv
    rc = srv.stop()
    assert rc == 0, f"coffer exited with status {rc} after SIGTERM"


def _pages(rec: Recorder, suffix: str):
    calls = rec.take()
    pages = [c for c in calls if c[0] == "GET" and c[1].rstrip("/").endswith(suffix) and c[2] == 200]
    return pages, calls


def test_list_keys_and_deleted_keys_paged(list_server):
    kc = list_server.key_client()
    assert list(kc.list_properties_of_keys()) == [], "a new instance has no keys"
    assert list(kc.list_deleted_keys()) == []

    names = {uniq(f"lst{i}") for i in range(5)}
    for n in names:
        kc.create_oct_key(n, size=128, hardware_protected=True)
    kc.create_oct_key(sorted(names)[0], size=128, hardware_protected=True)  # a second version: still one row

    rec = Recorder()
    props = list(kc.list_properties_of_keys(max_page_size=2, raw_response_hook=rec))
    listed = [p.name for p in props]
    assert sorted(listed) == sorted(names), f"listed {listed}, created {sorted(names)}"
    for p in props:
        assert p.version is None and p.id == f"{list_server.url}/keys/{p.name}", f"list ids are versionless: {p.id}"
        assert p.enabled is True and p.created_on is not None and p.recoverable_days == 90
    pages, calls = _pages(rec, "/keys")
    assert len(pages) == 3, f"5 keys with maxresults=2 = 3 pages, saw {calls}"

    rec = Recorder()
    single = list(kc.list_properties_of_keys(max_page_size=25, raw_response_hook=rec))
    assert sorted(p.name for p in single) == sorted(names)
    pages, calls = _pages(rec, "/keys")
    assert len(pages) == 1, f"5 keys with maxresults=25 fit one page (no empty trailing page), saw {calls}"

    # soft-delete three, list deleted with paging
    gone = sorted(names)[:3]
    for n in gone:
        poller = kc.begin_delete_key(n)
        poller.wait(timeout=30)
        assert poller.done()
    rec = Recorder()
    deleted = list(kc.list_deleted_keys(max_page_size=2, raw_response_hook=rec))
    assert sorted(d.name for d in deleted) == gone
    for d in deleted:
        assert d.recovery_id == f"{list_server.url}/deletedkeys/{d.name}"
        assert d.deleted_date is not None and d.scheduled_purge_date is not None
    pages, calls = _pages(rec, "/deletedkeys")
    assert len(pages) == 2, f"3 deleted keys with maxresults=2 = 2 pages, saw {calls}"
    assert sorted(p.name for p in kc.list_properties_of_keys(max_page_size=2)) == sorted(names - set(gone))


def test_list_versions_paged_exact(list_server):
    kc = list_server.key_client()
    name = uniq("vers")
    versions = {kc.create_ec_key(name, curve="P-256", hardware_protected=True).properties.version for _ in range(3)}
    rec = Recorder()
    listed = list(kc.list_properties_of_key_versions(name, max_page_size=1, raw_response_hook=rec))
    assert {p.version for p in listed} == versions and len(listed) == 3
    for p in listed:
        assert p.id == f"{list_server.url}/keys/{name}/{p.version}"
    pages, calls = _pages(rec, "/versions")
    assert len(pages) >= 3, f"3 versions with maxresults=1 take at least 3 pages, saw {calls}"
