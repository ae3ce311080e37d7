//! Role assignments at `/`, `/keys` and `/keys/{name}`. Writing or deleting one needs the roleAssignments
//! dataActions at that scope; the role definition must exist.
use crate::rbac::{DataAction, Network, RoleAssignment, Scope, SeparationOfDuties, builtin, role_definition_guid};
use crate::{Error, Hsm, Principal};

use super::role_definitions::check_guid;

/// Coffer's extensions to a role assignment.
#[derive(Debug, Clone, Default)]
pub struct AssignmentOptions {
    /// Unix seconds after which it no longer grants.
    pub expires: Option<i64>,
    /// Client address ranges it is limited to.
    pub allowed_networks: Vec<Network>,
}

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

    /// RoleAssignments_Create. `options` carries Coffer's extensions (expiry, allowed networks). Returns the
    /// assignment and the separation-of-duties warnings it raised (policy `warn`); under policy `deny` a conflict
    /// is refused.
    pub async fn create_role_assignment(
        &self,
        caller: &Principal,
        scope: &Scope,
        name: &str,
        role_definition_id: &str,
        principal_id: &str,
        options: AssignmentOptions,
    ) -> Result<(RoleAssignment, Vec<String>), Error> {
        self.authorize(caller, DataAction::RoleAssignmentsWrite, scope).await?;
        let name = check_guid("role assignment", name)?;
        let principal_id = principal_id.trim();
        if principal_id.is_empty() || principal_id.len() > 256 {
            return Err(Error::BadParameter("principalId is required.".into()));
        }
        let now = self.clock.now();
        if options.expires.is_some_and(|e| e <= now) {
            return Err(Error::BadParameter("expiresOn must be in the future.".into()));
        }
        let role = role_definition_guid(role_definition_id);
        let custom = self.check_assignable(&role, role_definition_id, scope).await?;
        let warnings = self.separation_of_duties(principal_id, &role, now).await?;
        let assignment = RoleAssignment {
            name,
            scope: scope.clone(),
            role_definition_id: role,
            principal_id: principal_id.to_string(),
            created: now,
            expires: options.expires,
            allowed_networks: options.allowed_networks,
            last_used: None,
            justification: None,
        };
        self.store.create_role_assignment(&assignment, custom).await?;
        tracing::info!(
            assignment = %assignment.name, role = %assignment.role_definition_id,
            principal = %assignment.principal_id, scope = %scope.as_string(), "role assigned"
        );
        Ok((assignment, warnings))
    }

    /// Checks that a role exists and may be assigned at `scope`; returns whether it is a custom role.
    pub(crate) async fn check_assignable(&self, role: &str, given: &str, scope: &Scope) -> Result<bool, Error> {
        if builtin::by_id(role).is_some() {
            return Ok(false);
        }
        let def = self
            .store
            .custom_role(role)
            .await?
            .ok_or_else(|| Error::BadParameter(format!("The role definition '{given}' does not exist.")))?;
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
        Ok(true)
    }

    /// Applies the separation-of-duties policy to giving `role` to `principal_id`.
    pub(crate) async fn separation_of_duties(
        &self,
        principal_id: &str,
        role: &str,
        now: i64,
    ) -> Result<Vec<String>, Error> {
        if self.config.separation_of_duties == SeparationOfDuties::Off {
            return Ok(Vec::new());
        }
        let ids = [principal_id.to_string()];
        let mut roles: Vec<String> = self
            .store
            .role_assignments(Some(&ids))
            .await?
            .into_iter()
            .filter(|a| a.expires.is_none_or(|e| now < e))
            .map(|a| a.role_definition_id)
            .collect();
        roles.push(role.to_string());
        let name = |g: &str| builtin::by_id(g).map_or_else(|| g.to_string(), |d| d.role_name);
        let found: Vec<String> = crate::rbac::conflicts(&roles)
            .into_iter()
            .filter(|(a, b)| a.eq_ignore_ascii_case(role) || b.eq_ignore_ascii_case(role))
            .map(|(a, b)| format!("separation of duties: '{}' together with '{}'", name(a), name(b)))
            .collect();
        if found.is_empty() {
            return Ok(found);
        }
        if self.config.separation_of_duties == SeparationOfDuties::Deny {
            return Err(Error::BadParameter(format!(
                "The assignment would break separation of duties for principal {principal_id}: {}",
                found.join("; ")
            )));
        }
        tracing::warn!(principal = principal_id, conflicts = %found.join("; "), "separation-of-duties warning");
        Ok(found)
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
