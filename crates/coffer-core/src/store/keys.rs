//! Keys: versions, soft-delete, recovery, purge, rotation policies.
use async_trait::async_trait;

use super::NewVersionMode;
use crate::Error;
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};

/// Keys: versions, soft-delete, recovery, purge, rotation policies.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The rotation policy of a key (JSON text, created, updated), if one was set.
    async fn rotation_policy(&self, name: &KeyName) -> Result<Option<(String, i64, i64)>, Error>;
    /// Writes a key's rotation policy (the key must be live; returns false otherwise).
    async fn put_rotation_policy(&self, name: &KeyName, policy: &str, now: i64) -> Result<bool, Error>;
    /// Names of live keys that have a rotation policy, with the policy JSON.
    async fn rotation_policies(&self) -> Result<Vec<(KeyName, String)>, Error>;
    /// Names of soft-deleted keys whose scheduled purge date is at or before `now`.
    async fn purge_due(&self, now: i64) -> Result<Vec<KeyName>, Error>;
    /// Number of versions of a key.
    async fn version_count(&self, name: &KeyName) -> Result<i64, Error>;
    /// Keys that are not deleted, counted by storage tag of their current version (`RSA`, `EC`, `oct`).
    async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error>;
    /// Writes new versions of a key (one for create/import; all of them for restore), making the last the latest.
    /// Returns the key's stored name (names are case-insensitive; the first spelling is kept).
    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error>;
    /// A version of a live key (`None` = latest).
    async fn key_version(
        &self,
        name: &KeyName,
        version: Option<&KeyVersion>,
    ) -> Result<Option<KeyVersionRecord>, Error>;
    /// All versions of a live key, oldest first.
    async fn all_versions(&self, name: &KeyName) -> Result<Vec<KeyVersionRecord>, Error>;
    /// Latest versions of live keys with names greater than `after`, by name, at most `limit`.
    async fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyVersionRecord>, Error>;
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
    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error>;
    /// A soft-deleted key.
    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error>;
    /// Soft-deleted keys with names greater than `after`, at most `limit`.
    async fn list_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<DeletedKey>, Error>;
    /// Recovers a soft-deleted key. Returns its latest version, or `None` if it is not deleted.
    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error>;
    /// Permanently removes a soft-deleted key. Returns false if there was none.
    async fn purge(&self, name: &KeyName) -> Result<bool, Error>;
}
