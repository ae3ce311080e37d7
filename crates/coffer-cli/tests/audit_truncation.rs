//! Truncation of the audit log is detected (issue 12, item 5): the newest records, or every file, removed from a
//! stopped server's audit directory. The chain alone cannot tell (what is left is a valid prefix); the MAC'd
//! checkpoint of the chain head kept in the store can: `coffer audit verify --data-dir` fails and the server
//! refuses to start.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions may panic")]
use std::path::Path;
use std::process::Command;

use coffer_testkit::TestServer;
use reqwest::Method;

/// Runs `coffer audit verify --data-dir D D/audit`: (exit code, stdout and stderr).
fn verify(data_dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .arg(data_dir.join("audit"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts a server on `data`, makes a few audited requests and stops it gracefully.
async fn run_some_requests(data: &Path) {
    let s = TestServer::builder()
        .data_dir(data.to_path_buf())
        .start()
        .await
        .unwrap();
    for i in 0..4 {
        let (st, _) = s
            .call(
                Method::POST,
                &format!("/keys/t{i}/create?api-version=7.6"),
                Some(serde_json::json!({"kty": "EC-HSM"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200);
    }
    s.stop().await.unwrap();
}

fn audit_files(data: &Path) -> Vec<std::path::PathBuf> {
    coffer_server::audit_sinks::file::list_files(&data.join("audit")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_newest_records_is_detected_by_verify_and_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_some_requests(&data).await;
    let (code, out) = verify(&data);
    assert_eq!(code, 0, "the intact log verifies: {out}");

    // The newest three records removed: what is left is a valid prefix of the chain.
    let newest = audit_files(&data).pop().unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 3]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    std::fs::write(&newest, kept).unwrap();

    let (code, out) = verify(&data);
    assert_eq!(code, 1, "a truncated log must fail verification: {out}");
    assert!(out.contains("checkpoint"), "{out}");
    let started = TestServer::builder().data_dir(data.clone()).start().await;
    let err = format!(
        "{:#}",
        started.expect_err("the server must refuse to start on a truncated audit log")
    );
    assert!(err.contains("audit") && err.contains("checkpoint"), "{err}");

    // The documented way out: one start that accepts the loss. The chain continues from what is left, the
    // checkpoint follows it, and the next start needs no override.
    let audit = coffer_server::config::AuditConfig {
        accept_truncation: true,
        ..Default::default()
    };
    let s = TestServer::builder()
        .data_dir(data.clone())
        .audit(audit)
        .start()
        .await
        .unwrap();
    s.stop().await.unwrap();
    let s = TestServer::builder().data_dir(data.clone()).start().await.unwrap();
    s.stop().await.unwrap();
    let (code, out) = verify(&data);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_every_audit_file_is_detected_by_verify_and_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_some_requests(&data).await;
    for f in audit_files(&data) {
        std::fs::remove_file(f).unwrap();
    }
    let (code, out) = verify(&data);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checkpoint"), "{out}");
    let started = TestServer::builder().data_dir(data.clone()).start().await;
    let err = format!(
        "{:#}",
        started.expect_err("the server must refuse to start without its audit files")
    );
    assert!(err.contains("audit") && err.contains("checkpoint"), "{err}");
}
