"""Benchmark (not a test): full backup and full restore time for N keys against a running Coffer.

    .venv/bin/python bench/full_backup_bench.py --creds coffer-data/admin-credentials.json --keys 10000 --dir /tmp/b

Creates N oct-HSM keys (skipped if --reuse), takes a full backup to file://DIR, restores it, and prints the
times. Needs the caller to hold Crypto User, Backup and Restore (it assigns them to itself at '/' when it is an
Administrator). Loopback only. Start the server with `[throttling] enabled = false` in its coffer.toml: key
creation weighs 200 units, so the default budget admits 100 creations per 10 seconds per principal."""
import argparse
import concurrent.futures
import json
import time
import uuid

import requests

ROLES = ["21dbd100-6940-42c2-9190-5d6cb909625b", "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
         "6efe6056-5259-49d2-8b3d-d3d73544b20b"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--creds", required=True)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--reuse", action="store_true")
    a = ap.parse_args()
    c = json.load(open(a.creds))
    assert c["url"].startswith(("https://127.", "https://localhost")), "loopback only"
    tok = requests.post(f"{c['url']}/{c['tenant_id']}/oauth2/v2.0/token", verify=c["ca_cert"], data={
        "grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"],
        "scope": f"{c['url']}/.default"}).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    for role in ROLES:
        requests.put(f"{c['url']}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid5(uuid.NAMESPACE_URL, role)}?api-version=7.6",
                     json={"properties": {"principalId": c["object_id"], "roleDefinitionId": role}}, headers=h, verify=c["ca_cert"])
    if not a.reuse:
        t = time.time()

        def create(i):
            s = requests.Session()
            for j in range(i, a.keys, 16):
                r = s.post(f"{c['url']}/keys/bench{j}/create?api-version=7.6", json={"kty": "oct-HSM", "key_size": 256},
                           headers=h, verify=c["ca_cert"])
                assert r.status_code == 200, r.text
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(create, range(16)))
        print(f"created {a.keys} keys in {time.time() - t:.1f} s")

    def job(method, path, body, kind):
        t = time.time()
        r = requests.request(method, f"{c['url']}{path}?api-version=7.6", json=body, headers=h, verify=c["ca_cert"])
        assert r.status_code == 202, r.text
        url = r.headers["Azure-AsyncOperation"]
        while True:
            st = requests.get(url, headers=h, verify=c["ca_cert"]).json()
            if st["status"] != "InProgress":
                break
            time.sleep(0.2)
        assert st["status"] == "Succeeded", st
        print(f"{kind}: {time.time() - t:.1f} s")
        return st

    container = f"file://{a.dir}"
    st = job("POST", "/backup", {"storageResourceUri": container, "token": None}, f"full backup of {a.keys} keys")
    folder = st["azureStorageBlobContainerUri"][len(container) + 1:]
    job("PUT", "/restore", {"sasTokenParameters": {"storageResourceUri": container, "token": None}, "folderToRestore": folder},
        f"full restore of {a.keys} keys")


if __name__ == "__main__":
    main()
