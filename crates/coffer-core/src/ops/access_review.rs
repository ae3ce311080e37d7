//! Access review: every assignment with its last use, principals holding several roles, administrators assigned
//! individually rather than through a group, assignments unused for N days, and separation-of-duties conflicts.
//! Also conditional access on principals (allowed client networks).
use std::collections::{BTreeMap, HashSet};

use crate::rbac::{DataAction, Network, RoleAssignment, Scope, builtin, conflicts};
use crate::{Error, Hsm, Principal};

/// One reviewed assignment.
#[derive(Debug, Clone)]
pub struct ReviewedAssignment {
    pub assignment: RoleAssignment,
    pub role_name: String,
    /// `principal`, `group` or `external` (an object id this instance does not know: an external issuer's).
    pub principal_type: &'static str,
    /// Expired assignments stay listed until deleted.
    pub expired: bool,
}

/// The access review report.
#[derive(Debug, Clone, Default)]
pub struct AccessReview {
    pub assignments: Vec<ReviewedAssignment>,
    /// Principal id → names of the distinct roles it holds directly.
    pub principals_with_several_roles: BTreeMap<String, Vec<String>>,
    /// Principals (not groups) holding Managed HSM Administrator directly.
    pub individual_administrators: Vec<String>,
    /// Names of assignments never used, or not used for `unused_days`.
    pub unused_assignments: Vec<String>,
    /// Principal id → the conflicting role pairs it holds.
    pub separation_of_duties_conflicts: BTreeMap<String, Vec<String>>,
    pub unused_days: i64,
}

impl Hsm {
    /// Builds the access review (needs roleAssignments/read at `/`).
    pub async fn access_review(&self, caller: &Principal, unused_days: i64) -> Result<AccessReview, Error> {
        self.authorize(caller, DataAction::RoleAssignmentsRead, &Scope::Root)
            .await?;
        if !(1..=3650).contains(&unused_days) {
            return Err(Error::BadParameter("unusedDays must be between 1 and 3650.".into()));
        }
        self.review_assignments(unused_days).await
    }

    /// The access review without the authorization check (the posture report builds on it).
    pub(crate) async fn review_assignments(&self, unused_days: i64) -> Result<AccessReview, Error> {
        self.flush_assignment_use().await;
        let now = self.clock.now();
        let assignments = self.store.role_assignments(None).await?;
        let customs = self.store.custom_roles().await?;
        let principals: HashSet<String> = self
            .store
            .list_principals()
            .await?
            .into_iter()
            .map(|p| p.object_id.to_ascii_lowercase())
            .collect();
        let group_records = self.store.list_groups().await?;
        let groups: HashSet<String> = group_records.iter().map(|g| g.object_id.to_ascii_lowercase()).collect();
        let role_name = |id: &str| {
            builtin::by_id(id)
                .map(|d| d.role_name)
                .or_else(|| {
                    customs
                        .iter()
                        .find(|c| c.id.eq_ignore_ascii_case(id))
                        .map(|c| c.role_name.clone())
                })
                .unwrap_or_else(|| id.to_string())
        };
        let mut report = AccessReview {
            unused_days,
            ..AccessReview::default()
        };
        let mut roles_by_principal: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in assignments {
            let pid = a.principal_id.to_ascii_lowercase();
            let principal_type = if groups.contains(&pid) {
                "group"
            } else if principals.contains(&pid) {
                "principal"
            } else {
                "external"
            };
            let expired = a.expires.is_some_and(|e| now >= e);
            if !expired {
                let list = roles_by_principal.entry(a.principal_id.clone()).or_default();
                if !list.contains(&a.role_definition_id) {
                    list.push(a.role_definition_id.clone());
                }
                if a.role_definition_id == builtin::ADMINISTRATOR
                    && principal_type != "group"
                    && !report.individual_administrators.contains(&a.principal_id)
                {
                    report.individual_administrators.push(a.principal_id.clone());
                }
            }
            if a.last_used.is_none_or(|t| now - t > unused_days * 86_400) {
                report.unused_assignments.push(a.name.clone());
            }
            report.assignments.push(ReviewedAssignment {
                role_name: role_name(&a.role_definition_id),
                principal_type,
                expired,
                assignment: a,
            });
        }
        // Roles held through a group count for each member (separation of duties is about people, not groups).
        let mut effective = roles_by_principal.clone();
        for g in &group_records {
            let Some(group_roles) = roles_by_principal.get(&g.object_id.to_ascii_lowercase()) else {
                continue;
            };
            for m in &g.members {
                let list = effective.entry(m.to_ascii_lowercase()).or_default();
                for r in group_roles {
                    if !list.contains(r) {
                        list.push(r.clone());
                    }
                }
            }
        }
        for (pid, roles) in effective {
            let pairs = conflicts(&roles);
            if !pairs.is_empty() {
                let text = pairs
                    .iter()
                    .map(|(a, b)| format!("{} + {}", role_name(a), role_name(b)))
                    .collect();
                report.separation_of_duties_conflicts.insert(pid.clone(), text);
            }
            if roles.len() > 1 {
                report
                    .principals_with_several_roles
                    .insert(pid, roles.iter().map(|r| role_name(r)).collect());
            }
        }
        Ok(report)
    }

    /// Limits a principal to client address ranges (empty list: any). Needs Coffer/identities/write.
    pub async fn set_principal_networks(
        &self,
        caller: &Principal,
        object_id: &str,
        networks: &[String],
    ) -> Result<Vec<Network>, Error> {
        self.authorize(caller, DataAction::IdentitiesWrite, &Scope::Root)
            .await?;
        self.check_may_act_as(caller, object_id, "restrict this principal's networks")
            .await?;
        let parsed = networks
            .iter()
            .map(|n| Network::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        if !self.store.set_principal_networks(object_id, &parsed).await? {
            return Err(Error::NotFound {
                code: "PrincipalNotFound",
                message: format!("Principal '{object_id}' was not found."),
            });
        }
        tracing::info!(object_id, networks = ?networks, "principal networks set");
        Ok(parsed)
    }
}
