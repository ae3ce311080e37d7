//! The port through which full backups are written and read: a container (Azure Blob Storage container URL with a
//! SAS token, or a `file://` directory) and a folder inside it. Implemented by the server (I/O), which enforces the
//! configured destinations (`crate::outbound`).
//!
//! The SAS token lives only in the memory of the running job: it is not stored, not returned in the job status and
//! not logged or audited. A job whose node dies is lost with it and must be started again.
use async_trait::async_trait;

use crate::Error;

/// Where a backup lives: `container_uri` (e.g. `https://acct.blob.core.windows.net/backups`,
/// `http://127.0.0.1:10000/devstoreaccount1/backups` for Azurite, or `file:///var/backups/coffer`), an optional
/// SAS token (without the leading `?`), and the folder inside the container (`mhsm-{name}-{timestamp}`, or for
/// restores whatever path the client gives, possibly with several segments).
#[derive(Clone)]
pub struct BackupLocation {
    pub container_uri: String,
    pub sas_token: Option<String>,
    pub folder: String,
}

impl std::fmt::Debug for BackupLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupLocation")
            .field("container_uri", &self.container_uri)
            .field("folder", &self.folder)
            .field("sas_token", &self.sas_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Reads and writes backup files (blobs).
#[async_trait]
pub trait BackupStorage: Send + Sync {
    /// Checks a caller's location before a job starts, without any I/O: the URL must be valid and an allowed
    /// destination (`crate::outbound`). Returns the location to use, with a SAS token given in the URL's query
    /// moved into `sas_token` and the query removed from `container_uri`, so that only a URL without the secret is
    /// ever kept, reported or logged.
    fn prepare(&self, location: BackupLocation) -> Result<BackupLocation, Error>;
    /// Writes `data` as `{container}/{folder}/{name}` (replacing it).
    async fn put(&self, location: &BackupLocation, name: &str, data: Vec<u8>) -> Result<(), Error>;
    /// Reads `{container}/{folder}/{name}`. A missing file is `Error::NotFound { code: "BackupNotFound", .. }`;
    /// an unreachable store, a refused SAS token, etc. are `Error::BadParameter` with a clear message.
    async fn get(&self, location: &BackupLocation, name: &str) -> Result<Vec<u8>, Error>;
}
