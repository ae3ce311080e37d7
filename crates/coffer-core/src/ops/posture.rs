//! The security posture report (`GET /coffer/v1/posture`, `coffer posture`): the instance checked against each
//! best practice of the Managed HSM security baseline that software can see, each with pass/fail, the evidence
//! and the remedy. Facts core cannot see (TLS certificate, seal provider, files in the data directory) come from
//! the server in [`PostureFacts`].
use serde::Serialize;
use serde_json::{Value, json};

use crate::rbac::{DataAction, Scope, builtin};
use crate::store::LifecycleState;
use crate::{Error, Hsm, Principal};

/// What the server knows and core does not.
#[derive(Debug, Clone, Default)]
pub struct PostureFacts {
    /// `file` or `pkcs11`.
    pub seal_provider: String,
    /// Expiry of the serving certificate (Unix seconds).
    pub tls_not_after: Option<i64>,
    /// `1.2` or `1.3`.
    pub tls_min_version: String,
    /// `off`, `optional`, `required`.
    pub client_auth: String,
    /// The `--dev` security-domain wrapping keys are still in the data directory.
    pub dev_keys_on_disk: bool,
    /// Throttling is on.
    pub throttling: bool,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    /// `Pass` or `Fail`.
    pub status: &'static str,
    /// `High`, `Medium`, `Low`.
    pub severity: &'static str,
    pub evidence: Value,
    pub remedy: &'static str,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct PostureReport {
    pub generated: i64,
    pub passed: usize,
    pub failed: usize,
    pub checks: Vec<Check>,
}

/// Roles whose standing assignment to an individual is a privileged standing access.
const PRIVILEGED: &[&str] = &[
    builtin::ADMINISTRATOR,
    builtin::CRYPTO_OFFICER,
    builtin::POLICY_ADMINISTRATOR,
];

