use super::*;
use std::os::unix::fs::PermissionsExt as _;

/// Blob endpoints of the tests below, the temporary directory as the file root, loopback allowed.
fn policy_with(endpoints: &[String]) -> OutboundPolicy {
    OutboundPolicy::new(
        endpoints,
        &[std::env::temp_dir()],
        &["127.0.0.0/8".to_string(), "::1".to_string()],
    )
    .unwrap()
}

fn test_policy() -> OutboundPolicy {
    policy_with(&[
        "http://127.0.0.1:10000/devstoreaccount1".into(),
        "https://*.blob.core.windows.net".into(),
        "http://acct.blob.core.windows.net".into(),
        "http://10.0.0.1:10000".into(),
        "http://127.0.0.1.example.com".into(),
        "http://127.0.0.1:1".into(),
        "http://localhost:1".into(),
        "http://[::1]:1".into(),
        "http://127.9.8.7:1".into(),
    ])
}

fn open_store() -> BlobBackupStorage {
    BlobBackupStorage::new(test_policy()).unwrap()
}

fn loc(dir: &Path, folder: &str) -> BackupLocation {
    BackupLocation {
        container_uri: Url::from_directory_path(dir).unwrap().to_string(),
        sas_token: None,
        folder: folder.to_string(),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn file_round_trip_atomic_and_private() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store();
    let l = loc(tmp.path(), "mhsm-test-2025010112000000");
    store.put(&l, "manifest.json", b"{\"a\":1}".to_vec()).await.unwrap();
    store.put(&l, "state.bin", vec![7u8; 100_000]).await.unwrap();
    assert_eq!(store.get(&l, "manifest.json").await.unwrap(), b"{\"a\":1}");
    assert_eq!(store.get(&l, "state.bin").await.unwrap(), vec![7u8; 100_000]);
    // replacing works and leaves no temporary file behind
    store.put(&l, "manifest.json", b"second".to_vec()).await.unwrap();
    assert_eq!(store.get(&l, "manifest.json").await.unwrap(), b"second");
    let dir = tmp.path().join("mhsm-test-2025010112000000");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "state.bin"]);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("state.bin")), 0o600);
    assert_eq!(mode(&dir.join("manifest.json")), 0o600);
}

#[tokio::test]
async fn file_multi_segment_folder_and_url_forms() {
    // What the SDK sends for file:///base/c/folder: container file:///base, folder "c/folder".
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store();
    let base = tmp.path().to_str().unwrap();
    let l = BackupLocation {
        container_uri: format!("file://{base}"),
        sas_token: Some("ignored".into()),
        folder: "c/mhsm-x-1".into(),
    };
    store.put(&l, "state.bin", b"abc".to_vec()).await.unwrap();
    assert_eq!(std::fs::read(tmp.path().join("c/mhsm-x-1/state.bin")).unwrap(), b"abc");
    assert_eq!(mode(&tmp.path().join("c")), 0o700);
    // the same file through the natural split, a trailing slash, and file://localhost
    for (container, folder) in [
        (format!("file://{base}/c"), "mhsm-x-1"),
        (format!("file://{base}/c/"), "mhsm-x-1/"),
        (format!("file://localhost{base}/c/mhsm-x-1"), ""),
    ] {
        let l = BackupLocation {
            container_uri: container.clone(),
            sas_token: None,
            folder: folder.into(),
        };
        assert_eq!(
            store.get(&l, "state.bin").await.unwrap(),
            b"abc",
            "{container} + {folder}"
        );
    }
}

