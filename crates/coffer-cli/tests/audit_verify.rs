//! `coffer audit verify` on real audit files written by a real server: the intact log passes; editing,
//! deleting or reordering one line fails at that line; a forged line (rechained without the MAC key) passes
//! the hash chain but fails the MAC check.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions may panic")]
use std::path::{Path, PathBuf};
use std::process::Command;

use coffer_testkit::TestServer;
use reqwest::Method;

/// Runs `coffer audit verify --data-dir D --from-start FILE…`: (exit code, stdout).
fn verify(data_dir: &Path, files: &[PathBuf], mac: bool) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    cmd.args(["audit", "verify", "--from-start"]);
    if mac {
        cmd.arg("--data-dir").arg(data_dir);
    }
    let out = cmd.args(files).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Copies the audit directory into one file per test case and returns its lines.
fn lines(s: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for f in coffer_server::audit_sinks::file::list_files(&s.audit_dir()).unwrap() {
        out.extend(std::fs::read_to_string(f).unwrap().lines().map(str::to_string));
    }
    out
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    p
}

#[tokio::test]
async fn verify_finds_the_first_changed_removed_or_reordered_record() {
    let s = TestServer::builder().start().await.unwrap();
    for i in 0..6 {
        let (st, _) = s
            .call(
                Method::POST,
                &format!("/keys/v{i}/create?api-version=7.6"),
                Some(serde_json::json!({"kty": "EC-HSM"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200);
    }
    let data = s.data_dir();
    // The live directory, as the server wrote it (several requests: tokens and key creations).
    let (code, out) = verify(&data, &[s.audit_dir()], true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hash chain and MACs checked"), "{out}");
    let all = lines(&s);
    assert!(all.len() >= 12, "{} records", all.len());
    let tmp = tempfile::tempdir().unwrap();

    // Line 5 edited: a KeyCreate turned into a KeyGet.
    let mut edited = all.clone();
    edited[4] = edited[4].replacen("\"operationName\":\"", "\"operationName\":\"X", 1);
    let (code, out) = verify(&data, &[write(tmp.path(), "edited.jsonl", &edited)], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("edited.jsonl:5:") && out.contains("changed"), "{out}");

    // Line 7 deleted.
    let mut removed = all.clone();
    removed.remove(6);
    let (code, out) = verify(&data, &[write(tmp.path(), "removed.jsonl", &removed)], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("removed.jsonl:7:") && out.contains("removed"), "{out}");

    // Lines 3 and 4 swapped.
    let mut swapped = all.clone();
    swapped.swap(2, 3);
    let (code, out) = verify(&data, &[write(tmp.path(), "swapped.jsonl", &swapped)], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("swapped.jsonl:3:"), "{out}");

    // Split across two files given in the wrong order: fails at the first line of the first file given.
    let (a, b) = all.split_at(5);
    let fa = write(tmp.path(), "a.jsonl", a);
    let fb = write(tmp.path(), "b.jsonl", b);
    assert_eq!(verify(&data, &[fa.clone(), fb.clone()], true).0, 0);
    let (code, out) = verify(&data, &[fb, fa], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("b.jsonl:1:"), "{out}");

    // A forger without the key rewrites line 6 and re-chains everything after it: the hash chain alone
    // cannot tell, the MAC check can.
    let key = coffer_crypto::SecretBytes::new(vec![0x42; 32]);
    let mut head = coffer_core::audit::ChainHead::after_line(all[4].as_bytes()).unwrap();
    let mut forged: Vec<String> = all[..5].to_vec();
    for line in &all[5..] {
        let body = line.split(",\"cofferChain\":").next().unwrap().replace("v1", "v9") + "}";
        let (chained, next) = coffer_core::audit::chain::chain_line(&head, &key, body.as_bytes());
        head = next;
        forged.push(String::from_utf8(chained).unwrap());
    }
    let f = write(tmp.path(), "forged.jsonl", &forged);
    let (code, out) = verify(&data, std::slice::from_ref(&f), false);
    assert_eq!(code, 0, "without the key only the chain is checked: {out}");
    assert!(out.contains("MACs NOT checked"), "{out}");
    let (code, out) = verify(&data, &[f], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("forged.jsonl:6:"), "{out}");
}

// Multi-threaded: the CLI runs as a blocking child process while this runtime serves its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_prints_the_records_an_auditor_asks_for() {
    let s = TestServer::builder().start().await.unwrap();
    let (st, p) = s
        .call(
            Method::POST,
            "/coffer/v1/principals?api-version=7.6",
            Some(serde_json::json!({"displayName": "auditor"})),
        )
        .await
        .unwrap();
    assert_eq!(st, 201, "{p}");
    s.assign(
        "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
        "/",
        p["objectId"].as_str().unwrap(),
    )
    .await
    .unwrap();
    for i in 0..3 {
        let (st, _) = s
            .call(
                Method::POST,
                &format!("/keys/q{i}/create?api-version=7.6"),
                Some(serde_json::json!({"kty": "EC-HSM"})),
            )
            .await
            .unwrap();
        assert_eq!(st, 200);
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut creds = s.creds.clone();
    creds["client_id"] = p["clientId"].clone();
    creds["client_secret"] = p["clientSecret"].clone();
    creds["object_id"] = p["objectId"].clone();
    let creds_file = tmp.path().join("auditor.json");
    std::fs::write(&creds_file, creds.to_string()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["audit", "query", "--creds"])
            .arg(&creds_file)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let creates = run(&["--operation", "KeyCreate"]);
    assert_eq!(creates.len(), 3);
    assert!(creates.iter().all(|r| r["operationName"] == "KeyCreate"));
    assert_eq!(run(&["--operation", "KeyCreate", "--limit", "2"]).len(), 2);
    // An administrator (the role alone: the bootstrap principal also holds Crypto Auditor) may not read the log.
    let admin = s.new_principal("admin-only").await.unwrap();
    s.assign("a290e904-7015-4bba-90c8-60543313cdb4", "/", &admin.object_id)
        .await
        .unwrap();
    let mut admin_creds = s.creds.clone();
    admin_creds["client_id"] = admin.client_id.clone().into();
    admin_creds["client_secret"] = admin.secret.clone().into();
    admin_creds["object_id"] = admin.object_id.clone().into();
    let admin_file = tmp.path().join("admin.json");
    std::fs::write(&admin_file, admin_creds.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["audit", "query", "--creds"])
        .arg(&admin_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
}
