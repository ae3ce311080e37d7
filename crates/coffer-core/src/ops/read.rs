//! Reads: get a version (latest when the version is empty), list keys, list versions. Lists page by name (or
//! version id) with an opaque continuation marker that the server puts into `nextLink`.
use crate::key::{KeyName, KeyVersion, KeyVersionRecord};
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// One page of a list and the marker of the next page.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// Default and maximum page size (Azure `maxresults` 1..25).
pub const MAX_PAGE: usize = 25;

/// Validates `maxresults`.
pub fn page_size(maxresults: Option<i64>) -> Result<usize, Error> {
    match maxresults {
        None => Ok(MAX_PAGE),
        Some(n @ 1..=25) => usize::try_from(n).map_err(|_| Error::BadParameter("invalid maxresults".into())),
        Some(_) => Err(Error::BadParameter("maxresults must be between 1 and 25.".into())),
    }
}

pub(crate) fn not_found(name: &str) -> Error {
    Error::KeyNotFound(format!("A key with (name/id) {name} was not found in this key vault."))
}

impl Hsm {
    /// Loads a version of a live key, `None` or an empty string meaning the latest.
    pub(crate) async fn load_version(&self, name: &KeyName, version: Option<&str>) -> Result<KeyVersionRecord, Error> {
        let version = match version {
            None | Some("") => None,
            Some(v) => Some(KeyVersion::parse(v).ok_or_else(|| not_found(&format!("{name}/{v}")))?),
        };
        // From the in-memory state: no store read (the sealed material is not there; `private_key` finds the
        // unsealed key in its cache, or reads the material once).
        let view = self.view();
        let rec = view
            .key(name)
            .and_then(|k| k.version(version.as_ref().map(KeyVersion::as_str)))
            .ok_or_else(|| not_found(name.as_str()))?;
        crate::audit::context::key(rec);
        Ok(KeyVersionRecord::clone(rec))
    }

    /// Loads a version from the store itself, for a write that builds on it (read-modify-write must start from
    /// the stored state, which another node may have changed since this node's view was published).
    pub(crate) async fn load_version_for_write(
        &self,
        name: &KeyName,
        version: Option<&str>,
    ) -> Result<KeyVersionRecord, Error> {
        let version = match version {
            None | Some("") => None,
            Some(v) => Some(KeyVersion::parse(v).ok_or_else(|| not_found(&format!("{name}/{v}")))?),
        };
        let rec = self
            .store
            .key_version(name, version.as_ref())
            .await?
            .ok_or_else(|| not_found(name.as_str()))?;
        crate::audit::context::key(&rec);
        Ok(rec)
    }

    /// GetKey.
    pub async fn get_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
    ) -> Result<KeyVersionRecord, Error> {
        let name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysRead, &Scope::Key(name.to_string()))
            .await?;
        self.load_version(&name, version).await
    }

    /// GetKeys: latest versions, by name.
    pub async fn list_keys(
        &self,
        caller: &Principal,
        marker: Option<&str>,
        maxresults: Option<i64>,
    ) -> Result<Page<KeyVersionRecord>, Error> {
        self.authorize(caller, DataAction::KeysRead, &Scope::Keys).await?;
        let limit = page_size(maxresults)?;
        let mut items = self.store.list_keys(marker, limit + 1).await?;
        let next_marker = trim_page(&mut items, limit, |r| r.name.to_string());
        Ok(Page { items, next_marker })
    }

    /// GetKeyVersions.
    pub async fn list_versions(
        &self,
        caller: &Principal,
        name: &str,
        marker: Option<&str>,
        maxresults: Option<i64>,
    ) -> Result<Page<KeyVersionRecord>, Error> {
        let name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysRead, &Scope::Key(name.to_string()))
            .await?;
        let limit = page_size(maxresults)?;
        let mut items = self.store.list_versions(&name, marker, limit + 1).await?;
        if items.is_empty() && marker.is_none() {
            return Err(not_found(name.as_str()));
        }
        let next_marker = trim_page(&mut items, limit, |r| r.version.as_str().to_string());
        Ok(Page { items, next_marker })
    }
}

/// Cuts a fetched `limit + 1` rows to `limit` and returns the marker of the next page if there is one.
pub(crate) fn trim_page<T>(items: &mut Vec<T>, limit: usize, marker_of: impl Fn(&T) -> String) -> Option<String> {
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(marker_of)
    } else {
        None
    }
}
