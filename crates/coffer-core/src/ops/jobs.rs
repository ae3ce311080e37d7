//! Background jobs: purging soft-deleted keys whose retention has ended, and rotating keys whose rotation policy
//! says they are due. Both derive what to do from stored state only (deletion dates, versions' created/exp), so
//! they are idempotent and survive restarts; they run as the service itself, not as a caller.
use crate::ops::rotation::RotationPolicy;
use crate::store::LifecycleState;
use crate::{Error, Hsm};

/// What one run of the jobs did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub purged: Vec<String>,
    pub rotated: Vec<String>,
    pub failed: Vec<String>,
}

impl Hsm {
    /// Purges every soft-deleted key whose scheduled purge date has passed (retention over: allowed even under
    /// purge protection).
    pub async fn purge_expired(&self) -> Result<Vec<String>, Error> {
        if self.state() != LifecycleState::Active {
            return Ok(Vec::new());
        }
        let mut purged = Vec::new();
        for name in self.store.purge_due(self.clock.now()).await? {
            if self.store.purge(&name).await? {
                self.cache.invalidate(name.as_str());
                tracing::info!(key = %name, "retention ended: deleted key purged");
                self.audit_internal(
                    "KeyPurge",
                    format!("{}/deletedkeys/{name}", self.config.public_url),
                    serde_json::json!({"reason": "soft-delete retention ended"}),
                    true,
                )
                .await;
                purged.push(name.to_string());
            }
        }
        Ok(purged)
    }

    /// Rotates every key whose current version is due under its policy. Disabled keys are not auto-rotated.
    pub async fn rotate_due(&self) -> Result<JobReport, Error> {
        let mut report = JobReport::default();
        if self.state() != LifecycleState::Active {
            return Ok(report);
        }
        let now = self.clock.now();
        for (name, json) in self.store.rotation_policies().await? {
            let Ok(policy) = serde_json::from_str::<RotationPolicy>(&json) else {
                report.failed.push(name.to_string());
                continue;
            };
            let Some(current) = self.store.key_version(&name, None).await? else {
                continue;
            };
            if !current.attributes.enabled {
                continue;
            }
            let due = Self::rotation_due_at(&current, &policy).is_some_and(|t| now >= t);
            if !due {
                continue;
            }
            match self.rotate_now(current, &policy).await {
                Ok(rec) => {
                    tracing::info!(key = %name, version = rec.version.as_str(), "KeyRotateIfDue: key rotated");
                    self.audit_internal(
                        "KeyRotateIfDue",
                        format!("{}/keys/{name}/{}", self.config.public_url, rec.version.as_str()),
                        serde_json::json!({"reason": "rotation policy", "keyProperties": crate::audit::context::key_properties(&rec)}),
                        true,
                    )
                    .await;
                    report.rotated.push(name.to_string());
                }
                Err(e) => {
                    tracing::warn!(key = %name, error = %e, "KeyRotateIfDue: rotation failed");
                    self.audit_internal(
                        "KeyRotateIfDue",
                        format!("{}/keys/{name}", self.config.public_url),
                        serde_json::json!({"reason": "rotation policy", "error": e.to_string()}),
                        false,
                    )
                    .await;
                    report.failed.push(name.to_string());
                }
            }
        }
        Ok(report)
    }

    /// Runs the jobs once (and stores the assignment-use times noted since the last run).
    pub async fn run_jobs(&self) -> Result<JobReport, Error> {
        if self.view.is_stale() {
            self.reload_state().await?;
        }
        self.flush_assignment_use().await;
        let mut report = self.rotate_due().await?;
        report.purged = self.purge_expired().await?;
        Ok(report)
    }
}
