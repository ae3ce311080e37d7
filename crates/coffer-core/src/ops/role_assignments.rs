//! Role assignments at `/`, `/keys` and `/keys/{name}`. Writing or deleting one needs the roleAssignments
//! dataActions at that scope; the role definition must exist.
use crate::rbac::{DataAction, RoleAssignment, Scope, builtin, role_definition_guid};
use crate::{Error, Hsm, Principal};

use super::role_definitions::check_guid;

/// How to filter a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentFilter {
    /// Assignments at the scope, above it and below it.
    All,
    /// `atScope()`: assignments that apply at the scope (at it or above it).
    AtScope,
    /// `principalId eq '…'`.
    Principal(String),
}

fn not_found() -> Error {
    Error::NotFound {
        code: "RoleAssignmentNotFound",
        message: "Requested role assignment not found.".into(),
    }
}

impl Hsm {
    /// RoleAssignments_ListForScope.
    pub async fn list_role_assignments(
        &self,
        caller: &Principal,
        scope: &Scope,
        filter: &AssignmentFilter,
    ) -> Result<Vec<RoleAssignment>, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, scope).await?;
        let mut all = self.store.role_assignments(None).await?;
        match filter {
            AssignmentFilter::All => all.retain(|a| a.scope.covers(scope) || scope.covers(&a.scope)),
            AssignmentFilter::AtScope => all.retain(|a| a.scope.covers(scope)),
            AssignmentFilter::Principal(p) => {
                all.retain(|a| {
                    a.principal_id.eq_ignore_ascii_case(p) && (a.scope.covers(scope) || scope.covers(&a.scope))
                });
            }
        }
        Ok(all)
    }

    /// RoleAssignments_Get.
    pub async fn get_role_assignment(
        &self,
        caller: &Principal,
        scope: &Scope,
        name: &str,
    ) -> Result<RoleAssignment, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, scope).await?;
        self.store
            .role_assignment(&name.to_ascii_lowercase())
            .await?
            .ok_or_else(not_found)
    }

    /// RoleAssignments_Create.
    pub async fn create_role_assignment(
        &self,
        caller: &Principal,
        scope: &Scope,
        name: &str,
        role_definition_id: &str,
        principal_id: &str,
    ) -> Result<RoleAssignment, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsWrite, scope).await?;
        let name = check_guid("role assignment", name)?;
        let principal_id = principal_id.trim();
        if principal_id.is_empty() || principal_id.len() > 256 {
            return Err(Error::BadParameter("principalId is required.".into()));
        }
        let role = role_definition_guid(role_definition_id);
        let custom = if builtin::by_id(&role).is_some() {
            false
        } else {
            let def = self.store.custom_role(&role).await?.ok_or_else(|| {
                Error::BadParameter(format!("The role definition '{role_definition_id}' does not exist."))
            })?;
            let assignable = def
                .assignable_scopes
                .iter()
                .filter_map(|s| Scope::parse(s).ok())
                .any(|s| s.covers(scope));
            if !assignable {
                return Err(Error::BadParameter(format!(
                    "The role '{}' is not assignable at scope '{}'.",
                    def.role_name,
                    scope.as_string()
                )));
            }
            true
        };
        let assignment = RoleAssignment {
            name,
            scope: scope.clone(),
            role_definition_id: role,
            principal_id: principal_id.to_string(),
            created: self.clock.now(),
        };
        self.store.create_role_assignment(&assignment, custom).await?;
        tracing::info!(
            assignment = %assignment.name, role = %assignment.role_definition_id,
            principal = %assignment.principal_id, scope = %scope.as_string(), "role assigned"
        );
        Ok(assignment)
    }

    /// RoleAssignments_Delete: returns the deleted assignment.
    pub async fn delete_role_assignment(
        &self,
        caller: &Principal,
        scope: &Scope,
        name: &str,
    ) -> Result<RoleAssignment, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsDelete, scope).await?;
        let existing = self
            .store
            .role_assignment(&name.to_ascii_lowercase())
            .await?
            .ok_or_else(not_found)?;
        if !scope.covers(&existing.scope) {
            return Err(not_found());
        }
        let deleted = self
            .store
            .delete_role_assignment(&existing.name)
            .await?
            .ok_or_else(not_found)?;
        tracing::info!(assignment = %deleted.name, "role assignment deleted");
        Ok(deleted)
    }
}
