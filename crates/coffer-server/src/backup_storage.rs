//! The backup storage adapter: writes and reads full-backup files (`{container}/{folder}/{name}`) in
//!
//! - an Azure Blob Storage container addressed by its URL and a SAS token (`https://acct.blob.core.windows.net/c`,
//!   or the path-style `http://127.0.0.1:10000/devstoreaccount1/c` of Azurite: plain `http` only to a loopback
//!   host), through the Blob REST API: Put Blob, or Put Block + Put Block List above 64 MiB, and Get Blob;
//! - a local directory (`file:///var/backups/coffer`): directories 0700, files 0600 written atomically (temporary
//!   file, fsync, rename, fsync of the directory).
//!
//! The SAS token is a bearer secret: it is never logged and never appears in an error message (reqwest errors are
//! stripped of their URL).
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_core::Error;
use coffer_core::backup_storage::{BackupLocation, BackupStorage};
use reqwest::StatusCode;
use url::Url;

/// The Blob service REST API version sent with every request.
pub const BLOB_API_VERSION: &str = "2021-08-06";
/// Above this size a file is uploaded in blocks (Put Block + Put Block List) instead of one Put Blob.
pub const SINGLE_PUT_MAX: usize = 64 * 1024 * 1024;
/// The size of one block of a block upload.
pub const BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// How many blocks are in flight at once during a block upload.
const PARALLEL_BLOCKS: usize = 4;
/// Attempts for a request the service answered 408/429/500/502/503/504.
const ATTEMPTS: u32 = 3;

/// Writes and reads backup files in Azure Blob Storage (SAS) or in a local directory (`file://`).
#[derive(Debug, Clone)]
pub struct BlobBackupStorage {
    client: reqwest::Client,
    single_put_max: usize,
    block_size: usize,
}

fn bad(message: impl Into<String>) -> Error {
    Error::BadParameter(message.into())
}

/// A reqwest error as text without the URL (which carries the SAS token), with its causes.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Checks one path segment of a folder or file name: no traversal, nothing a file system or URL would
/// reinterpret.
fn check_segment(segment: &str, what: &str) -> Result<(), Error> {
    if segment.is_empty() {
        return Err(bad(format!("the backup {what} has an empty path segment")));
    }
    if segment == "." || segment == ".." {
        return Err(bad(format!("the backup {what} must not contain '.' or '..' segments")));
    }
    if segment.contains('\\') || segment.chars().any(char::is_control) {
        return Err(bad(format!(
            "the backup {what} must not contain backslashes or control characters"
        )));
    }
    Ok(())
}

/// The path segments of `folder` followed by `name`, validated.
fn segments<'a>(folder: &'a str, name: &'a str) -> Result<Vec<&'a str>, Error> {
    if folder.starts_with('/') {
        return Err(bad("the backup folder must be a relative path"));
    }
    let mut out = Vec::new();
    // A trailing '/' (as in `mhsm-x-2025/`) is harmless; an empty folder means the container itself.
    let folder = folder.strip_suffix('/').unwrap_or(folder);
    if !folder.is_empty() {
        for s in folder.split('/') {
            check_segment(s, "folder")?;
            out.push(s);
        }
    }
    if name.contains('/') {
        return Err(bad("the backup file name must be a single path segment"));
    }
    check_segment(name, "file name")?;
    out.push(name);
    Ok(out)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// Where a file lives.
enum Target {
    File(PathBuf),
    /// The blob URL with the SAS token as its query, and the same URL without the query (for messages).
    Blob {
        url: Url,
        place: String,
    },
}

fn parse_container(uri: &str) -> Result<Url, Error> {
    Url::parse(uri.trim()).map_err(|e| bad(format!("the storage URL is not a valid URL: {e}")))
}

fn target(location: &BackupLocation, name: &str) -> Result<Target, Error> {
    let container = parse_container(&location.container_uri)?;
    let segs = segments(&location.folder, name)?;
    match container.scheme() {
        "file" => {
            if container.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                return Err(bad("a file:// storage URL must name a local directory (file:///path)"));
            }
            let dir = container
                .to_file_path()
                .map_err(|()| bad("the file:// storage URL is not an absolute local path"))?;
            for c in dir.components() {
                if matches!(c, std::path::Component::ParentDir) {
                    return Err(bad("the file:// storage URL must not contain '..'"));
                }
            }
            let mut path = dir;
            for s in segs {
                path.push(s);
            }
            Ok(Target::File(path))
        }
        "https" | "http" => {
            if container.scheme() == "http" && !is_loopback(&container) {
                return Err(bad(
                    "plain http is refused for backup storage (the SAS token would travel in clear): use https",
                ));
            }
            if container.cannot_be_a_base() || container.host().is_none() {
                return Err(bad(
                    "the storage URL must be a container URL (https://account.blob.core.windows.net/container)",
                ));
            }
            if !container.username().is_empty() || container.password().is_some() {
                return Err(bad("the storage URL must not carry user information"));
            }
            // The SAS token: the explicit one, else a query string left on the container URL.
            let sas = match (&location.sas_token, container.query()) {
                (Some(t), _) if !t.trim().is_empty() => Some(t.trim().trim_start_matches('?').to_string()),
                (_, Some(q)) if !q.is_empty() => Some(q.to_string()),
                _ => None,
            };
            let mut url = container;
            url.set_query(None);
            url.set_fragment(None);
            {
                let mut path = url
                    .path_segments_mut()
                    .map_err(|()| bad("the storage URL cannot hold a path"))?;
                path.pop_if_empty();
                for s in segs {
                    path.push(s);
                }
            }
            let place = url.to_string();
            url.set_query(sas.as_deref());
            Ok(Target::Blob { url, place })
        }
        other => Err(bad(format!(
            "unsupported storage URL scheme '{other}': use an https:// blob container URL or a file:// directory"
        ))),
    }
}

