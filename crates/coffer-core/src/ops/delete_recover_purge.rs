//! Soft-delete, deleted-key reads, recover and purge. Deleting a key deletes all its versions; it stays
//! recoverable for the instance's retention period, and its name cannot be reused until it is recovered or purged.
//! Under purge protection a purge is refused.
use crate::key::{DeletedKey, Deletion, KeyName, KeyVersionRecord};
use crate::ops::read::{Page, page_size, trim_page};
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

fn deleted_not_found(name: &str) -> Error {
    Error::KeyNotFound(format!("Deleted Key not found: {name}"))
}

impl Hsm {
    /// DeleteKey (soft).
    pub async fn delete_key(&self, caller: &Principal, name: &str) -> Result<DeletedKey, Error> {
        let key_name = KeyName::parse(name).map_err(|_| crate::ops::read::not_found(name))?;
        self.authorize(caller, DataAction::KeysDelete, &Scope::Key(key_name.to_string()))
            .await?;
        let now = self.clock.now();
        let deletion = Deletion {
            deleted_date: now,
            scheduled_purge_date: now + self.retention_days() * 86_400,
        };
        let latest = self
            .store
            .soft_delete(&key_name, deletion)
            .await?
            .ok_or_else(|| crate::ops::read::not_found(name))?;
        self.cache.invalidate(key_name.as_str());
        tracing::info!(key = %key_name, "key soft-deleted");
        Ok(DeletedKey { latest, deletion })
    }

    /// GetDeletedKey.
    pub async fn get_deleted_key(&self, caller: &Principal, name: &str) -> Result<DeletedKey, Error> {
        let key_name = KeyName::parse(name).map_err(|_| deleted_not_found(name))?;
        self.authorize(caller, DataAction::KeysDeletedRead, &Scope::Key(key_name.to_string()))
            .await?;
        self.store
            .deleted_key(&key_name)
            .await?
            .ok_or_else(|| deleted_not_found(name))
    }

    /// GetDeletedKeys.
    pub async fn list_deleted_keys(
        &self,
        caller: &Principal,
        marker: Option<&str>,
        maxresults: Option<i64>,
    ) -> Result<Page<DeletedKey>, Error> {
        self.authorize(caller, DataAction::KeysDeletedRead, &Scope::Keys)
            .await?;
        let limit = page_size(maxresults)?;
        let mut items = self.store.list_deleted(marker, limit + 1).await?;
        let next_marker = trim_page(&mut items, limit, |d| d.latest.name.to_string());
        Ok(Page { items, next_marker })
    }

    /// RecoverDeletedKey.
    pub async fn recover_key(&self, caller: &Principal, name: &str) -> Result<KeyVersionRecord, Error> {
        let key_name = KeyName::parse(name).map_err(|_| deleted_not_found(name))?;
        self.authorize(
            caller,
            DataAction::KeysDeletedRecover,
            &Scope::Key(key_name.to_string()),
        )
        .await?;
        let rec = self
            .store
            .recover(&key_name)
            .await?
            .ok_or_else(|| deleted_not_found(name))?;
        tracing::info!(key = %key_name, "deleted key recovered");
        Ok(rec)
    }

    /// PurgeDeletedKey.
    pub async fn purge_key(&self, caller: &Principal, name: &str) -> Result<(), Error> {
        let key_name = KeyName::parse(name).map_err(|_| deleted_not_found(name))?;
        self.authorize(caller, DataAction::KeysDeletedDelete, &Scope::Key(key_name.to_string()))
            .await?;
        if self.purge_protection() {
            return Err(Error::Forbidden(format!(
                "Operation 'purge' is not allowed on key '{name}' because purge protection is enabled for this HSM."
            )));
        }
        if !self.store.purge(&key_name).await? {
            return Err(deleted_not_found(name));
        }
        self.cache.invalidate(key_name.as_str());
        tracing::info!(key = %key_name, "deleted key purged");
        Ok(())
    }
}
