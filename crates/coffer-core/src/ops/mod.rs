//! The operations, one file per family. Each one authorizes first, then loads, computes, persists.

pub mod access_review;
pub mod attestation;
pub mod backup_restore;
pub mod byok;
pub mod create_import;
pub mod crypto;
pub mod delete_recover_purge;
pub mod directory;
pub mod full_backup;
pub mod identities;
pub mod jit;
pub mod jobs;
pub mod policy;
pub mod posture;
pub mod random;
pub mod read;
pub mod release;
pub mod role_assignments;
pub mod role_definitions;
pub mod rotation;
pub mod sd_custody;
pub mod security_domain;
pub mod settings;
pub mod update;

use std::collections::BTreeMap;

use crate::Error;
use crate::key::KeyAttributes;

/// Writable attributes and metadata shared by create, import and update requests.
#[derive(Debug, Clone, Default)]
pub struct KeyProperties {
    pub key_ops: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
    pub exportable: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
    pub release_policy: Option<String>,
}

/// Validates tags: at most 15, names up to 512 and values up to 256 characters (Key Vault limits).
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > 15 {
        return Err(Error::BadParameter("A key may have at most 15 tags.".into()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 512 || v.chars().count() > 256 {
            return Err(Error::BadParameter(
                "Tag names must be 1 to 512 characters and tag values at most 256 characters.".into(),
            ));
        }
    }
    Ok(())
}

/// Checks `nbf` < `exp` when both are set.
/// A key exchange key (`key_ops` holding `import`) must never be exportable: its private key opens BYOK blobs.
/// Checked wherever ops or exportability are set (create, import, update).
pub(crate) fn check_kek_not_exportable(key_ops: &[crate::key::KeyOperation], exportable: bool) -> Result<(), Error> {
    if exportable && key_ops.contains(&crate::key::KeyOperation::Import) {
        return Err(Error::BadParameter(
            "A key exchange key (key_ops [\"import\"]) cannot be exportable.".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_times(attrs: &KeyAttributes) -> Result<(), Error> {
    if let (Some(nbf), Some(exp)) = (attrs.not_before, attrs.expires)
        && nbf >= exp
    {
        return Err(Error::BadParameter(
            "The key's nbf must be earlier than its exp.".into(),
        ));
    }
    Ok(())
}
