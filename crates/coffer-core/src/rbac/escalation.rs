//! No escalation: a caller can confer only protected rights it holds itself.
//!
//! The protected dataActions are those that administer the HSM rather than use keys: role assignments and
//! definitions (settings are guarded by roleDefinitions/write), the security domain, full backup and restore,
//! identities, network ACLs, key policies and the audit log. Granting a role (directly or as an eligible
//! assignment), writing a custom role, adding a credential to a principal, or adding a principal to a group is
//! allowed only when the caller itself holds, at the scope concerned, every protected dataAction the result would
//! confer, and for at least as long (a caller whose grant expires, a just-in-time activation say, cannot confer a
//! permanent one). Key dataActions are not protected: an Administrator still assigns Crypto User without holding
//! key rights, and an Identity Administrator still rotates the secrets of applications that hold only key roles.
use crate::rbac::{DataAction, RoleDefinition, Scope, builtin};
use crate::state::View;
use crate::{Error, Hsm, Principal};

/// The dataActions no caller can confer without holding them.
pub const PROTECTED: &[DataAction] = &[
    DataAction::RoleAssignmentsWrite,
    DataAction::RoleAssignmentsDelete,
    DataAction::RoleDefinitionsWrite,
    DataAction::RoleDefinitionsDelete,
    DataAction::SecurityDomainDownload,
    DataAction::SecurityDomainUpload,
    DataAction::BackupStart,
    DataAction::RestoreStart,
    DataAction::IdentitiesWrite,
    DataAction::NetworkWrite,
    DataAction::PoliciesWrite,
    DataAction::AuditRead,
];

/// One protected right a change would confer: the dataAction, where, and until when (`None`: no end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conferred {
    pub action: DataAction,
    pub scope: Scope,
    pub until: Option<i64>,
}

/// The protected rights a role confers at `scope` until `until`.
pub fn conferred_by_role(role: &RoleDefinition, scope: &Scope, until: Option<i64>) -> Vec<Conferred> {
    PROTECTED
        .iter()
        .filter(|a| role.grants(**a))
        .map(|a| Conferred {
            action: *a,
            scope: scope.clone(),
            until,
        })
        .collect()
}

/// A role definition by GUID from the built-ins or the view's custom roles.
pub fn role_in(view: &View, guid: &str) -> Option<RoleDefinition> {
    builtin::get(guid)
        .cloned()
        .or_else(|| view.custom_role(guid).map(|r| RoleDefinition::clone(r)))
}

/// The protected rights an assignee (a principal with its groups, or a group) holds through its active role
/// assignments at `now`.
pub fn held_by(view: &View, ids: &[String], now: i64) -> Vec<Conferred> {
    let mut out = Vec::new();
    for id in ids {
        for a in view.all_assignments_of(id) {
            if a.expires.is_some_and(|e| now >= e) {
                continue;
            }
            if let Some(role) = role_in(view, &a.role_definition_id) {
                out.extend(conferred_by_role(&role, &a.scope, a.expires));
            }
        }
    }
    out
}

/// The protected rights eligible (just-in-time) assignments let the assignees `ids` take: without end, since an
/// eligibility can be activated again and again.
pub fn eligible_for(view: &View, eligible: &[crate::rbac::EligibleAssignment], ids: &[String]) -> Vec<Conferred> {
    eligible
        .iter()
        .filter(|e| ids.iter().any(|id| id.eq_ignore_ascii_case(&e.principal_id)))
        .filter_map(|e| role_in(view, &e.role_definition_id).map(|r| conferred_by_role(&r, &e.scope, None)))
        .flatten()
        .collect()
}

/// A principal's object id and the groups it belongs to, as assignments name them.
pub fn with_groups(view: &View, object_id: &str) -> Vec<String> {
    let mut groups = view.groups_of(object_id);
    if groups.is_empty() {
        groups = view.groups_of(&object_id.to_ascii_lowercase());
    }
    let mut ids = vec![object_id.to_string()];
    ids.extend(groups.iter().cloned());
    ids
}

