//! Local RBAC: custom role definitions, role assignments, just-in-time eligibility and activations.
use async_trait::async_trait;

use crate::Error;
use crate::rbac::{Activation, EligibleAssignment, RoleAssignment, RoleDefinition};

/// Local RBAC: custom role definitions, role assignments, just-in-time eligibility and activations.
#[async_trait]
pub trait RbacStore: Send + Sync + 'static {
    /// Custom role definitions.
    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error>;
    /// A custom role definition by GUID.
    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error>;
    /// Creates or replaces a custom role definition. At most `limit` custom roles may exist.
    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error>;
    /// Deletes a custom role. Conflict if an assignment references it; `None` if it did not exist.
    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error>;
    /// Role assignments, all or only those naming one of `principal_ids`.
    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error>;
    /// One role assignment by name.
    async fn role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error>;
    /// Creates a role assignment. A taken name is a conflict; the role definition must exist (built-in roles
    /// are checked by core, custom ones here, in the same transaction).
    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error>;
    /// Deletes a role assignment, returning it.
    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error>;
    /// Records that an assignment granted a request at `now`.
    async fn touch_role_assignment(&self, name: &str, now: i64) -> Result<(), Error>;
    /// Creates an eligible assignment. A taken name is a conflict.
    async fn create_eligible(&self, eligible: &EligibleAssignment) -> Result<(), Error>;
    /// All eligible assignments.
    async fn list_eligible(&self) -> Result<Vec<EligibleAssignment>, Error>;
    /// One eligible assignment.
    async fn eligible(&self, name: &str) -> Result<Option<EligibleAssignment>, Error>;
    /// Deletes an eligible assignment. Returns false if it did not exist.
    async fn delete_eligible(&self, name: &str) -> Result<bool, Error>;
    /// Writes an activation and the time-bound assignment it creates, in one transaction.
    async fn activate(&self, activation: &Activation, assignment: &RoleAssignment) -> Result<(), Error>;
    /// Recorded activations, newest first.
    async fn activations(&self) -> Result<Vec<Activation>, Error>;
}