impl BlobBackupStorage {
    /// An adapter with the production limits (Put Blob up to 64 MiB, 8 MiB blocks above).
    pub fn new() -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            // A redirect could carry the SAS token to another host, or to plain http.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Storage(format!("building the storage HTTP client: {}", describe(e)).into()))?;
        Ok(Self {
            client,
            single_put_max: SINGLE_PUT_MAX,
            block_size: BLOCK_SIZE,
        })
    }

    /// The same adapter with other upload limits (tests use small ones to exercise block uploads cheaply).
    pub fn with_upload_limits(mut self, single_put_max: usize, block_size: usize) -> Self {
        self.single_put_max = single_put_max;
        self.block_size = block_size.max(1);
        self
    }

    /// Time allowed for one request carrying `bytes` of body: 30 s plus 2 s per MiB.
    fn timeout_for(bytes: usize) -> Duration {
        let mib = u64::try_from(bytes / (1024 * 1024)).unwrap_or(u64::MAX);
        Duration::from_secs(30u64.saturating_add(mib.saturating_mul(2)))
    }

    /// Sends a request (built anew for each attempt), retrying on throttling and server errors.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder, place: &str) -> Result<reqwest::Response, Error> {
        let mut attempt = 1;
        loop {
            let resp = build().send().await.map_err(|e| unreachable_error(place, e))?;
            let status = resp.status();
            let transient = matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504);
            if !transient || attempt >= ATTEMPTS {
                return Ok(resp);
            }
            tracing::debug!(%status, url = %place, attempt, "storage answered a transient error; retrying");
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            attempt += 1;
        }
    }

    async fn put_blob(&self, url: &Url, place: &str, data: Vec<u8>) -> Result<(), Error> {
        if data.len() <= self.single_put_max {
            let timeout = Self::timeout_for(data.len());
            let body = bytes_body(data);
            let resp = self
                .send(
                    || {
                        self.client
                            .put(url.clone())
                            .header("x-ms-version", BLOB_API_VERSION)
                            .header("x-ms-blob-type", "BlockBlob")
                            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                            .header(reqwest::header::CONTENT_LENGTH, body.len())
                            .timeout(timeout)
                            .body(body.clone())
                    },
                    place,
                )
                .await?;
            return check_put(resp, place).await;
        }

        // Block upload: blocks of `block_size`, a few in flight, then the block list in order.
        let data = bytes_body(data);
        let count = data.len().div_ceil(self.block_size);
        // Block ids: equal length before encoding (a requirement of the service), base64.
        let ids: Vec<String> = (0..count)
            .map(|i| STANDARD.encode(format!("coffer-block-{i:08}")))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = 0usize;
        let mut failure: Option<Error> = None;
        loop {
            while failure.is_none() && next < count && tasks.len() < PARALLEL_BLOCKS {
                let start = next * self.block_size;
                let end = (start + self.block_size).min(data.len());
                let block = data.slice(start..end);
                let mut block_url = url.clone();
                block_url
                    .query_pairs_mut()
                    .append_pair("comp", "block")
                    .append_pair("blockid", &ids[next]);
                let this = self.clone();
                let place = place.to_string();
                tasks.spawn(async move {
                    let timeout = Self::timeout_for(block.len());
                    let resp = this
                        .send(
                            || {
                                this.client
                                    .put(block_url.clone())
                                    .header("x-ms-version", BLOB_API_VERSION)
                                    .header(reqwest::header::CONTENT_LENGTH, block.len())
                                    .timeout(timeout)
                                    .body(block.clone())
                            },
                            &place,
                        )
                        .await?;
                    check_put(resp, &place).await
                });
                next += 1;
            }
            match tasks.join_next().await {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    failure.get_or_insert(e);
                }
                Some(Err(join)) => {
                    failure.get_or_insert(Error::Storage(format!("block upload task: {join}").into()));
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in &ids {
            list.push_str("<Latest>");
            list.push_str(id);
            list.push_str("</Latest>");
        }
        list.push_str("</BlockList>");
        let mut list_url = url.clone();
        list_url.query_pairs_mut().append_pair("comp", "blocklist");
        let resp = self
            .send(
                || {
                    self.client
                        .put(list_url.clone())
                        .header("x-ms-version", BLOB_API_VERSION)
                        .header("x-ms-blob-content-type", "application/octet-stream")
                        .header(reqwest::header::CONTENT_TYPE, "application/xml")
                        .header(reqwest::header::CONTENT_LENGTH, list.len())
                        .timeout(Self::timeout_for(list.len()))
                        .body(list.clone())
                },
                place,
            )
            .await?;
        check_put(resp, place).await
    }

    async fn get_blob(&self, url: &Url, place: &str) -> Result<Vec<u8>, Error> {
        let resp = self
            .send(
                || {
                    self.client
                        .get(url.clone())
                        .header("x-ms-version", BLOB_API_VERSION)
                        // the body may be large: the read timeout (per read) guards a stalled transfer
                        .timeout(Duration::from_secs(3600))
                },
                place,
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::OK {
            return resp
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| unreachable_error(place, e));
        }
        let code = error_code(&resp);
        Err(match status {
            StatusCode::NOT_FOUND => Error::NotFound {
                code: "BackupNotFound",
                message: format!("the backup file {place} does not exist ({code})"),
            },
            _ => status_error(status, &code, place),
        })
    }
}

/// A `Vec<u8>` as a cheaply clonable and sliceable request body (no copy).
fn bytes_body(data: Vec<u8>) -> Bytes {
    Bytes::from(data)
}

/// The `x-ms-error-code` of a failed response (or the status text).
fn error_code(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| resp.status().canonical_reason().unwrap_or("error").to_string())
}

