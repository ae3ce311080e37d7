//! Principals of the built-in token service, their credentials and networks, and groups.
use async_trait::async_trait;

use super::{ClientSecretRecord, GroupRecord, PrincipalRecord};
use crate::Error;
use crate::rbac::Network;

/// Principals of the built-in token service, their credentials and networks, and groups.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// A principal by client id.
    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error>;
    /// Adds a certificate credential to a principal. Returns false if the principal does not exist.
    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error>;
    /// A principal by object id.
    async fn principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>, Error>;
    /// A principal's allowed networks (`None` if the principal does not exist): one indexed read, for the
    /// per-request conditional-access check.
    async fn principal_networks(&self, object_id: &str) -> Result<Option<Vec<Network>>, Error>;
    /// All principals, by object id.
    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, Error>;
    /// Creates a principal with its secrets. A taken client id or object id is a conflict.
    async fn create_principal(&self, principal: &PrincipalRecord) -> Result<(), Error>;
    /// Deletes a principal, its credentials, its group memberships and the role assignments naming it.
    /// Returns false if it did not exist.
    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error>;
    /// Adds a client secret. Returns false if the principal does not exist.
    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error>;
    /// Removes a client secret. Returns false if there was no such secret.
    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error>;
    /// Creates a group. A taken object id is a conflict.
    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error>;
    /// A group with its members.
    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error>;
    /// All groups with their members.
    async fn list_groups(&self) -> Result<Vec<GroupRecord>, Error>;
    /// Deletes a group, its memberships and the role assignments naming it. Returns false if it did not exist.
    async fn delete_group(&self, object_id: &str) -> Result<bool, Error>;
    /// Adds a member (idempotent). Returns false if the group does not exist.
    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error>;
    /// Removes a member. Returns false if it was not a member.
    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error>;
    /// Object ids of the groups `member_id` belongs to.
    async fn groups_of(&self, member_id: &str) -> Result<Vec<String>, Error>;
    /// Sets a principal's allowed networks. Returns false if it does not exist.
    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error>;
}