impl Hsm {
    /// Builds the posture report (needs `Coffer/posture/read/action`).
    pub async fn posture(&self, caller: &Principal, facts: &PostureFacts) -> Result<PostureReport, Error> {
        self.authorize(caller, DataAction::PostureRead, &Scope::Root).await?;
        let now = self.clock.now();
        let mut checks = Vec::new();
        let mut add = |id, title, severity, pass: bool, evidence: Value, remedy| {
            checks.push(Check {
                id,
                title,
                status: if pass { "Pass" } else { "Fail" },
                severity,
                evidence,
                remedy,
            });
        };

        let acls = self.network_acls();
        let doc = acls.doc();
        add(
            "firewall",
            "The firewall admits only chosen networks (network ACLs default action Deny)",
            "High",
            acls.deny_by_default(),
            json!({"defaultAction": doc.default_action, "ipRules": doc.ip_rules.len()}),
            "PUT /coffer/v1/network-acls with {\"defaultAction\":\"Deny\",\"ipRules\":[{\"value\":\"<your client ranges>\"}]}.",
        );
        add(
            "public-network-access",
            "Public network access is disabled",
            "High",
            acls.public_disabled(),
            json!({"publicNetworkAccess": doc.public_network_access}),
            "PUT /coffer/v1/network-acls with \"publicNetworkAccess\":\"Disabled\" (only loopback and private ranges are admitted).",
        );
        add(
            "purge-protection",
            "Purge protection is on",
            "High",
            self.purge_protection(),
            json!({"purgeProtection": self.purge_protection()}),
            "PATCH /settings/PurgeProtection with {\"value\":\"true\"} (it cannot be switched off again).",
        );
        let retention = self.retention_days();
        add(
            "soft-delete-retention",
            "Soft-delete retention is 90 days",
            "Medium",
            retention >= 90,
            json!({"softDeleteRetentionDays": retention}),
            "Retention is fixed at creation: create a new instance with --soft-delete-retention-days 90 and restore a full backup into it.",
        );

        let (sinks, healthy, fail_closed) = match &self.audit {
            Some(log) => (log.sink_names().to_vec(), log.healthy(), log.fail_closed()),
            None => (Vec::new(), false, false),
        };
        add(
            "audit-sink",
            "Audit records are written to a healthy sink, fail-closed",
            "High",
            !sinks.is_empty() && healthy && fail_closed,
            json!({"sinks": sinks, "healthy": healthy, "failClosed": fail_closed}),
            "Configure [audit] in coffer.toml (the file sink is on by default), keep fail_closed = true, and fix the sink (see the coffer_audit_sink_errors_total metric).",
        );
        add(
            "audit-off-host",
            "Audit records also leave the machine (syslog)",
            "Medium",
            sinks.iter().any(|s| s == "syslog"),
            json!({"sinks": sinks}),
            "Add [audit.syslog] (udp, tcp or unix) pointing at your log collector and restart.",
        );

        let last_backup = self.last_successful_backup().await?;
        let age = last_backup.map(|t| now - t);
        add(
            "backup-age",
            "A full backup succeeded in the last 24 hours",
            "High",
            age.is_some_and(|a| a <= 86_400),
            json!({"lastSuccessfulBackup": last_backup, "ageSeconds": age}),
            "Run a full backup (POST /backup, or KeyVaultBackupClient.begin_backup) at least daily.",
        );

        let review = self.review_assignments(90).await?;
        let live: Vec<_> = review.assignments.iter().filter(|a| !a.expired).collect();
        let admin_groups = live
            .iter()
            .filter(|a| a.assignment.role_definition_id == builtin::ADMINISTRATOR && a.principal_type == "group")
            .count();
        add(
            "administrators-through-groups",
            "Administrators are assigned through groups, not individually",
            "Medium",
            review.individual_administrators.is_empty() && admin_groups > 0,
            json!({"individualAdministrators": review.individual_administrators, "administratorGroupAssignments": admin_groups}),
            "Create a group (POST /coffer/v1/groups), add the administrators (PUT /coffer/v1/groups/{id}/members/{oid}), assign Managed HSM Administrator to the group, and delete the individual assignments.",
        );

        let conflicts: Vec<Value> = review
            .separation_of_duties_conflicts
            .iter()
            .map(|(pid, pairs)| json!({"principalId": pid, "conflicts": pairs}))
            .collect();
        add(
            "separation-of-duties",
            "No principal holds conflicting roles",
            "High",
            conflicts.is_empty(),
            json!({"conflicts": conflicts}),
            "Remove one role of each conflicting pair (see docs/ACCESS.md, separation of duties) and set separation_of_duties = \"deny\".",
        );

        let standing: Vec<Value> = live
            .iter()
            .filter(|a| {
                a.assignment.expires.is_none()
                    && PRIVILEGED.contains(&a.assignment.role_definition_id.as_str())
                    && a.principal_type != "group"
            })
            .map(|a| json!({"principalId": a.assignment.principal_id, "role": a.role_name, "assignment": a.assignment.name}))
            .collect();
        let eligible = self
            .store
            .list_eligible()
            .await?
            .into_iter()
            .filter(|e| PRIVILEGED.contains(&e.role_definition_id.as_str()))
            .count();
        add(
            "just-in-time-administration",
            "Privileged roles are held just in time, not standing by individuals",
            "Medium",
            standing.is_empty() && eligible > 0,
            json!({"standingIndividualPrivilegedAssignments": standing, "eligiblePrivilegedAssignments": eligible}),
            "Make privileged roles eligible (POST /coffer/v1/eligible-assignments) and remove standing individual assignments; members activate them for a bounded time.",
        );

        let holders = self.security_domain_holders().await?;
        let sd_ok = self.state() == LifecycleState::Active
            && holders.as_ref().is_some_and(|h| {
                h["holders"].as_u64().unwrap_or(0) >= 3 && h["quorum"].as_u64().unwrap_or(0) >= 2 && h["dev"] != true
            })
            && !facts.dev_keys_on_disk;
        add(
            "security-domain-quorum",
            "The security domain is held by at least 3 officers with a quorum of at least 2, none of their keys on this machine",
            "High",
            sd_ok,
            json!({"state": format!("{:?}", self.state()), "lastDownload": holders, "devKeysInDataDirectory": facts.dev_keys_on_disk}),
            "Download the security domain to your officers' certificates (coffer sd download --certs … --quorum 2 or more), store the officers' keys offline, and delete <data-dir>/dev-security-domain.",
        );
        let redownload = self.config.security_domain_redownload_without_quorum;
        add(
            "security-domain-custody",
            "A new security-domain download of the active HSM needs a quorum of its officers",
            "High",
            !redownload,
            json!({"redownloadWithoutQuorum": redownload}),
            "Remove security_domain_redownload_without_quorum from coffer.toml (or set it to false) and restart: an Administrator alone can then no longer download the security domain to certificates of its own.",
        );

        let mut without_expiry = 0usize;
        let mut examples = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_keys(after.as_deref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.to_string());
            for k in &page {
                if k.attributes.expires.is_none() {
                    without_expiry += 1;
                    if examples.len() < 20 {
                        examples.push(k.name.to_string());
                    }
                }
            }
            if page.len() < 1000 {
                break;
            }
        }
        add(
            "keys-expire",
            "Every key has an expiration date",
            "Medium",
            without_expiry == 0,
            json!({"keysWithoutExpiry": without_expiry, "examples": examples}),
            "Set an expiry on each key (PATCH /keys/{name} with attributes.exp, or a rotation policy with expiryTime) and assign the 'keys should have an expiration date' policy with effect Deny.",
        );

        let cert_days = facts.tls_not_after.map(|t| (t - now) / 86_400);
        add(
            "tls-certificate",
            "The TLS certificate is valid for at least 30 more days",
            "High",
            cert_days.is_some_and(|d| d >= 30),
            json!({"notAfter": facts.tls_not_after, "daysLeft": cert_days}),
            "Renew the certificate (tls_cert/tls_key) before it expires; Coffer reloads it without a restart.",
        );
        add(
            "tls-policy",
            "TLS 1.2 or later with AEAD cipher suites only",
            "High",
            matches!(facts.tls_min_version.as_str(), "1.2" | "1.3"),
            json!({"minVersion": facts.tls_min_version, "clientAuth": facts.client_auth}),
            "Set [tls] min_version = \"1.2\" or \"1.3\".",
        );
        add(
            "seal-provider",
            "The domain secret is sealed by an HSM (PKCS#11), not a key file",
            "High",
            facts.seal_provider == "pkcs11",
            json!({"sealProvider": facts.seal_provider}),
            "Move the seal to a PKCS#11 token: coffer seal migrate --data-dir … --to-config coffer.toml (with a [seal] provider = \"pkcs11\" section), then restart with that configuration.",
        );
        add(
            "throttling",
            "Request throttling is on",
            "Low",
            facts.throttling,
            json!({"throttling": facts.throttling}),
            "Set [throttling] enabled = true.",
        );

        let passed = checks.iter().filter(|c| c.status == "Pass").count();
        let failed = checks.len() - passed;
        Ok(PostureReport {
            generated: now,
            passed,
            failed,
            checks,
        })
    }
}
