//! Key policies: the built-in definitions (`GET /coffer/v1/policy-definitions`), their assignments
//! (`/coffer/v1/policies`), the compliance report of existing keys (`GET /coffer/v1/compliance`), and enforcement.
//!
//! Reading needs `Coffer/policies/read/action` (Managed HSM Policy Administrator, Crypto Auditor); changing needs
//! `Coffer/policies/write/action` (Policy Administrator). Enforcement runs in core wherever a key version gets new
//! attributes: create, import, update, and on-demand or scheduled rotation. Every enabled assignment is evaluated;
//! a `Deny` violation refuses the operation (`Error::PolicyDenied`, 403 `ForbiddenByPolicy`) before anything is
//! written, `Audit` violations let it through; both go into the request's audit record
//! (`properties.details.policyViolations`). Restores (key backup blobs, full and selective restore) bring keys back
//! as they were and are not evaluated; the compliance report shows them.
use crate::key::KeyVersionRecord;
use crate::policy::{self, AssignmentRequest, Effect, PolicyAssignment, PolicyDefinition, Rule};
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// Keys read per page when the compliance report walks the keys.
const PAGE: usize = 500;

fn not_found(name: &str) -> Error {
    Error::NotFound {
        code: "PolicyAssignmentNotFound",
        message: format!("The policy assignment '{name}' does not exist."),
    }
}

/// A key version that does not comply with an assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonCompliantKey {
    pub key: String,
    pub version: String,
    pub reason: String,
}

/// One enabled assignment and the keys that do not comply with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceEntry {
    pub assignment: PolicyAssignment,
    pub display_name: String,
    pub non_compliant: Vec<NonCompliantKey>,
}

/// The compliance report.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceReport {
    /// Enabled (`Audit` or `Deny`) assignments, by name.
    pub entries: Vec<ComplianceEntry>,
    /// Number of keys (current versions of non-deleted keys) evaluated.
    pub keys_evaluated: usize,
    /// Number of distinct keys that fail at least one assignment.
    pub non_compliant_keys: usize,
    /// Evaluation time (Unix seconds).
    pub evaluated_at: i64,
}

impl Hsm {
    /// The built-in policy definitions.
    pub async fn policy_definitions(&self, caller: &Principal) -> Result<Vec<PolicyDefinition>, Error> {
        self.authorize(caller, DataAction::PoliciesRead, &Scope::Root).await?;
        Ok(policy::definitions())
    }

    /// Every policy assignment.
    pub async fn list_policy_assignments(&self, caller: &Principal) -> Result<Vec<PolicyAssignment>, Error> {
        self.authorize(caller, DataAction::PoliciesRead, &Scope::Root).await?;
        self.store.policy_assignments().await
    }

    /// One policy assignment.
    pub async fn get_policy_assignment(&self, caller: &Principal, name: &str) -> Result<PolicyAssignment, Error> {
        self.authorize(caller, DataAction::PoliciesRead, &Scope::Root).await?;
        policy::validate_name(name).map_err(|_| not_found(name))?;
        self.store.policy_assignment(name).await?.ok_or_else(|| not_found(name))
    }

    /// Creates or replaces a policy assignment. Returns it and whether it was created. Existing keys are not
    /// changed: the compliance report shows those that do not comply.
    pub async fn put_policy_assignment(
        &self,
        caller: &Principal,
        name: &str,
        req: AssignmentRequest,
    ) -> Result<(PolicyAssignment, bool), Error> {
        self.authorize(caller, DataAction::PoliciesWrite, &Scope::Root).await?;
        policy::validate_name(name)?;
        let (def, effect, parameters) = policy::validate(&req)?;
        let now = self.clock.now();
        let assignment = PolicyAssignment {
            name: name.to_string(),
            definition_id: def.id.to_string(),
            effect,
            parameters,
            created: now,
            updated: now,
        };
        let (stored, created) = self
            .store
            .put_policy_assignment(&assignment, policy::MAX_ASSIGNMENTS)
            .await?;
        tracing::info!(
            assignment = %stored.name,
            definition = def.id,
            effect = effect.name(),
            created,
            "policy assignment set"
        );
        Ok((stored, created))
    }