fn status_error(status: StatusCode, code: &str, place: &str) -> Error {
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => bad(format!(
            "the storage account refused the SAS token (it is invalid, expired, or lacks the permission) for \
             {place}: {} {code}",
            status.as_u16()
        )),
        _ => bad(format!(
            "the storage service answered {} {code} for {place}",
            status.as_u16()
        )),
    }
}

async fn check_put(resp: reqwest::Response, place: &str) -> Result<(), Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let code = error_code(&resp);
    Err(match status {
        StatusCode::NOT_FOUND => bad(format!(
            "the storage container of {place} does not exist ({code}): create it first"
        )),
        _ => status_error(status, &code, place),
    })
}

fn unreachable_error(place: &str, e: reqwest::Error) -> Error {
    bad(format!("storage unreachable: {place}: {}", describe(e)))
}

// ------------------------------------------------------------------------------------------------- file://

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    bad(format!("{what} {}: {e}", path.display()))
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), Error> {
    let dir = path
        .parent()
        .ok_or_else(|| bad("the backup file has no parent directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("cannot create the backup directory", dir, &e))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("the backup file name is not valid"))?;
    let tmp = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error("cannot write the backup file", &tmp, &e))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error("cannot write the backup file", &tmp, &e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io_error("cannot write the backup file", path, &e))?;
        // The rename is durable once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("cannot sync the backup directory", dir, &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    match std::fs::read(path) {
        Ok(data) => Ok(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
            code: "BackupNotFound",
            message: format!("the backup file {} does not exist", path.display()),
        }),
        Err(e) => Err(io_error("cannot read the backup file", path, &e)),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("backup file task: {e}").into()))?
}

#[async_trait]
impl BackupStorage for BlobBackupStorage {
    async fn put(&self, location: &BackupLocation, name: &str, data: Vec<u8>) -> Result<(), Error> {
        match target(location, name)? {
            Target::File(path) => blocking(move || write_file(&path, &data)).await,
            Target::Blob { url, place } => {
                tracing::debug!(url = %place, bytes = data.len(), "writing backup blob");
                self.put_blob(&url, &place, data).await
            }
        }
    }

    async fn get(&self, location: &BackupLocation, name: &str) -> Result<Vec<u8>, Error> {
        match target(location, name)? {
            Target::File(path) => blocking(move || read_file(&path)).await,
            Target::Blob { url, place } => {
                tracing::debug!(url = %place, "reading backup blob");
                self.get_blob(&url, &place).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

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
        let store = BlobBackupStorage::new().unwrap();
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
        let store = BlobBackupStorage::new().unwrap();
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
        let store = BlobBackupStorage::new().unwrap();
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
        let store = BlobBackupStorage::new().unwrap();
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
        let store = BlobBackupStorage::new().unwrap();
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
        let Target::Blob { url, place } = target(&l, "state.bin").unwrap() else {
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
        let Target::Blob { url, place } = target(&l, "m.json").unwrap() else {
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
        let store = BlobBackupStorage::new().unwrap();
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
            assert!(matches!(target(&l, "n"), Ok(Target::Blob { .. })), "{uri}");
        }
    }

    #[tokio::test]
    async fn unreachable_storage_is_bad_parameter_without_the_token() {
        // a loopback port nobody listens on
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let store = BlobBackupStorage::new().unwrap();
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
                Err(Error::BadParameter(m)) => {
                    assert!(m.starts_with("storage unreachable: "), "{m}");
                    assert!(!m.contains("TOPSECRET"), "the SAS token leaked into {m}");
                }
                other => panic!("expected BadParameter, got {other:?}"),
            }
        }
    }
}
