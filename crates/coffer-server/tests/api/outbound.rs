//! Backup and restore destinations are configured, not chosen by the caller (issue 12, item 1): `file://` only
//! inside configured roots (none by default), blob endpoints from an allow-list, private and loopback addresses only
//! when configured (checked after name resolution), one generic answer for an unreachable target (no port-scan
//! oracle), and a SAS token given in the URL is used but never kept, returned or audited.
use std::sync::{Arc, Mutex};

use coffer_server::config::BackupConfig;
use coffer_testkit::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const V: &str = "api-version=7.6";
const BACKUP: &str = "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8";
const UNREACHABLE: &str = "The backup storage could not be reached.";

async fn server(backup: BackupConfig) -> TestServer {
    let s = TestServer::builder().backup(backup).start().await.unwrap();
    s.assign(BACKUP, "/", &s.cred("object_id")).await.unwrap();
    s
}

/// POST /backup with `uri` (and an empty `token`, as the SDK sends when the SAS is in the URL). A 202 is followed
/// to the job's end: (status of the start, its body, the final job status or Null).
async fn backup(s: &TestServer, token: &str, uri: &str) -> (u16, Value, Value) {
    let resp = s
        .client
        .post(format!("{}/backup?{V}", s.url()))
        .bearer_auth(token)
        .json(&json!({"storageResourceUri": uri, "token": ""}))
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    let poll = resp
        .headers()
        .get("azure-asyncoperation")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let Some(url) = poll else {
        return (st, body, Value::Null);
    };
    for _ in 0..600 {
        let job: Value = s
            .client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["status"] != "InProgress" {
            return (st, body, job);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("backup job to {uri} did not finish within 30 s");
}

/// A port on 127.0.0.1 nobody listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn caller_chosen_backup_destinations_are_refused() {
    // The production defaults: Azure Storage over https, no file:// roots, no private addresses.
    let s = server(BackupConfig::default()).await;
    let token = s.token().await.unwrap();
    let mut failures = Vec::new();

    // A Backup User writes where it likes on the server's disk.
    let dir = tempfile::tempdir().unwrap();
    let (st, body, job) = backup(&s, &token, &format!("file://{}", dir.path().display())).await;
    let written = std::fs::read_dir(dir.path()).unwrap().count();
    if st != 400 || written != 0 {
        failures.push(format!(
            "file:// outside any configured root: {st} {body}, job {job}, {written} entries written"
        ));
    }

    // Loopback port scan: the server connects to any host and port and tells whether it is open.
    let port = closed_port();
    let (st, body, job) = backup(&s, &token, &format!("http://127.0.0.1:{port}/devstoreaccount1/c")).await;
    let text = format!("{body} {job}");
    if st != 400 || text.to_ascii_lowercase().contains("refused") {
        failures.push(format!("loopback port {port}: {st} {body}, job {job}"));
    }
    // Any host name under the caller's control.
    let (st, body, job) = backup(&s, &token, "https://storage.example.invalid/c").await;
    if st != 400 {
        failures.push(format!("a host outside the blob endpoints: {st} {body}, job {job}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A minimal blob service on 127.0.0.1: answers every request 201 and records its request line.
async fn fake_blob_service() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    log.lock()
                        .unwrap()
                        .push(head.lines().next().unwrap_or_default().to_string());
                    let _ = conn
                        .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn allowed_endpoints_work_the_sas_is_not_kept_and_unreachable_targets_look_alike() {
    let (port, seen) = fake_blob_service().await;
    let closed = closed_port();
    let hangup = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hangup_port = hangup.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = hangup.accept().await {
            drop(conn);
        }
    });
    let s = server(BackupConfig {
        blob_endpoints: vec![
            format!("http://127.0.0.1:{port}/acct"),
            format!("http://127.0.0.1:{closed}/acct"),
            format!("http://127.0.0.1:{hangup_port}/acct"),
        ],
        file_roots: Vec::new(),
        private_networks: vec!["127.0.0.1/32".into()],
    })
    .await;
    let token = s.token().await.unwrap();

    // The SAS token in the URL's query: used for the upload, never returned, audited or stored.
    let (st, body, job) = backup(
        &s,
        &token,
        &format!("http://127.0.0.1:{port}/acct/c?sv=2021-08-06&sig=TOPSECRET"),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(job["status"], "Succeeded", "{job}");
    let folder = job["azureStorageBlobContainerUri"].as_str().unwrap();
    assert!(
        folder.starts_with(&format!("http://127.0.0.1:{port}/acct/c/mhsm-")),
        "{folder}"
    );
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("PUT ") && r.contains("sig=TOPSECRET")),
        "the SAS token was not sent to the storage: {requests:?}"
    );
    for (what, text) in [("start", body.to_string()), ("job status", job.to_string())] {
        assert!(!text.contains("TOPSECRET"), "the SAS token is in the {what}: {text}");
    }
    let stored = all_bytes(&s.data_dir());
    assert!(
        !stored.windows(9).any(|w| w == b"TOPSECRET"),
        "the SAS token is in the data directory (database or audit log)"
    );

    // Under an allowed endpoint's host and port but outside its path: refused before any connection.
    let before = seen.lock().unwrap().len();
    let (st, body, _) = backup(&s, &token, &format!("http://127.0.0.1:{port}/other/c")).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadParameter", "{body}");
    assert_eq!(seen.lock().unwrap().len(), before);

    // A closed port and a listener that hangs up give the same answer: no oracle.
    let mut messages = Vec::new();
    for p in [closed, hangup_port] {
        let (st, body, job) = backup(&s, &token, &format!("http://127.0.0.1:{p}/acct/c")).await;
        assert_eq!(st, 202, "{body}");
        assert_eq!(job["status"], "Failed", "{job}");
        messages.push(job["error"]["message"].as_str().unwrap().to_string());
    }
    assert_eq!(messages, [UNREACHABLE, UNREACHABLE]);
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
    let (port, seen) = fake_blob_service().await;
    // The endpoint is allow-listed by name, but no private network is: `localhost` resolves to loopback.
    let s = server(BackupConfig {
        blob_endpoints: vec![format!("http://localhost:{port}/acct")],
        file_roots: Vec::new(),
        private_networks: Vec::new(),
    })
    .await;
    let token = s.token().await.unwrap();
    let (st, body, job) = backup(&s, &token, &format!("http://localhost:{port}/acct/c")).await;
    assert_eq!(st, 202, "the name itself is allowed: {body}");
    assert_eq!(job["status"], "Failed", "{job}");
    assert_eq!(job["error"]["message"], UNREACHABLE, "{job}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the server connected to a loopback address"
    );
    // The literal address is refused before a job starts.
    let (st, body, _) = backup(&s, &token, &format!("http://127.0.0.1:{port}/acct/c")).await;
    assert_eq!(st, 400, "{body}");
}

/// Every file under `dir` (the data directory: database, WAL, audit files) as bytes.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}

#[tokio::test]
async fn a_sas_token_in_the_url_is_not_returned_audited_or_stored() {
    // The test server's default destinations (file:// under the temporary directory).
    let s = TestServer::builder().start().await.unwrap();
    s.assign(BACKUP, "/", &s.cred("object_id")).await.unwrap();
    let token = s.token().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (st, body, job) = backup(
        &s,
        &token,
        &format!("file://{}?sv=2021-08-06&sig=TOPSECRET", dir.path().display()),
    )
    .await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(job["status"], "Succeeded", "{job}");
    let mut leaks = Vec::new();
    for (what, text) in [("start", body.to_string()), ("job status", job.to_string())] {
        if text.contains("TOPSECRET") {
            leaks.push(format!("{what}: {text}"));
        }
    }
    for r in s.audit_records().unwrap() {
        if r.to_string().contains("TOPSECRET") {
            leaks.push(format!("audit record: {r}"));
        }
    }
    if all_bytes(&s.data_dir()).windows(9).any(|w| w == b"TOPSECRET") {
        leaks.push("the data directory (database or audit files)".into());
    }
    assert!(leaks.is_empty(), "the SAS token leaked: {leaks:#?}");
}