    /// Deletes a policy assignment.
    pub async fn delete_policy_assignment(&self, caller: &Principal, name: &str) -> Result<(), Error> {
        self.authorize(caller, DataAction::PoliciesWrite, &Scope::Root).await?;
        policy::validate_name(name).map_err(|_| not_found(name))?;
        if !self.store.delete_policy_assignment(name).await? {
            return Err(not_found(name));
        }
        tracing::info!(assignment = name, "policy assignment deleted");
        Ok(())
    }

    /// Evaluates the current version of every non-deleted key against every enabled assignment.
    pub async fn compliance(&self, caller: &Principal) -> Result<ComplianceReport, Error> {
        self.authorize(caller, DataAction::PoliciesRead, &Scope::Root).await?;
        let now = self.clock.now();
        let mut entries = Vec::new();
        let mut rules = Vec::new();
        for a in self.store.policy_assignments().await? {
            if a.effect == Effect::Disabled {
                continue;
            }
            let def = policy::definition(&a.definition_id)
                .ok_or_else(|| Error::Corrupt(format!("policy assignment {} names an unknown definition", a.name)))?;
            rules.push(Rule::compile(&def, &a.parameters)?);
            entries.push(ComplianceEntry {
                assignment: a,
                display_name: def.display_name.to_string(),
                non_compliant: Vec::new(),
            });
        }
        let mut keys_evaluated = 0;
        let mut non_compliant_keys = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_keys(after.as_deref(), PAGE).await?;
            for rec in &page {
                keys_evaluated += 1;
                let mut failed = false;
                for (entry, rule) in entries.iter_mut().zip(&rules) {
                    if let Some(reason) = rule.violation(rec, now) {
                        failed = true;
                        entry.non_compliant.push(NonCompliantKey {
                            key: rec.name.to_string(),
                            version: rec.version.as_str().to_string(),
                            reason,
                        });
                    }
                }
                non_compliant_keys += usize::from(failed);
            }
            if page.len() < PAGE {
                break;
            }
            after = page.last().map(|r| r.name.to_string());
        }
        Ok(ComplianceReport {
            entries,
            keys_evaluated,
            non_compliant_keys,
            evaluated_at: now,
        })
    }

    /// Evaluates every enabled assignment against a key version about to be written (`stored`: whether the version
    /// already exists, i.e. an update). `Deny` violations refuse; all violations are noted for the audit record.
    pub(crate) async fn enforce_key_policies(&self, rec: &KeyVersionRecord, stored: bool) -> Result<(), Error> {
        let assignments = self.store.policy_assignments().await?;
        if assignments.iter().all(|a| a.effect == Effect::Disabled) {
            return Ok(());
        }
        let violations = policy::evaluate(&assignments, rec, self.clock.now())?;
        let denied = violations.iter().any(|v| v.effect == Effect::Deny);
        for v in &violations {
            tracing::info!(
                key = %rec.name,
                assignment = %v.assignment,
                definition = %v.definition_id,
                effect = v.effect.name(),
                reason = %v.reason,
                "key policy violation"
            );
            // A refused new version never exists: name no version for it.
            let version = (stored || !denied).then(|| rec.version.as_str());
            crate::audit::context::policy_violation(v.to_json(rec.name.as_str(), version));
        }
        if !denied {
            return Ok(());
        }
        let reasons: Vec<String> = violations
            .iter()
            .filter(|v| v.effect == Effect::Deny)
            .map(|v| {
                format!(
                    "policy assignment '{}' ({}): {}",
                    v.assignment, v.display_name, v.reason
                )
            })
            .collect();
        Err(Error::PolicyDenied(format!(
            "The operation on key '{}' is denied by policy: {}.",
            rec.name,
            reasons.join("; ")
        )))
    }
}
