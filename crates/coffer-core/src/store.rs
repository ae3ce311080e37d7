//! The storage port. Each method is one transaction in the adapter: it either applies entirely or not at all.
//! Adapters (coffer-store) implement it for SQLite now and PostgreSQL later; core never sees SQL.
use async_trait::async_trait;

use crate::Error;
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};

/// The instance row, written once at creation.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub instance_name: String,
    pub tenant_id: String,
    pub created: i64,
    pub dev: bool,
    /// The domain secret sealed by the seal provider (AES-256-GCM under the seal key).
    pub sealed_domain_secret: Vec<u8>,
    /// The token-signing key (PKCS#8) sealed under a key derived from the domain secret.
    pub sealed_token_key: Vec<u8>,
    pub soft_delete_retention_days: i64,
    pub purge_protection: bool,
    /// Object id of the bootstrap administrator (the initial administrator until local RBAC lands).
    pub bootstrap_object_id: String,
}

/// A service principal of the built-in token service.
#[derive(Debug, Clone)]
pub struct PrincipalRecord {
    pub object_id: String,
    pub client_id: String,
    pub display_name: String,
    /// SHA-256 of each client secret (secrets are 256-bit random, so a fast hash is enough).
    pub secret_hashes: Vec<Vec<u8>>,
    /// DER of each registered certificate credential.
    pub certificates: Vec<Vec<u8>>,
    pub created: i64,
}

/// How a new key version is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewVersionMode {
    /// Create or import: a soft-deleted key of that name is a conflict; an existing key gets a new version.
    AddVersion,
    /// Restore from backup: any key of that name (live or deleted) is a conflict.
    RestoreWholeKey,
}

/// Storage of everything Coffer persists.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The instance row, if the instance exists.
    async fn instance(&self) -> Result<Option<InstanceRecord>, Error>;
    /// Creates the instance together with its bootstrap principal. Fails if an instance exists.
    async fn create_instance(
        &self,
        instance: &InstanceRecord,
        bootstrap: &PrincipalRecord,
    ) -> Result<(), Error>;

    /// Writes new versions of a key (one for create/import; all of them for restore), making the last the latest.
    /// Returns the key's stored name (names are case-insensitive; the first spelling is kept).
    async fn insert_versions(
        &self,
        versions: &[KeyVersionRecord],
        mode: NewVersionMode,
    ) -> Result<KeyName, Error>;
    /// A version of a live key (`None` = latest).
    async fn key_version(
        &self,
        name: &KeyName,
        version: Option<&KeyVersion>,
    ) -> Result<Option<KeyVersionRecord>, Error>;
    /// All versions of a live key, oldest first.
    async fn all_versions(&self, name: &KeyName) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Latest versions of live keys with names greater than `after`, by name, at most `limit`.
    async fn list_keys(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Versions of a live key with version ids greater than `after`, at most `limit`.
    async fn list_versions(
        &self,
        name: &KeyName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Replaces the mutable fields (key_ops, attributes, tags, release policy) of one version.
    async fn update_version(&self, record: &KeyVersionRecord) -> Result<(), Error>;
    /// Soft-deletes a live key (all versions). Returns the latest version, or `None` if there is no live key.
    async fn soft_delete(
        &self,
        name: &KeyName,
        deletion: Deletion,
    ) -> Result<Option<KeyVersionRecord>, Error>;
    /// A soft-deleted key.
    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error>;
    /// Soft-deleted keys with names greater than `after`, at most `limit`.
    async fn list_deleted(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeletedKey>, Error>;
    /// Recovers a soft-deleted key. Returns its latest version, or `None` if it is not deleted.
    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error>;
    /// Permanently removes a soft-deleted key. Returns false if there was none.
    async fn purge(&self, name: &KeyName) -> Result<bool, Error>;

    /// A principal by client id.
    async fn principal_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<PrincipalRecord>, Error>;
    /// Adds a certificate credential to a principal. Returns false if the principal does not exist.
    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error>;
}
