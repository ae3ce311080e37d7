//! Full backup and restore to a `file://` container: a backup restores into an instance recovered with the same
//! security domain; selective restore brings back a purged key; tampered backups and backups of another security
//! domain fail and change nothing; one job at a time.
use std::time::Duration;

use coffer_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

const V: &str = "api-version=7.6";
const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";

/// Starts a job and polls its Azure-AsyncOperation URL to the end; returns the final status body.
async fn run_job(s: &TestServer, method: Method, path: &str, body: serde_json::Value) -> serde_json::Value {
    let token = s.token().await.unwrap();
    let resp = s
        .client
        .request(method, format!("{}{path}", s.url()))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{path}");
    let url = resp.headers()["azure-asyncoperation"].to_str().unwrap().to_string();
    let first: serde_json::Value = resp.json().await.unwrap();
    assert!(first["jobId"].is_string() && first["status"].is_string());
    for _ in 0..200 {
        let st: serde_json::Value = s
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["status"] != "InProgress" {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!("job did not finish within 10 s");
}

async fn recovered_from(original: &TestServer) -> TestServer {
    let rec = original.recover_into_new_instance().await.unwrap();
    for role in [BACKUP, RESTORE] {
        rec.assign(role, "/", &rec.cred("object_id")).await.unwrap();
    }
    rec
}

#[tokio::test]
async fn full_backup_restores_into_a_recovered_instance() {
    let dir = tempfile::tempdir().unwrap();
    let container = format!("file://{}", dir.path().display());
    let original = TestServer::builder().start().await.unwrap();
    for role in [BACKUP, RESTORE] {
        original.assign(role, "/", &original.cred("object_id")).await.unwrap();
    }
    let (_, ec) = original
        .call(
            Method::POST,
            &format!("/keys/ec/create?{V}"),
            Some(json!({"kty":"EC","crv":"P-384","tags":{"a":"b"}})),
        )
        .await
        .unwrap();
    original
        .call(
            Method::POST,
            &format!("/keys/ec/create?{V}"),
            Some(json!({"kty":"EC","crv":"P-384"})),
        )
        .await
        .unwrap();
    let (_, aes) = original
        .call(
            Method::POST,
            &format!("/keys/aes/create?{V}"),
            Some(json!({"kty":"oct-HSM","key_size":256})),
        )
        .await
        .unwrap();
    let (_, ct) = original
        .call(
            Method::POST,
            &format!("/keys/aes//encrypt?{V}"),
            Some(json!({"alg":"A256GCM","value":"c2VjcmV0"})),
        )
        .await
        .unwrap();
    original
        .call(
            Method::POST,
            &format!("/keys/gone/create?{V}"),
            Some(json!({"kty":"EC"})),
        )
        .await
        .unwrap();
    original
        .call(Method::DELETE, &format!("/keys/gone?{V}"), None)
        .await
        .unwrap();
    original
        .call(Method::PUT, &format!("/keys/ec/rotationpolicy?{V}"), Some(json!({"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P2Y"}})))
        .await
        .unwrap();

    let app = original.new_principal("app").await.unwrap();
    let done = run_job(
        &original,
        Method::POST,
        &format!("/backup?{V}"),
        json!({"storageResourceUri": container, "token": null}),
    )
    .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    assert!(done["endTime"].as_i64().unwrap() > done["startTime"].as_i64().unwrap());
    let folder_url = done["azureStorageBlobContainerUri"].as_str().unwrap().to_string();
    let folder = folder_url.strip_prefix(&format!("{container}/")).unwrap().to_string();
    assert!(folder.starts_with("mhsm-coffer-"), "{folder}");
    assert!(
        !std::fs::read(dir.path().join(&folder).join("state.bin"))
            .unwrap()
            .windows(6)
            .any(|w| w == b"\"tags\""),
        "sealed, not plain JSON"
    );

    // Restore fully into an instance recovered with the same security domain.
    let rec = recovered_from(&original).await;
    let done = run_job(
        &rec,
        Method::PUT,
        &format!("/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folderToRestore": folder}),
    )
    .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    // An instance created in recovery mode holding only its bootstrap principal gets the identities too.
    let (st, _) = rec
        .call(
            Method::GET,
            &format!("/coffer/v1/principals/{}?{V}", app.object_id),
            None,
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "identities restored into a fresh recovery instance");
    let (_, versions) = rec
        .call(Method::GET, &format!("/keys/ec/versions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(versions["value"].as_array().unwrap().len(), 2);
    let (_, got) = rec
        .call(
            Method::GET,
            &format!(
                "/keys/ec/{}?{V}",
                ec["key"]["kid"].as_str().unwrap().rsplit('/').next().unwrap()
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(got["key"]["x"], ec["key"]["x"]);
    assert_eq!(got["tags"]["a"], "b");
    let (st, pt) = rec
        .call(
            Method::POST,
            &format!("/keys/aes//decrypt?{V}"),
            Some(json!({"alg":"A256GCM","value":ct["value"],"iv":ct["iv"],"tag":ct["tag"]})),
        )
        .await
        .unwrap();
    assert_eq!((st, pt["value"].as_str()), (200, Some("c2VjcmV0")));
    assert_eq!(
        aes["key"]["kid"].as_str().unwrap().rsplit('/').next(),
        pt["kid"].as_str().unwrap().rsplit('/').next()
    );
    let (st, _) = rec
        .call(Method::GET, &format!("/deletedkeys/gone?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "deleted keys come back deleted");
    let (_, pol) = rec
        .call(Method::GET, &format!("/keys/ec/rotationpolicy?{V}"), None)
        .await
        .unwrap();
    assert_eq!(pol["lifetimeActions"][0]["trigger"]["timeAfterCreate"], "P90D");
    let (st, _) = rec
        .call(
            Method::POST,
            &format!("/keys/ec//sign?{V}"),
            Some(json!({"alg":"ES384","value":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFUAAAAAAAAAAAAAAAAAAAAA"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200);

    // Selective restore brings back one purged key with all its versions.
    original
        .call(Method::DELETE, &format!("/keys/ec?{V}"), None)
        .await
        .unwrap();
    original
        .call(Method::DELETE, &format!("/deletedkeys/ec?{V}"), None)
        .await
        .unwrap();
    let done = run_job(
        &original,
        Method::PUT,
        &format!("/keys/ec/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folder": folder}),
    )
    .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let (_, versions) = original
        .call(Method::GET, &format!("/keys/ec/versions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(versions["value"].as_array().unwrap().len(), 2);
    // Selective restore onto a live key adds what it lacks and keeps its newer versions and its latest.
    let (st, rotated) = original
        .call(
            Method::POST,
            &format!("/keys/ec/create?{V}"),
            Some(json!({"kty":"EC","crv":"P-384"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{rotated}");
    let done = run_job(
        &original,
        Method::PUT,
        &format!("/keys/ec/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folder": folder}),
    )
    .await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let (_, versions) = original
        .call(Method::GET, &format!("/keys/ec/versions?{V}"), None)
        .await
        .unwrap();
    assert_eq!(versions["value"].as_array().unwrap().len(), 3, "{versions}");
    let (_, latest) = original
        .call(Method::GET, &format!("/keys/ec/?{V}"), None)
        .await
        .unwrap();
    assert_eq!(
        latest["key"]["kid"], rotated["key"]["kid"],
        "the newer version stays the latest"
    );
    // Onto a soft-deleted key it fails (recover it first) and changes nothing.
    original
        .call(Method::DELETE, &format!("/keys/ec?{V}"), None)
        .await
        .unwrap();
    let done = run_job(
        &original,
        Method::PUT,
        &format!("/keys/ec/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folder": folder}),
    )
    .await;
    assert_eq!(done["status"], "Failed", "{done}");

    // Another security domain cannot open the backup; a tampered backup fails; nothing changes.
    let stranger = TestServer::builder().start().await.unwrap();
    stranger
        .assign(RESTORE, "/", &stranger.cred("object_id"))
        .await
        .unwrap();
    stranger
        .call(
            Method::POST,
            &format!("/keys/mine/create?{V}"),
            Some(json!({"kty":"EC"})),
        )
        .await
        .unwrap();
    let done = run_job(
        &stranger,
        Method::PUT,
        &format!("/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folderToRestore": folder}),
    )
    .await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert!(done["error"]["message"].as_str().unwrap().contains("security domain"));
    let (st, _) = stranger
        .call(Method::GET, &format!("/keys/mine/?{V}"), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "the failed restore changed nothing");
    let state = dir.path().join(&folder).join("state.bin");
    let mut bytes = std::fs::read(&state).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&state, bytes).unwrap();
    rec.call(
        Method::POST,
        &format!("/keys/after/create?{V}"),
        Some(json!({"kty":"EC"})),
    )
    .await
    .unwrap();
    let done = run_job(
        &rec,
        Method::PUT,
        &format!("/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folderToRestore": folder}),
    )
    .await;
    assert_eq!(done["status"], "Failed");
    let (st, _) = rec.call(Method::GET, &format!("/keys/after/?{V}"), None).await.unwrap();
    assert_eq!(st, 200, "a failed restore leaves the instance as it was");
    // A folder that does not exist.
    let done = run_job(
        &rec,
        Method::PUT,
        &format!("/restore?{V}"),
        json!({"sasTokenParameters": {"storageResourceUri": container, "token": null}, "folderToRestore": "mhsm-nope"}),
    )
    .await;
    assert_eq!(done["status"], "Failed");
    for s in [original, rec, stranger] {
        s.stop().await.unwrap();
    }
}