#[tokio::test]
async fn file_traversal_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let inner = tmp.path().join("container");
    std::fs::create_dir(&inner).unwrap();
    let store = open_store();
    for (folder, name) in [
        ("..", "state.bin"),
        ("../escape", "state.bin"),
        ("a/../../escape", "state.bin"),
        ("/etc", "state.bin"),
        ("a//b", "state.bin"),
        ("./a", "state.bin"),
        ("a\\..\\b", "state.bin"),
        ("ok", ".."),
        ("ok", "../state.bin"),
        ("ok", "/etc/passwd"),
        ("ok", ""),
        ("ok", "a\nb"),
    ] {
        let l = loc(&inner, folder);
        let put = store.put(&l, name, b"x".to_vec()).await;
        assert!(
            matches!(put, Err(Error::BadParameter(_))),
            "put {folder:?}/{name:?}: {put:?}"
        );
        let got = store.get(&l, name).await;
        assert!(
            matches!(got, Err(Error::BadParameter(_))),
            "get {folder:?}/{name:?}: {got:?}"
        );
    }
    // nothing was written outside (or inside) the container
    let mut all = Vec::new();
    for e in std::fs::read_dir(tmp.path()).unwrap() {
        all.push(e.unwrap().file_name());
    }
    assert_eq!(all, ["container"]);
    assert_eq!(std::fs::read_dir(&inner).unwrap().count(), 0);
}

#[tokio::test]
async fn file_missing_is_backup_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store();
    for l in [
        loc(tmp.path(), "no-such-folder"),
        loc(&tmp.path().join("no-such-dir"), "f"),
    ] {
        match store.get(&l, "manifest.json").await {
            Err(Error::NotFound { code, message }) => {
                assert_eq!(code, "BackupNotFound");
                assert!(message.contains("manifest.json"), "{message}");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    // a folder that exists but lacks the file
    let l = loc(tmp.path(), "f");
    store.put(&l, "manifest.json", b"m".to_vec()).await.unwrap();
    assert!(matches!(
        store.get(&l, "state.bin").await,
        Err(Error::NotFound {
            code: "BackupNotFound",
            ..
        })
    ));
}

#[tokio::test]
async fn file_unwritable_directory_is_bad_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let store = open_store();
    let l = BackupLocation {
        container_uri: format!("file://{}", file.display()),
        sas_token: None,
        folder: "f".into(),
    };
    let r = store.put(&l, "state.bin", b"x".to_vec()).await;
    assert!(matches!(r, Err(Error::BadParameter(_))), "{r:?}");
}

#[test]
fn blob_urls() {
    let l = BackupLocation {
        container_uri: "http://127.0.0.1:10000/devstoreaccount1".into(),
        sas_token: Some("?sv=2021-08-06&sig=a%2Bb".into()),
        folder: "mhsm-backups/mhsm-x-2025".into(),
    };
    let Target::Blob { url, place } = target(&test_policy(), &l, "state.bin").unwrap() else {
        panic!("not a blob target");
    };
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:10000/devstoreaccount1/mhsm-backups/mhsm-x-2025/state.bin?sv=2021-08-06&sig=a%2Bb"
    );
    assert_eq!(
        place,
        "http://127.0.0.1:10000/devstoreaccount1/mhsm-backups/mhsm-x-2025/state.bin"
    );
    // SAS left on the container URL; trailing slash; odd characters are escaped
    let l = BackupLocation {
        container_uri: "https://acct.blob.core.windows.net/c/?sv=1&sig=x".into(),
        sas_token: None,
        folder: "a b%2e#?".into(),
    };
    let Target::Blob { url, place } = target(&test_policy(), &l, "m.json").unwrap() else {
        panic!("not a blob target");
    };
    assert_eq!(
        url.as_str(),
        "https://acct.blob.core.windows.net/c/a%20b%252e%23%3F/m.json?sv=1&sig=x"
    );
    assert!(!place.contains("sig"), "{place}");
}

