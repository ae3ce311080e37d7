//! The instance row, its security-domain lifecycle, settings and instance facts (`meta`: audit checkpoints, job results, network ACL document, restore lease).
use async_trait::async_trait;

use super::{InstanceRecord, PrincipalRecord};
use crate::Error;
use crate::rbac::RoleAssignment;

/// The instance row, its security-domain lifecycle, settings and instance facts (`meta`: audit checkpoints, job results, network ACL document, restore lease).
#[async_trait]
pub trait InstanceStore: Send + Sync + 'static {
    /// The instance row, if the instance exists.
    async fn instance(&self) -> Result<Option<InstanceRecord>, Error>;
    /// Creates the instance together with its bootstrap principal and initial role assignments. Fails if an
    /// instance exists.
    async fn create_instance(
        &self,
        instance: &InstanceRecord,
        bootstrap: &PrincipalRecord,
        assignments: &[RoleAssignment],
    ) -> Result<(), Error>;
    /// Records a security-domain download; activates a provisioned instance (state, activation time).
    async fn record_download(&self, now: i64) -> Result<(), Error>;
    /// Installs a recovered domain secret: the re-sealed domain secret and token key, state active, and the
    /// exchange key dropped, in one transaction.
    async fn install_domain_secret(
        &self,
        sealed_domain_secret: &[u8],
        sealed_token_key: &[u8],
        now: i64,
    ) -> Result<(), Error>;
    /// Replaces the sealed domain secret (seal-provider migration).
    async fn reseal_domain_secret(&self, sealed_domain_secret: &[u8]) -> Result<(), Error>;
    /// All settings (name, value).
    async fn settings(&self) -> Result<Vec<(String, String)>, Error>;
    /// Writes a setting.
    async fn put_setting(&self, name: &str, value: &str, now: i64) -> Result<(), Error>;
    /// An instance fact that is not a setting (e.g. `last_backup_success`).
    async fn meta(&self, name: &str) -> Result<Option<String>, Error>;
    /// Writes an instance fact.
    async fn put_meta(&self, name: &str, value: &str, now: i64) -> Result<(), Error>;
    /// Switches purge protection on for the instance (never off).
    async fn enable_purge_protection(&self) -> Result<(), Error>;
}
