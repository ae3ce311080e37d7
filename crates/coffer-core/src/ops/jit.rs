//! Just-in-time administration. An eligible assignment names a principal (or group), a role, a scope and a
//! maximum duration; it grants nothing until that principal activates it with a justification, which creates an
//! ordinary assignment that expires on its own (no restart, no clean-up job: expired assignments stop granting at
//! once). Every activation is recorded for the audit log.
use crate::instance::new_uuid;
use crate::ops::role_assignments::AssignmentOptions;
use crate::ops::role_definitions::check_guid;
use crate::rbac::{Activation, DataAction, EligibleAssignment, RoleAssignment, Scope, role_definition_guid};
use crate::{Error, Hsm, Principal};

/// Longest activation that can be made eligible: 24 hours.
pub const MAX_ACTIVATION_SECS: i64 = 24 * 3600;

fn not_found(name: &str) -> Error {
    Error::NotFound {
        code: "EligibleAssignmentNotFound",
        message: format!("Eligible assignment '{name}' was not found."),
    }
}

impl Hsm {
    /// Creates an eligible assignment (needs roleAssignments/write at its scope).
    pub async fn create_eligible_assignment(
        &self,
        caller: &Principal,
        scope: &Scope,
        name: Option<&str>,
        role_definition_id: &str,
        principal_id: &str,
        max_duration_secs: i64,
    ) -> Result<EligibleAssignment, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsWrite, scope).await?;
        let name = match name {
            Some(n) => check_guid("eligible assignment", n)?,
            None => new_uuid()?,
        };
        if !(60..=MAX_ACTIVATION_SECS).contains(&max_duration_secs) {
            return Err(Error::BadParameter(
                "maxDurationSeconds must be between 60 and 86400.".into(),
            ));
        }
        if principal_id.trim().is_empty() {
            return Err(Error::BadParameter("principalId is required.".into()));
        }
        let role = role_definition_guid(role_definition_id);
        self.check_assignable(&role, role_definition_id, scope).await?;
        // Eligibility can be activated again and again: it confers the role without end. Fail closed on a role the
        // view does not know.
        let def = crate::rbac::escalation::role_in(&self.view(), &role)
            .ok_or_else(|| Error::Corrupt(format!("role {role} is in the store but not in the view")))?;
        let conferred = crate::rbac::escalation::conferred_by_role(&def, scope, None);
        self.check_no_escalation(caller, &conferred, "make a principal eligible for this role")?;
        let e = EligibleAssignment {
            name,
            scope: scope.clone(),
            role_definition_id: role,
            principal_id: principal_id.trim().to_string(),
            max_duration_secs,
            created: self.clock.now(),
        };
        self.store.create_eligible(&e).await?;
        tracing::info!(eligible = %e.name, principal = %e.principal_id, role = %e.role_definition_id, "eligible assignment created");
        Ok(e)
    }

    /// Lists eligible assignments: all of them for holders of roleAssignments/read at `/`, otherwise the caller's own.
    pub async fn list_eligible_assignments(&self, caller: &Principal) -> Result<Vec<EligibleAssignment>, Error> {
        let all = self.store.list_eligible().await?;
        if self
            .is_granted(caller, DataAction::RoleAssignmentsRead, &Scope::Root)
            .await?
        {
            return Ok(all);
        }
        let mine = caller.assignee_ids();
        Ok(all
            .into_iter()
            .filter(|e| mine.iter().any(|m| m.eq_ignore_ascii_case(&e.principal_id)))
            .collect())
    }

    /// Deletes an eligible assignment (needs roleAssignments/delete at its scope).
    pub async fn delete_eligible_assignment(&self, caller: &Principal, name: &str) -> Result<(), Error> {
        let e = self.store.eligible(name).await?;
        let scope = e.as_ref().map_or(Scope::Root, |e| e.scope.clone());
        self.authorize(caller, DataAction::RoleAssignmentsDelete, &scope)
            .await?;
        if e.is_none() || !self.store.delete_eligible(name).await? {
            return Err(not_found(name));
        }
        Ok(())
    }

    /// Activates an eligible assignment for `duration_secs` (at most its maximum) with a justification. Only the
    /// eligible principal (or a member of the eligible group) may activate it.
    pub async fn activate_eligible_assignment(
        &self,
        caller: &Principal,
        name: &str,
        duration_secs: i64,
        justification: &str,
    ) -> Result<(RoleAssignment, Vec<String>), Error> {
        let e = self.store.eligible(name).await?.ok_or_else(|| not_found(name))?;
        let mine = caller.assignee_ids();
        if !self.is_trusted_issuer(&caller.issuer) || !mine.iter().any(|m| m.eq_ignore_ascii_case(&e.principal_id)) {
            return Err(Error::Forbidden(format!(
                "Caller {} is not eligible for assignment '{name}'.",
                caller.object_id
            )));
        }
        let justification = justification.trim();
        if justification.len() < 5 || justification.len() > 1024 {
            return Err(Error::BadParameter(
                "A justification of 5 to 1024 characters is required.".into(),
            ));
        }
        if duration_secs < 60 || duration_secs > e.max_duration_secs {
            return Err(Error::BadParameter(format!(
                "durationSeconds must be between 60 and {} for this assignment.",
                e.max_duration_secs
            )));
        }
        let now = self.clock.now();
        let warnings = self
            .separation_of_duties(&caller.object_id, &e.role_definition_id, now)
            .await?;
        let assignment = RoleAssignment {
            name: new_uuid()?,
            scope: e.scope.clone(),
            role_definition_id: e.role_definition_id.clone(),
            principal_id: caller.object_id.clone(),
            created: now,
            expires: Some(now + duration_secs),
            allowed_networks: AssignmentOptions::default().allowed_networks,
            last_used: None,
            justification: Some(justification.to_string()),
        };
        let activation = Activation {
            id: new_uuid()?,
            eligible_name: e.name.clone(),
            principal_id: caller.object_id.clone(),
            assignment_name: assignment.name.clone(),
            justification: justification.to_string(),
            activated: now,
            expires: now + duration_secs,
        };
        self.store.activate(&activation, &assignment).await?;
        tracing::info!(
            eligible = %e.name, principal = %caller.object_id, assignment = %assignment.name,
            until = now + duration_secs, justification, "eligible assignment activated"
        );
        Ok((assignment, warnings))
    }

    /// Recorded activations (needs roleAssignments/read at `/`).
    pub async fn list_activations(&self, caller: &Principal) -> Result<Vec<Activation>, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, &Scope::Root)
            .await?;
        self.store.activations().await
    }
}
