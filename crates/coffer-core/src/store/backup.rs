//! Full backup and restore: every aggregate at once.
use async_trait::async_trait;

use super::{KeyDump, RestoreSet};
use crate::Error;

/// Full backup and restore: every aggregate at once.
#[async_trait]
pub trait BackupStore: Send + Sync + 'static {
    /// Every key (live or soft-deleted) with all its versions (oldest first), deletion state and rotation policy
    /// (JSON, created, updated): the content of a full backup.
    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error>;
    /// Full restore, in one transaction: replaces every key (versions, deletion state, rotation policies) and every
    /// custom role with the given ones, upserts the settings, and adds the principals, groups and role assignments
    /// that do not exist yet (existing ones are kept, so the restoring administrator keeps access).
    ///
    /// A restore never erases: keys and versions the instance holds are kept (its own deletion state, attributes and
    /// latest version win), the backup's missing keys and versions are added, live keys the backup lacks are
    /// soft-deleted with `deletion_for_missing`; custom roles and policy assignments are added where missing;
    /// identities only when `identities` is set.
    async fn restore_full(&self, state: &RestoreSet) -> Result<(), Error>;
}
