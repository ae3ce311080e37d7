//! The backup storage adapter: writes and reads full-backup files (`{container}/{folder}/{name}`) in
//!
//! - an Azure Blob Storage container addressed by its URL and a SAS token (`https://acct.blob.core.windows.net/c`,
//!   or the path-style `http://127.0.0.1:10000/devstoreaccount1/c` of Azurite: plain `http` only to a loopback
//!   host), through the Blob REST API: Put Blob, or Put Block + Put Block List above 64 MiB, and Get Blob;
//! - a local directory (`file:///var/backups/coffer`): directories 0700, files 0600 written atomically (temporary
//!   file, fsync, rename, fsync of the directory).
//!
//! Only configured destinations are used (`coffer_core::outbound`, `[backup]` in coffer.toml): blob endpoints, the
//! private networks blob hosts may resolve to (checked after resolution, `resolver.rs`), and `file://` roots
//! (checked again on the real path, so symbolic links cannot lead out). A target that cannot be reached gets one
//! generic message; the detail goes to the server log.
//!
//! The SAS token is a bearer secret: it is never logged and never appears in an error message (reqwest errors are
//! stripped of their URL).
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_core::Error;
use coffer_core::backup_storage::{BackupLocation, BackupStorage};
use coffer_core::outbound::{OutboundPolicy, UNREACHABLE};
use reqwest::StatusCode;
use url::Url;

mod resolver;
mod target;

use target::{Target, target};

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
    policy: Arc<OutboundPolicy>,
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

impl BlobBackupStorage {
    /// An adapter for the destinations `policy` allows, with the production limits (Put Blob up to 64 MiB, 8 MiB
    /// blocks above).
    pub fn new(policy: OutboundPolicy) -> Result<Self, Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            // A redirect could carry the SAS token to another host, or to plain http.
            .redirect(reqwest::redirect::Policy::none())
            // Connections go to the addresses the policy checked: no proxy (it would resolve the name itself), and
            // names resolved by the checking resolver.
            .no_proxy()
            .dns_resolver(Arc::new(resolver::CheckedResolver {
                policy: Arc::clone(&policy),
            }))
            .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Storage(format!("building the storage HTTP client: {}", describe(e)).into()))?;
        Ok(Self {
            client,
            policy,
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
            // A destination chosen by the caller could serve an endless body: read at most MAX_FILE_BYTES.
            if resp.content_length().is_some_and(|l| l > MAX_FILE_BYTES) {
                return Err(too_large(place));
            }
            let mut resp = resp;
            let mut data = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable_error(place, e))? {
                if (data.len() as u64).saturating_add(chunk.len() as u64) > MAX_FILE_BYTES {
                    return Err(too_large(place));
                }
                data.extend_from_slice(&chunk);
            }
            return Ok(data);
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

/// One answer for every way a target can be unreachable (refused, reset, timed out, unknown name, a name resolving
/// to an address that is not allowed): the caller learns nothing about the network. The detail is logged.
fn unreachable_error(place: &str, e: reqwest::Error) -> Error {
    tracing::warn!(url = %place, error = %describe(e), "backup storage unreachable");
    bad(UNREACHABLE)
}

// ------------------------------------------------------------------------------------------------- file://

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    bad(format!("{what} {}: {e}", path.display()))
}

/// Refuses `dir` unless its real path (symbolic links resolved; for a directory that does not exist yet, the real
/// path of its nearest existing ancestor) is inside one of the real paths of `roots`.
fn check_real_path(dir: &Path, roots: &[PathBuf]) -> Result<(), Error> {
    let mut existing = dir;
    let real = loop {
        match std::fs::canonicalize(existing) {
            Ok(p) => break p,
            Err(_) => existing = existing.parent().ok_or_else(|| bad(NOT_IN_ROOTS))?,
        }
    };
    let inside = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .any(|root| real.starts_with(root));
    if inside { Ok(()) } else { Err(bad(NOT_IN_ROOTS)) }
}

const NOT_IN_ROOTS: &str = "The file:// storage URL leads outside the directories configured for this HSM ([backup] \
                            file_roots).";

fn write_file(path: &Path, roots: &[PathBuf], data: &[u8]) -> Result<(), Error> {
    let dir = path
        .parent()
        .ok_or_else(|| bad("the backup file has no parent directory"))?;
    check_real_path(dir, roots)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error("cannot create the backup directory", dir, &e))?;
    check_real_path(dir, roots)?;
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

/// The largest backup file read back (a full backup's state of 100,000 keys is a few hundred MB).
const MAX_FILE_BYTES: u64 = 2 << 30;

fn too_large(place: &str) -> Error {
    tracing::warn!(place, "backup file larger than {MAX_FILE_BYTES} bytes refused");
    Error::BadParameter("The backup file is larger than a backup file may be.".into())
}

fn read_file(path: &Path, roots: &[PathBuf]) -> Result<Vec<u8>, Error> {
    if let Some(dir) = path.parent() {
        check_real_path(dir, roots)?;
    }
    // The file itself must not be a symbolic link (it could point anywhere), nor anything but a regular file (a
    // FIFO would block the job; O_NONBLOCK keeps the open from waiting for a writer), nor larger than we read.
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK)
                .bits()
                .cast_signed(),
        )
        .open(path)
        .and_then(|f| {
            let meta = f.metadata()?;
            if !meta.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            if meta.len() > MAX_FILE_BYTES {
                return Err(std::io::Error::other("larger than a backup file may be"));
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_FILE_BYTES), &mut data).map(|_| data)
        });
    match read {
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
    fn prepare(&self, location: BackupLocation) -> Result<BackupLocation, Error> {
        target::prepare(&self.policy, location)
    }

    async fn put(&self, location: &BackupLocation, name: &str, data: Vec<u8>) -> Result<(), Error> {
        match target(&self.policy, location, name)? {
            Target::File { path, roots } => blocking(move || write_file(&path, &roots, &data)).await,
            Target::Blob { url, place } => {
                tracing::debug!(url = %place, bytes = data.len(), "writing backup blob");
                self.put_blob(&url, &place, data).await
            }
        }
    }

    async fn get(&self, location: &BackupLocation, name: &str) -> Result<Vec<u8>, Error> {
        match target(&self.policy, location, name)? {
            Target::File { path, roots } => blocking(move || read_file(&path, &roots)).await,
            Target::Blob { url, place } => {
                tracing::debug!(url = %place, "reading backup blob");
                self.get_blob(&url, &place).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
