//! Key policy assignments (Audit/Deny).
use async_trait::async_trait;

use crate::Error;

/// Key policy assignments (Audit/Deny).
#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    /// Key policy assignments, by name.
    async fn policy_assignments(&self) -> Result<Vec<crate::policy::PolicyAssignment>, Error>;
    /// One key policy assignment (names are case-insensitive).
    async fn policy_assignment(&self, name: &str) -> Result<Option<crate::policy::PolicyAssignment>, Error>;
    /// Creates or replaces a key policy assignment (an existing one keeps its name spelling and `created`). At most
    /// `limit` may exist. Returns the stored assignment and whether it was created.
    async fn put_policy_assignment(
        &self,
        assignment: &crate::policy::PolicyAssignment,
        limit: usize,
    ) -> Result<(crate::policy::PolicyAssignment, bool), Error>;
    /// Deletes a key policy assignment. Returns false if it did not exist.
    async fn delete_policy_assignment(&self, name: &str) -> Result<bool, Error>;
}
