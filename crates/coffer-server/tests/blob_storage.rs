//! `BlobBackupStorage` against Azurite, the Azure Storage emulator (scripts/azurite, started by scripts/test).
//!
//! Needs `COFFER_AZURITE_URL` (e.g. `http://127.0.0.1:10000/devstoreaccount1`) and optionally `COFFER_AZURITE_KEY`
//! (default: Azurite's well-known devstoreaccount1 key). Without them every test fails, unless
//! `COFFER_SKIP_AZURITE=1` says to skip them.
//!
//! The tests sign their own account SAS tokens (HMAC-SHA256 with the account key), as the Azure portal or
//! `az storage container generate-sas` would, and give the adapter only the SAS.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions may panic"
)]
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_core::Error;
use coffer_core::backup_storage::{BackupLocation, BackupStorage};
use coffer_crypto::secret::SecretBytes;
use coffer_server::backup_storage::{BLOCK_SIZE, BlobBackupStorage, SINGLE_PUT_MAX};

const WELL_KNOWN_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const SAS_VERSION: &str = "2021-08-06";

struct Azurite {
    /// `http://127.0.0.1:PORT/devstoreaccount1`
    account_url: String,
    account: String,
    key: Vec<u8>,
}

/// The Azurite under test, or None when COFFER_SKIP_AZURITE=1. Panics (fails the test) when it is not configured.
fn azurite() -> Option<Azurite> {
    let Ok(url) = std::env::var("COFFER_AZURITE_URL") else {
        if std::env::var("COFFER_SKIP_AZURITE").as_deref() == Ok("1") {
            eprintln!("COFFER_SKIP_AZURITE=1: skipping the Azurite test");
            return None;
        }
        panic!(
            "COFFER_AZURITE_URL is not set: run the tests through ./scripts/test (it starts Azurite), or start \
             it with `scripts/azurite start` and `eval \"$(scripts/azurite env)\"`; set COFFER_SKIP_AZURITE=1 to \
             skip the Azure Blob Storage tests knowingly"
        );
    };
    let account_url = url.trim_end_matches('/').to_string();
    let account = account_url
        .rsplit('/')
        .next()
        .filter(|a| !a.is_empty() && !a.contains(':'))
        .expect("COFFER_AZURITE_URL must end with the account name (…/devstoreaccount1)")
        .to_string();
    let key = std::env::var("COFFER_AZURITE_KEY").unwrap_or_else(|_| WELL_KNOWN_KEY.to_string());
    let key = STANDARD.decode(key.trim()).expect("COFFER_AZURITE_KEY is base64");
    Some(Azurite {
        account_url,
        account,
        key,
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Azurite {
    /// An account SAS (blob service; service, container and object; read/write/delete/list/add/create).
    fn account_sas(&self, permissions: &str, expiry: &str) -> String {
        // Account SAS string-to-sign for versions 2020-12-06 and later (with the encryption-scope line).
        let string_to_sign = format!(
            "{}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{SAS_VERSION}\n\n",
            self.account
        );
        let sig = coffer_crypto::hash::hmac_sha256(&SecretBytes::new(self.key.clone()), string_to_sign.as_bytes());
        format!(
            "sv={SAS_VERSION}&ss=b&srt=sco&sp={permissions}&se={}&spr={}&sig={}",
            enc(expiry),
            enc("https,http"),
            enc(&STANDARD.encode(sig))
        )
    }

    fn sas(&self) -> String {
        self.account_sas("rwdlac", "2099-01-01T00:00:00Z")
    }

    /// Creates a container named uniquely for this test; returns its URL.
    async fn container(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{name}", self.account_url);
        let resp = reqwest::Client::new()
            .put(format!("{url}?restype=container&{}", self.sas()))
            .header("x-ms-version", SAS_VERSION)
            .header("content-length", "0")
            .send()
            .await
            .expect("Azurite is reachable");
        assert_eq!(
            resp.status().as_u16(),
            201,
            "creating container {name}: {}",
            resp.text().await.unwrap_or_default()
        );
        url
    }

    async fn committed_blocks(&self, blob_url: &str) -> usize {
        let resp = reqwest::Client::new()
            .get(format!(
                "{blob_url}?comp=blocklist&blocklisttype=committed&{}",
                self.sas()
            ))
            .header("x-ms-version", SAS_VERSION)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.unwrap();
        text.matches("<Block>").count()
    }
}

fn location(container_uri: &str, sas: Option<String>, folder: &str) -> BackupLocation {
    BackupLocation {
        container_uri: container_uri.to_string(),
        sas_token: sas,
        folder: folder.to_string(),
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    // xorshift64*: cheap, not compressible, different per seed
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn round_trip_through_a_sas_token() {
    let Some(az) = azurite() else { return };
    let container = az.container("rt").await;
    let store = BlobBackupStorage::new(coffer_testkit::test_backup_config().policy().unwrap()).unwrap();
    let folder = "mhsm-coffer-2025010112000000";
    let loc = location(&container, Some(az.sas()), folder);
    let manifest = br#"{"format":1,"keys":3}"#.to_vec();
    let state = pattern(3 * 1024 * 1024 + 17, 1);
    store.put(&loc, "manifest.json", manifest.clone()).await.unwrap();
    store.put(&loc, "state.bin", state.clone()).await.unwrap();
    assert_eq!(store.get(&loc, "manifest.json").await.unwrap(), manifest);
    assert_eq!(store.get(&loc, "state.bin").await.unwrap(), state);

    // Replacing a blob.
    store.put(&loc, "manifest.json", b"v2".to_vec()).await.unwrap();
    assert_eq!(store.get(&loc, "manifest.json").await.unwrap(), b"v2");

    // An empty file.
    store.put(&loc, "empty", Vec::new()).await.unwrap();
    assert_eq!(store.get(&loc, "empty").await.unwrap(), Vec::<u8>::new());

    // The blob is where Azure tools would look for it: {container}/{folder}/{name}.
    let direct = reqwest::Client::new()
        .get(format!("{container}/{folder}/state.bin?{}", az.sas()))
        .header("x-ms-version", SAS_VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 200);
    assert_eq!(
        direct.headers().get("x-ms-blob-type").unwrap().to_str().unwrap(),
        "BlockBlob"
    );
    assert_eq!(direct.bytes().await.unwrap().as_ref(), state.as_slice());

    // The split the SDK makes of a path-style folder URL (sdk-requirements §4.2): container = the account URL,
    // folder = "<container>/<folder>". A SAS given with its leading '?' works too.
    let container_name = container.rsplit('/').next().unwrap();
    let sdk_split = location(
        &az.account_url,
        Some(format!("?{}", az.sas())),
        &format!("{container_name}/{folder}"),
    );
    assert_eq!(store.get(&sdk_split, "state.bin").await.unwrap(), state);
    // A SAS left on the container URL itself.
    let on_url = location(&format!("{container}?{}", az.sas()), None, folder);
    assert_eq!(store.get(&on_url, "manifest.json").await.unwrap(), b"v2");
}

#[tokio::test]
async fn wrong_or_expired_sas_is_refused() {
    let Some(az) = azurite() else { return };
    let container = az.container("sas").await;
    let store = BlobBackupStorage::new(coffer_testkit::test_backup_config().policy().unwrap()).unwrap();
    let good = location(&container, Some(az.sas()), "f");
    store.put(&good, "state.bin", b"data".to_vec()).await.unwrap();

    // A token signed with another key, an expired one, a read-only one used to write, and none at all.
    let other = Azurite {
        account_url: az.account_url.clone(),
        account: az.account.clone(),
        key: vec![7u8; 64],
    };
    let forged = other.sas();
    let expired = az.account_sas("rwdlac", "2020-01-01T00:00:00Z");
    let read_only = az.account_sas("rl", "2099-01-01T00:00:00Z");
    for (why, sas) in [("forged", forged.clone()), ("expired", expired.clone())] {
        let loc = location(&container, Some(sas.clone()), "f");
        for result in [
            store.get(&loc, "state.bin").await.map(|_| ()),
            store.put(&loc, "state.bin", b"evil".to_vec()).await,
        ] {
            match result {
                Err(Error::BadParameter(m)) => {
                    assert!(m.starts_with("the storage account refused the SAS token"), "{why}: {m}");
                    let sig = sas.split("sig=").nth(1).unwrap();
                    assert!(!m.contains(sig), "{why}: the signature leaked into the message: {m}");
                    assert!(!m.contains("sig="), "{why}: the SAS leaked into the message: {m}");
                }
                other => panic!("{why}: expected BadParameter, got {other:?}"),
            }
        }
    }
    let ro = location(&container, Some(read_only.clone()), "f");
    assert_eq!(store.get(&ro, "state.bin").await.unwrap(), b"data");
    match store.put(&ro, "state.bin", b"evil".to_vec()).await {
        Err(Error::BadParameter(m)) => assert!(m.starts_with("the storage account refused the SAS token"), "{m}"),
        other => panic!("read-only SAS: expected BadParameter, got {other:?}"),
    }
    match store.get(&location(&container, None, "f"), "state.bin").await {
        Err(Error::BadParameter(_)) => {}
        other => panic!("no SAS: expected BadParameter, got {other:?}"),
    }
    // None of that changed the blob.
    assert_eq!(store.get(&good, "state.bin").await.unwrap(), b"data");
}

#[tokio::test]
async fn missing_blob_folder_or_container_is_not_found() {
    let Some(az) = azurite() else { return };
    let container = az.container("nf").await;
    let store = BlobBackupStorage::new(coffer_testkit::test_backup_config().policy().unwrap()).unwrap();
    let sas = Some(az.sas());
    store
        .put(
            &location(&container, sas.clone(), "present"),
            "manifest.json",
            b"m".to_vec(),
        )
        .await
        .unwrap();
    for (uri, folder, name) in [
        (container.clone(), "present", "state.bin"),
        (container.clone(), "absent", "manifest.json"),
        (format!("{}/no-such-container", az.account_url), "f", "manifest.json"),
    ] {
        match store.get(&location(&uri, sas.clone(), folder), name).await {
            Err(Error::NotFound { code, message }) => {
                assert_eq!(code, "BackupNotFound");
                assert!(message.contains(name), "{message}");
                assert!(!message.contains("sig="), "{message}");
            }
            other => panic!("{uri}/{folder}/{name}: expected NotFound, got {other:?}"),
        }
    }
    // Writing into a container that does not exist is the caller's mistake, with a clear message.
    match store
        .put(
            &location(&format!("{}/no-such-container", az.account_url), sas.clone(), "f"),
            "state.bin",
            b"x".to_vec(),
        )
        .await
    {
        Err(Error::BadParameter(m)) => assert!(m.contains("does not exist"), "{m}"),
        other => panic!("put into a missing container: expected BadParameter, got {other:?}"),
    }
}

#[tokio::test]
async fn over_64_mib_goes_up_in_8_mib_blocks() {
    let Some(az) = azurite() else { return };
    let container = az.container("big").await;
    let store = BlobBackupStorage::new(coffer_testkit::test_backup_config().policy().unwrap()).unwrap();
    let loc = location(&container, Some(az.sas()), "mhsm-coffer-big");
    let size = SINGLE_PUT_MAX + 3 * 1024 * 1024 + 5; // 67 MiB and a bit: 9 blocks, the last one short
    let data = pattern(size, 42);
    let started = Instant::now();
    store.put(&loc, "state.bin", data.clone()).await.unwrap();
    let put_time = started.elapsed();
    let got = store.get(&loc, "state.bin").await.unwrap();
    let total = started.elapsed();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the downloaded blob differs from the uploaded data");
    assert_eq!(
        az.committed_blocks(&format!("{container}/mhsm-coffer-big/state.bin"))
            .await,
        size.div_ceil(BLOCK_SIZE),
        "a payload over 64 MiB is uploaded as 8 MiB blocks"
    );
    eprintln!("67 MiB: put {put_time:?}, put+get {total:?}");
    assert!(total < Duration::from_secs(60), "67 MiB round trip took {total:?}");

    // The block path with small limits: an odd block size, and replacing a block blob by a single Put Blob.
    let small = store.clone().with_upload_limits(1000, 333);
    let odd = pattern(2500, 9);
    small.put(&loc, "odd.bin", odd.clone()).await.unwrap();
    assert_eq!(store.get(&loc, "odd.bin").await.unwrap(), odd);
    assert_eq!(
        az.committed_blocks(&format!("{container}/mhsm-coffer-big/odd.bin"))
            .await,
        8
    );
    small.put(&loc, "odd.bin", odd[..999].to_vec()).await.unwrap();
    assert_eq!(store.get(&loc, "odd.bin").await.unwrap(), odd[..999].to_vec());
}