impl Hsm {
    /// Everything `ids` hold or may activate: active assignments and eligibilities.
    pub(crate) async fn held_or_eligible(&self, ids: &[String]) -> Result<Vec<Conferred>, Error> {
        let view = self.view();
        let mut all = held_by(&view, ids, self.clock.now());
        let eligible = self.store.list_eligible().await?;
        all.extend(eligible_for(&view, &eligible, ids));
        Ok(all)
    }

    /// Refuses (403) unless `caller` holds every right in `conferred`, at its scope, for at least as long.
    pub(crate) fn check_no_escalation(
        &self,
        caller: &Principal,
        conferred: &[Conferred],
        what: &str,
    ) -> Result<(), Error> {
        let view = self.view();
        let now = self.clock.now();
        let mut missing: Vec<String> = Vec::new();
        for c in conferred {
            match self.holding_until(&view, caller, c.action, &c.scope, now) {
                Some(None) => {}
                Some(Some(end)) if c.until.is_some_and(|u| u <= end) => {}
                Some(Some(_)) => missing.push(format!(
                    "{} at '{}' (only for a limited time)",
                    c.action.name(),
                    c.scope.as_string()
                )),
                None => missing.push(format!("{} at '{}'", c.action.name(), c.scope.as_string())),
            }
        }
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        tracing::warn!(object_id = %caller.object_id, what, missing = %missing.join(", "), "escalation refused");
        Err(Error::Forbidden(format!(
            "The caller cannot {what}: it would confer rights the caller does not hold itself ({}). Caller: oid={}",
            missing.join(", "),
            caller.object_id
        )))
    }

    /// Whether `caller` holds `action` at `scope` now, and until when: `Some(None)` without end, `Some(Some(t))`
    /// until `t` at the latest, `None` not at all.
    fn holding_until(
        &self,
        view: &View,
        caller: &Principal,
        action: DataAction,
        scope: &Scope,
        now: i64,
    ) -> Option<Option<i64>> {
        if !self.is_trusted_issuer(&caller.issuer) {
            return None;
        }
        if caller.issuer == self.issuer {
            let p = view.principals.get(&caller.object_id)?;
            if !crate::rbac::network_allows(&p.networks, caller.client_ip) {
                return None;
            }
        }
        let mut best: Option<Option<i64>> = None;
        for id in std::iter::once(&caller.object_id).chain(caller.groups.iter()) {
            for a in view
                .assignments_of(id, scope)
                .filter(|a| a.scope.covers(scope) && a.active(now, caller.client_ip))
            {
                let grants = role_in(view, &a.role_definition_id).is_some_and(|r| r.grants(action));
                if !grants {
                    continue;
                }
                best = match (best, a.expires) {
                    (_, None) => return Some(None),
                    (None, Some(e)) => Some(Some(e)),
                    (Some(Some(b)), Some(e)) => Some(Some(b.max(e))),
                    (Some(None), _) => Some(None),
                };
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_roles_confer_nothing_protected_and_administrator_confers_its_controls() {
        let cu = builtin::get(builtin::CRYPTO_USER).unwrap();
        assert!(conferred_by_role(cu, &Scope::Root, None).is_empty());
        let admin = builtin::get(builtin::ADMINISTRATOR).unwrap();
        let c = conferred_by_role(admin, &Scope::Keys, Some(5));
        assert!(c.iter().any(|c| c.action == DataAction::SecurityDomainDownload));
        assert!(c.iter().all(|c| c.scope == Scope::Keys && c.until == Some(5)));
        assert!(!c.iter().any(|c| c.action == DataAction::PoliciesWrite));
        let auditor = builtin::get(builtin::CRYPTO_AUDITOR).unwrap();
        let a: Vec<_> = conferred_by_role(auditor, &Scope::Root, None)
            .into_iter()
            .map(|c| c.action)
            .collect();
        assert_eq!(a, vec![DataAction::AuditRead]);
    }
}
