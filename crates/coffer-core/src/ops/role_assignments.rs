//! Role assignments at `/`, `/keys` and `/keys/{name}`. Writing or deleting one needs the roleAssignments
//! dataActions at that scope; the role definition must exist.
use crate::rbac::escalation;
use crate::rbac::{DataAction, Network, RoleAssignment, Scope, SeparationOfDuties, builtin, role_definition_guid};
use crate::state::View;
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
        // Fail closed: a role the store knows but the view does not (yet) confers everything.
        let def = escalation::role_in(&self.view(), &role)
            .ok_or_else(|| Error::Corrupt(format!("role {role} is in the store but not in the view")))?;
        let conferred = escalation::conferred_by_role(&def, scope, options.expires);
        self.check_no_escalation(caller, &conferred, "assign this role")?;
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

    /// Applies the separation-of-duties policy to giving `role` to `principal_id` (a principal, or a group: then
    /// to each of its members). Roles held through groups count.
    pub(crate) async fn separation_of_duties(
        &self,
        principal_id: &str,
        role: &str,
        now: i64,
    ) -> Result<Vec<String>, Error> {
        let view = self.view();
        let mut holders = vec![escalation::with_groups(&view, principal_id)];
        for member in members_of(&view, principal_id) {
            holders.push(escalation::with_groups(&view, &member));
        }
        let added = [role.to_string()];
        let mut found = Vec::new();
        for ids in holders {
            for c in sod_conflicts(&roles_held(&view, &ids, now), &added) {
                if !found.contains(&c) {
                    found.push(c);
                }
            }
        }
        self.apply_sod_policy(principal_id, found)
    }

    /// Applies the separation-of-duties policy to adding `member` to `group` (the group's roles join the member's).
    pub(crate) fn separation_of_duties_for_membership(
        &self,
        group: &str,
        member: &str,
        now: i64,
    ) -> Result<Vec<String>, Error> {
        let view = self.view();
        let held = roles_held(&view, &escalation::with_groups(&view, member), now);
        let added = roles_held(&view, &[group.to_string()], now);
        let found = sod_conflicts(&held, &added);
        self.apply_sod_policy(member, found)
    }

    fn apply_sod_policy(&self, principal_id: &str, found: Vec<String>) -> Result<Vec<String>, Error> {
        if found.is_empty() || self.config.separation_of_duties == SeparationOfDuties::Off {
            return Ok(Vec::new());
        }
        if self.config.separation_of_duties == SeparationOfDuties::Deny {
            return Err(Error::BadParameter(format!(
                "The change would break separation of duties for principal {principal_id}: {}",
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

/// The role GUIDs (lowercase) the assignees `ids` hold through assignments active at `now`, at any scope.
fn roles_held(view: &View, ids: &[String], now: i64) -> Vec<String> {
    let mut roles: Vec<String> = ids
        .iter()
        .flat_map(|id| view.all_assignments_of(id))
        .filter(|a| a.expires.is_none_or(|e| now < e))
        .map(|a| a.role_definition_id.to_ascii_lowercase())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The principals that are members of `group` (nothing when it is not a group).
fn members_of(view: &View, group: &str) -> Vec<String> {
    view.groups_of
        .iter()
        .filter(|(_, groups)| groups.iter().any(|g| g.eq_ignore_ascii_case(group)))
        .map(|(m, _)| m.clone())
        .collect()
}

/// The separation-of-duties conflicts that `added` roles bring to `held` ones (each pair named once).
fn sod_conflicts(held: &[String], added: &[String]) -> Vec<String> {
    let mut all: Vec<String> = held.to_vec();
    all.extend(added.iter().cloned());
    let is_added = |r: &str| added.iter().any(|a| a.eq_ignore_ascii_case(r));
    let name = |g: &str| builtin::get(g).map_or_else(|| g.to_string(), |d| d.role_name.clone());
    crate::rbac::conflicts(&all)
        .into_iter()
        .filter(|(a, b)| is_added(a) || is_added(b))
        .map(|(a, b)| format!("separation of duties: '{}' together with '{}'", name(a), name(b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_count_only_pairs_the_added_roles_complete() {
        let held = vec![builtin::ADMINISTRATOR.to_string(), builtin::CRYPTO_USER.to_string()];
        assert!(sod_conflicts(&held, &[builtin::CRYPTO_AUDITOR.to_string()]).is_empty());
        let c = sod_conflicts(
            &[builtin::CRYPTO_USER.to_string()],
            &[builtin::CRYPTO_OFFICER.to_string()],
        );
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].contains("Crypto Officer") && c[0].contains("Crypto User"), "{c:?}");
    }
}
