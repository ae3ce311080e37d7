"""A full restore is all or nothing: SIGKILL the server in the middle of one, restart it, and the instance is
exactly what it was before the restore (or, if the kill came after the commit, the restored state) — never a mix."""
import os
import signal
import time
import uuid

import requests

API = "7.6"
BACKUP = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8"
RESTORE = "6efe6056-5259-49d2-8b3d-d3d73544b20b"
N_KEYS = 400


def headers(srv):
    return {"Authorization": f"Bearer {srv.token()}"}


def assign(srv, role):
    name = str(uuid.uuid4())
    body = {"properties": {"principalId": srv.creds["object_id"],
                           "roleDefinitionId": f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"}}
    r = requests.put(f"{srv.url}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version={API}",
                     json=body, headers=headers(srv), verify=srv.ca, timeout=30)
    assert r.status_code == 201, r.text


def key_names(srv, h):
    names, url = set(), f"{srv.url}/keys?api-version={API}&maxresults=25"
    while url:
        r = requests.get(url, headers=h, verify=srv.ca, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        names |= {item["kid"].rsplit("/", 1)[1] for item in body["value"]}
        url = body.get("nextLink")
    return names


def test_sigkill_during_full_restore_leaves_the_instance_consistent(make_server, tmp_path):
    # The data set is made with raw requests as fast as they go: throttling (200 units per key creation) would
    # answer 429 to a burst this size, which is not what this test is about.
    config = tmp_path / "coffer.toml"
    config.write_text("[throttling]\nenabled = false\n")
    srv = make_server("restore-crash", extra_args=("--config", str(config)))
    assign(srv, BACKUP)
    assign(srv, RESTORE)
    h = headers(srv)
    s = requests.Session()
    for i in range(N_KEYS):
        r = s.post(f"{srv.url}/keys/k{i}/create?api-version={API}", json={"kty": "oct-HSM", "key_size": 256},
                   headers=h, verify=srv.ca, timeout=30)
        assert r.status_code == 200, r.text
    container = f"file://{tmp_path}/backups"
    r = requests.post(f"{srv.url}/backup?api-version={API}", json={"storageResourceUri": container, "token": None},
                      headers=h, verify=srv.ca, timeout=30)
    assert r.status_code == 202, r.text
    status_url = r.headers["Azure-AsyncOperation"]
    for _ in range(600):
        st = requests.get(status_url, headers=h, verify=srv.ca, timeout=30).json()
        if st["status"] != "InProgress":
            break
        time.sleep(0.1)
    assert st["status"] == "Succeeded", st
    folder = st["azureStorageBlobContainerUri"][len(container) + 1:]
    backed_up = key_names(srv, h)
    assert len(backed_up) == N_KEYS

    # Change the instance after the backup: one key more, one key less.
    r = s.post(f"{srv.url}/keys/after/create?api-version={API}", json={"kty": "EC"}, headers=h, verify=srv.ca, timeout=30)
    assert r.status_code == 200
    r = s.delete(f"{srv.url}/keys/k0?api-version={API}", headers=h, verify=srv.ca, timeout=30)
    assert r.status_code == 200
    before = key_names(srv, h)

    # Start the full restore and kill the server at once.
    r = requests.put(f"{srv.url}/restore?api-version={API}", json={
        "sasTokenParameters": {"storageResourceUri": container, "token": None}, "folderToRestore": folder},
        headers=h, verify=srv.ca, timeout=30)
    assert r.status_code == 202, r.text
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(timeout=30)
    applied = "full restore applied" in srv.log_since(0, max_lines=100000)
    srv.proc = None
    srv.start()
    after = key_names(srv, headers(srv))
    if applied:
        # A restore never erases: the key made after the backup is soft-deleted, the key deleted after it stays
        # deleted; everything else is the backup's.
        assert sorted(after) == sorted(set(before) - {"after"}), \
            "the restore committed before the kill: the instance must hold the backup's keys, less later deletions"
    else:
        assert after == before, "the restore did not commit: the instance must be exactly as before"
    # Either way the keys work.
    r = requests.post(f"{srv.url}/keys/k5//encrypt?api-version={API}", json={"alg": "A256GCM", "value": "AAAA"},
                      headers=headers(srv), verify=srv.ca, timeout=30)
    assert r.status_code == 200, r.text
