//! A full restore keeps deletions and protection (issue 13, item 3): it never erases a key or version created after
//! the backup, never bypasses purge protection, and never brings back an identity deleted after the backup unless
//! the request asks for identities.
use coffer_testkit::{CRYPTO_USER, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

const V: &str = "api-version=7.6";
const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const RESTORE: &str = "6efe6056-5259-49d2-8b3d-d3d73544b20b";

async fn call(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    s.call(method, &format!("{path}?{V}"), body).await.unwrap()
}

async fn restore(s: &TestServer, container: &str, folder: &str, identities: bool) -> Value {
    let mut body = json!({"sasTokenParameters": {"storageResourceUri": container, "token": null},
        "folderToRestore": folder});
    if identities {
        body["restoreIdentities"] = json!(true);
    }
    s.run_job(Method::PUT, &format!("/restore?{V}"), body).await.unwrap()
}

#[tokio::test]
async fn a_full_restore_keeps_later_keys_recoverable_and_later_revocations_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let container = format!("file://{}", dir.path().display());
    let s = TestServer::builder().purge_protection().start().await.unwrap();
    let me = s.cred("object_id");
    for role in [BACKUP, RESTORE] {
        s.assign(role, "/", &me).await.unwrap();
    }
    call(&s, Method::POST, "/keys/old/create", Some(json!({"kty":"EC"}))).await;
    let app = s.new_principal("app").await.unwrap();
    s.assign(CRYPTO_USER, "/", &app.object_id).await.unwrap();

    let done = s
        .run_job(
            Method::POST,
            &format!("/backup?{V}"),
            json!({"storageResourceUri": container, "token": null}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "Succeeded", "{done}");
    let folder = done["azureStorageBlobContainerUri"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();

    // After the backup: a new key, a new version of the old one, and the application revoked.
    let (st, _) = call(&s, Method::POST, "/keys/new/create", Some(json!({"kty":"EC"}))).await;
    assert_eq!(st, 200);
    let (st, rotated) = call(&s, Method::POST, "/keys/old/create", Some(json!({"kty":"EC"}))).await;
    assert_eq!(st, 200, "{rotated}");
    let (st, _) = call(
        &s,
        Method::DELETE,
        &format!("/coffer/v1/principals/{}", app.object_id),
        None,
    )
    .await;
    assert!((200..300).contains(&st), "{st}");

    let done = restore(&s, &container, &folder, false).await;
    assert_eq!(done["status"], "Succeeded", "{done}");

    // The key created after the backup was not erased: it is soft-deleted and recoverable, and purge protection
    // holds.
    let (st, deleted) = call(&s, Method::GET, "/deletedkeys/new", None).await;
    assert_eq!(st, 200, "the later key is soft-deleted, not erased: {deleted}");
    let (st, b) = call(&s, Method::DELETE, "/deletedkeys/new", None).await;
    assert_eq!(st, 403, "purge protection holds: {b}");
    let (st, _) = call(&s, Method::POST, "/deletedkeys/new/recover", None).await;
    assert_eq!(st, 200, "recoverable");
    let (st, _) = call(&s, Method::GET, "/keys/new/", None).await;
    assert_eq!(st, 200);
    // The version made after the backup is kept, and stays the latest.
    let (_, versions) = call(&s, Method::GET, "/keys/old/versions", None).await;
    assert_eq!(versions["value"].as_array().unwrap().len(), 2, "{versions}");
    let (_, latest) = call(&s, Method::GET, "/keys/old/", None).await;
    assert_eq!(latest["key"]["kid"], rotated["key"]["kid"]);
    // The revoked application stays revoked: no principal, no token, no role assignment.
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("/coffer/v1/principals/{}", app.object_id),
        None,
    )
    .await;
    assert_eq!(st, 404, "a principal deleted after the backup does not come back");
    assert!(
        s.token_for(&app.client_id, &app.secret, &format!("{}/.default", s.url()))
            .await
            .is_err(),
        "its old secret gets no token"
    );
    let (_, list) = call(
        &s,
        Method::GET,
        "/providers/Microsoft.Authorization/roleAssignments",
        None,
    )
    .await;
    assert!(
        !list.to_string().contains(&app.object_id),
        "its role assignment does not come back: {list}"
    );

    // Only a caller holding every protected right may ask for identities: a Restore operator alone may not.
    let operator = s.new_principal("restore-operator").await.unwrap();
    s.assign(RESTORE, "/", &operator.object_id).await.unwrap();
    let body = json!({"sasTokenParameters": {"storageResourceUri": container, "token": null},
        "folderToRestore": folder, "restoreIdentities": true});
    let (st, b) = s
        .call_as(&operator.token, Method::PUT, &format!("/restore?{V}"), Some(body))
        .await
        .unwrap();
    assert_eq!(st, 403, "a Restore operator bringing back deleted identities: {b}");
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("/coffer/v1/principals/{}", app.object_id),
        None,
    )
    .await;
    assert_eq!(st, 404);

    // Asked for explicitly (a Coffer extension of the request body) by the bootstrap principal, identities come back.
    let done = restore(&s, &container, &folder, true).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let (st, _) = call(
        &s,
        Method::GET,
        &format!("/coffer/v1/principals/{}", app.object_id),
        None,
    )
    .await;
    assert_eq!(st, 200, "restored on request");
    let records = s.audit_records().unwrap();
    assert!(
        records.iter().any(|r| r["operationName"] == "RestoreCreate"),
        "the restore is audited"
    );
    s.stop().await.unwrap();
}

/// A restore reads only regular files of bounded size: a FIFO planted as `state.bin` inside an allowed root fails the
/// job at once instead of blocking it (review finding).
#[tokio::test]
async fn a_restore_refuses_a_fifo_instead_of_waiting_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("mhsm-coffer-20260101000000");
    std::fs::create_dir(&folder).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(folder.join("state.bin"))
        .status()
        .unwrap();
    assert!(st.success());
    let s = TestServer::builder().start().await.unwrap();
    s.assign(RESTORE, "/", &s.cred("object_id")).await.unwrap();
    let container = format!("file://{}", dir.path().display());
    let done = restore(&s, &container, "mhsm-coffer-20260101000000", false).await;
    assert_eq!(done["status"], "Failed", "{done}");
    let (st, _) = call(&s, Method::GET, "/keys", None).await;
    assert_eq!(st, 200, "the instance is not held by a stuck restore");
    s.stop().await.unwrap();
}
