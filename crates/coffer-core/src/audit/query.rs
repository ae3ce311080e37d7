//! Audit queries for auditors (`GET /coffer/v1/audit`, `coffer audit query`): records in chain order, filtered
//! by time range, operation, principal and result, a page at a time. Reading needs `Coffer/audit/read/action`,
//! which the Managed HSM Crypto Auditor role holds.
use std::sync::Arc;

use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// A query.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Earliest `time` (Unix seconds, inclusive).
    pub from: Option<i64>,
    /// Latest `time` (Unix seconds, inclusive).
    pub to: Option<i64>,
    /// `operationName`, case-insensitive.
    pub operation: Option<String>,
    /// The caller's object id (`identity.claim.oid`) or application id (`appid`).
    pub principal: Option<String>,
    /// `success` (HTTP status below 400), `failure` (400 and above), an HTTP status (`403`) or a
    /// `resultSignature` (`Forbidden`).
    pub result: Option<String>,
    /// Page size (1..=1000).
    pub max: usize,
    /// Continue after this sequence number.
    pub after_seq: Option<u64>,
}

impl AuditQuery {
    /// Whether a record matches the filters (the time range too).
    pub fn matches(&self, rec: &serde_json::Value) -> bool {
        let s = |path: &[&str]| {
            let mut v = rec;
            for p in path {
                v = match v.get(p) {
                    Some(x) => x,
                    None => return None,
                };
            }
            v.as_str()
        };
        if self.from.is_some() || self.to.is_some() {
            let Some(t) = s(&["time"]).and_then(super::record::parse_time) else {
                return false;
            };
            if self.from.is_some_and(|f| t < f) || self.to.is_some_and(|to| t > to) {
                return false;
            }
        }
        if let Some(op) = &self.operation
            && !s(&["operationName"]).is_some_and(|o| o.eq_ignore_ascii_case(op))
        {
            return false;
        }
        if let Some(p) = &self.principal {
            let oid = s(&["identity", "claim", "oid"]);
            let appid = s(&["identity", "claim", "appid"]);
            if oid != Some(p.as_str()) && appid != Some(p.as_str()) {
                return false;
            }
        }
        if let Some(r) = &self.result {
            let status = rec
                .get("properties")
                .and_then(|p| p.get("httpStatusCode"))
                .and_then(serde_json::Value::as_u64);
            let signature = s(&["resultSignature"]).unwrap_or("");
            let ok = match r.to_ascii_lowercase().as_str() {
                "success" => status.is_some_and(|c| c < 400) || (status.is_none() && signature == "OK"),
                "failure" => status.is_some_and(|c| c >= 400) || (status.is_none() && signature != "OK"),
                other => match other.parse::<u64>() {
                    Ok(code) => status == Some(code),
                    Err(_) => signature.eq_ignore_ascii_case(r),
                },
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// One page of records.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// The records, as written (with their `cofferChain` member).
    pub records: Vec<serde_json::Value>,
    /// The sequence number to continue after, when there may be more.
    pub next_after: Option<u64>,
}

/// Reads stored records (the file sink's directory). Blocking; called on a blocking thread.
pub trait AuditReader: Send + Sync {
    /// Runs a query.
    fn query(&self, q: &AuditQuery) -> Result<AuditPage, Error>;
}

impl Hsm {
    /// `GET /coffer/v1/audit`.
    pub async fn query_audit(&self, caller: &Principal, mut q: AuditQuery) -> Result<AuditPage, Error> {
        self.authorize(caller, DataAction::AuditRead, &Scope::Root).await?;
        if let (Some(f), Some(t)) = (q.from, q.to)
            && f > t
        {
            return Err(Error::BadParameter("'from' is after 'to'.".into()));
        }
        q.max = q.max.clamp(1, 1000);
        let reader = self.audit_reader.clone().ok_or_else(|| {
            Error::BadParameter("Audit queries need the audit file sink, which is not enabled on this instance.".into())
        })?;
        let reader: Arc<dyn AuditReader> = reader;
        tokio::task::spawn_blocking(move || reader.query(&q))
            .await
            .map_err(|e| Error::Storage(Box::new(e)))?
    }
}