#[tokio::test]
async fn plain_http_only_to_loopback_and_bad_schemes() {
    let store = open_store();
    for uri in [
        "http://acct.blob.core.windows.net/c",
        "http://10.0.0.1:10000/devstoreaccount1",
        "http://127.0.0.1.example.com/c",
        "ftp://127.0.0.1/c",
        "not a url",
        "file://otherhost/dir",
    ] {
        let l = BackupLocation {
            container_uri: uri.into(),
            sas_token: Some("sig=secret".into()),
            folder: "f".into(),
        };
        match store.put(&l, "state.bin", b"x".to_vec()).await {
            Err(Error::BadParameter(m)) => assert!(!m.contains("secret"), "{m}"),
            other => panic!("{uri}: expected BadParameter, got {other:?}"),
        }
    }
    for uri in [
        "http://127.0.0.1:1/c",
        "http://localhost:1/c",
        "http://[::1]:1/c",
        "http://127.9.8.7:1/c",
    ] {
        let l = BackupLocation {
            container_uri: uri.into(),
            sas_token: Some("sig=secret".into()),
            folder: "f".into(),
        };
        assert!(
            matches!(target(&test_policy(), &l, "n"), Ok(Target::Blob { .. })),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn unreachable_storage_is_one_generic_error_without_the_token() {
    // a loopback port nobody listens on, and one whose listener closes every connection at once
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hangup = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hangup_port = hangup.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = hangup.accept().await {
            drop(conn);
        }
    });
    let store = BlobBackupStorage::new(policy_with(&[
        format!("http://127.0.0.1:{closed}/devstoreaccount1"),
        format!("http://127.0.0.1:{hangup_port}/devstoreaccount1"),
    ]))
    .unwrap();
    for port in [closed, hangup_port] {
        let l = BackupLocation {
            container_uri: format!("http://127.0.0.1:{port}/devstoreaccount1/c"),
            sas_token: Some("sv=2021&sig=TOPSECRET".into()),
            folder: "f".into(),
        };
        for r in [
            store.put(&l, "state.bin", b"x".to_vec()).await.map(|()| Vec::new()),
            store.get(&l, "state.bin").await,
        ] {
            match r {
                Err(Error::BadParameter(m)) => assert_eq!(m, UNREACHABLE, "port {port}"),
                other => panic!("expected BadParameter, got {other:?}"),
            }
        }
    }
}

#[test]
fn prepare_moves_the_sas_token_out_of_the_url_and_checks_the_destination() {
    let store = open_store();
    let p = store
        .prepare(BackupLocation {
            container_uri: "https://acct.blob.core.windows.net/c?sv=1&sig=TOPSECRET#frag".into(),
            sas_token: None,
            folder: String::new(),
        })
        .unwrap();
    assert_eq!(p.container_uri, "https://acct.blob.core.windows.net/c");
    assert_eq!(p.sas_token.as_deref(), Some("sv=1&sig=TOPSECRET"));
    // an explicit token wins; the URL's query is dropped anyway
    let p = store
        .prepare(BackupLocation {
            container_uri: "https://acct.blob.core.windows.net/c?sig=OTHER".into(),
            sas_token: Some("?sig=EXPLICIT".into()),
            folder: "f".into(),
        })
        .unwrap();
    assert_eq!(p.container_uri, "https://acct.blob.core.windows.net/c");
    assert_eq!(p.sas_token.as_deref(), Some("sig=EXPLICIT"));
    for uri in [
        "https://evil.example/c?sig=TOPSECRET",
        "https://169.254.169.254/c",
        "http://127.0.0.1:10001/devstoreaccount1",
        "file:///etc",
    ] {
        match store.prepare(BackupLocation {
            container_uri: uri.into(),
            sas_token: None,
            folder: "f".into(),
        }) {
            Err(Error::BadParameter(m)) => assert!(!m.contains("TOPSECRET") && m.contains("allowed"), "{uri}: {m}"),
            other => panic!("{uri}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn symbolic_links_cannot_lead_out_of_the_file_roots() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("state.bin"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
    std::fs::create_dir(root.path().join("in")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("state.bin"), root.path().join("in/state.bin")).unwrap();
    let store = BlobBackupStorage::new(OutboundPolicy::new(&[], &[root.path().to_path_buf()], &[]).unwrap()).unwrap();
    let through_link = loc(root.path(), "link");
    assert!(matches!(
        store.put(&through_link, "x.bin", b"x".to_vec()).await,
        Err(Error::BadParameter(_))
    ));
    assert!(matches!(
        store.get(&through_link, "state.bin").await,
        Err(Error::BadParameter(_))
    ));
    let linked_file = loc(root.path(), "in");
    assert!(store.get(&linked_file, "state.bin").await.is_err());
    assert!(!outside.path().join("x.bin").exists());
    // a directory next to the root is not inside it
    let l = loc(outside.path(), "f");
    assert!(matches!(
        store.put(&l, "x.bin", b"x".to_vec()).await,
        Err(Error::BadParameter(_))
    ));
}
